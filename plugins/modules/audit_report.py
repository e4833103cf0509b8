#!/usr/bin/python
# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: audit_report
short_description: Write the fleet's audit as JSON, JUnit XML and Markdown
version_added: 0.1.0
description:
  - Takes the M(packetpath.linux.host_audit) result of every host (run it on the controller, once) and writes
    C(<name>.json) (schema C(packetpath.linux/audit/v1), see C(docs/fleet.md)), C(<name>.junit.xml) (one
    testcase per host and check) and C(<name>.md) into O(report_dir).
  - A host whose result has no checks (unreachable, failed) is reported with an error in every check.
  - With O(before), the report says per host the status before and after, and the changes made (O(changes)).
author:
  - packetpath developers (@packetpath)
attributes:
  check_mode:
    support: full
    description: Writes nothing in check mode; run the task with C(check_mode=false) to keep the report.
  diff_mode:
    support: none
    description: Nothing to show.
options:
  hosts:
    description: The host_audit result per host (hosts that could not be audited with their failed result or null).
    type: dict
    required: true
  checks:
    description: The checks that were asked for (the testcases of a host that could not be audited).
    type: list
    elements: str
    required: true
  before:
    description: The host_audit result per host before a remediation.
    type: dict
  changes:
    description: Per host, the changes a remediation made (C(interface), C(key), C(before), C(after), C(why)).
    type: dict
  report_dir:
    description: Where to write the files; nothing is written without it.
    type: path
  name:
    description: The files' base name.
    type: str
    default: audit
  title:
    description: The report's title (and the JUnit C(testsuites) name).
    type: str
    default: packetpath audit
requirements:
  - ansible-core only, on the controller (it runs where the play delegates it, usually localhost)
seealso:
  - module: packetpath.linux.host_audit
"""

EXAMPLES = r"""
- name: The fleet's report on the controller
  packetpath.linux.audit_report:
    hosts: "{{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars)
                                                  | map(attribute='audit', default=none))) }}"
    checks: [sysctl_expected, sysctl_drift, trace_leftovers]
    report_dir: /var/lib/packetpath/audit
  delegate_to: localhost
  run_once: true
  check_mode: false
"""

RETURN = r"""
report:
  description: The report (the content of the JSON file).
  returned: always
  type: dict
table:
  description: One line per host (status, failed checks, first finding) and a summary line.
  returned: always
  type: str
artifact:
  description:
    - What the audit role hands to C(ansible.builtin.set_stats) (AWX's job artifacts) - C(summary) (the counts),
      C(hosts_not_clean), and C(findings), per host not clean, each failed check's name and summary.
  returned: always
  type: dict
  sample: {"summary": {"hosts": 3, "hosts_with_findings": 1}, "hosts_not_clean": ["node2"],
           "findings": {"node2": ["rp_filter: eth1 is 0, expected 1 or 2"]}}
files:
  description: The files written.
  returned: always
  type: list
  elements: str
"""


from ansible_collections.packetpath.linux.plugins.module_utils._common import files, inputs
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError, PacketpathError
from ansible_collections.packetpath.linux.plugins.module_utils._common.module import PacketpathModule
from ansible_collections.packetpath.linux.plugins.module_utils.fleet import audit_report


LONGEST_SUFFIX = ".junit.xml"  # of the files written: name.json, name.junit.xml, name.md


def main():
    module = PacketpathModule(
        argument_spec=dict(
            hosts={"type": "dict", "required": True},
            checks={"type": "list", "elements": "str", "required": True},
            before={"type": "dict"},
            changes={"type": "dict"},
            report_dir={"type": "path"},
            name={"type": "str", "default": "audit"},
            title={"type": "str", "default": "packetpath audit"},
        ),
        supports_check_mode=True,
    )
    params = module.params
    if "/" in params["name"] or "\0" in params["name"] or params["name"] in ("", ".", ".."):
        module.fail_json(msg="name=%r: a file base name, without a directory; nothing was written" % params["name"])
    if not files.fits(params["name"] + LONGEST_SUFFIX):
        module.fail_json(msg="name=%r: with %s and the temporary name it is written through, longer than a file name "
                         "can be (255 bytes); nothing was written" % (params["name"], LONGEST_SUFFIX))
    try:
        inputs.check_paths(params, ("report_dir",))
        inputs.check_per_host(params, ("hosts", "before"), fields={"checks": (list, dict, ("name", "status", "findings"))})
        inputs.check_per_host(params, ("changes",), kind=list)
    except OptionError as exc:
        module.fail_json(msg=str(exc))
    report = audit_report.build(params["hosts"], params["checks"], params["before"], params["changes"],
                                params["title"])
    written = []
    if params["report_dir"] and not module.check_mode:
        name = params["name"]
        try:
            written = files.write(params["report_dir"], [
                (name + ".json", files.as_json(report)), (name + ".junit.xml", audit_report.junit(report)),
                (name + ".md", audit_report.markdown(report))])
        except PacketpathError as exc:
            module.fail_json(msg=str(exc))
    module.exit_json(changed=False, report=report, table=audit_report.table(report),
                     artifact=audit_report.artifact(report), files=written)


if __name__ == "__main__":
    main()
