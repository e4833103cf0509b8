# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    # The attributes of a module that only reads the host: check mode runs it as it is, and there is no diff.
    READ_ONLY = r"""
attributes:
  check_mode:
    support: full
    description: Reads only, so check mode runs it unchanged.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
"""
