#!/usr/bin/python
# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation only: the action plugin of the same name does the work, on the controller."""

DOCUMENTATION = r"""
module: say
short_description: Print lines on the controller's terminal as they are
version_added: 0.3.0
description:
  - Prints O(lines) on the terminal of the run, each as it is. Under ansible-core's default callback,
    C(ansible.builtin.debug) shows a list of lines as JSON, quoted and escaped. A verdict block or a table is then
    hard to read.
  - The roles print their verdict, their tables and their per-host lines with it.
  - Nothing runs on the host. The lines are also returned, for C(-v), a registered variable and AWX's job events.
author:
  - packetpath developers (@packetpath)
requirements:
  - ansible-core only, on the controller (nothing runs on the host)
attributes:
  action:
    support: full
    description: An action plugin prints the lines on the controller.
  check_mode:
    support: full
    description: Prints the same; it changes nothing anyway.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
options:
  lines:
    description: The lines to print, each as it is (a line break inside one starts another line).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Where the packet died and why
  packetpath.linux.say:
    lines: "{{ report.table.splitlines() }}"
  run_once: true
"""

RETURN = r"""
lines:
  description: The lines printed.
  returned: always
  type: list
  elements: str
  sample: ["client → node ✗  [rp_filter]"]
"""
