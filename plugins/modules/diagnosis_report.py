#!/usr/bin/python
# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: diagnosis_report
short_description: Turn what the diagnose_port role gathered into a verdict per host and a report directory
version_added: 0.1.0
description:
  - Used by the C(packetpath.linux.diagnose_port) role, on the controller (C(delegate_to) localhost, C(run_once)).
  - From each host's trace and the finding the host decided on itself, puts the hosts in the order the packet met
    them, names the culprit host and the cause (a catalogue id, with its words, evidence and fix as a task to run),
    and reports per host whether the probe's packets were seen, their path, fate and where they stopped.
  - Writes C(report.json) (schema in C(schemas/diagnosis_report.schema.json), which ships with the collection),
    C(report.md) and C(report.html) (each packet's path drawn on the netfilter hook diagram as inline SVG, nothing
    fetched from the network) and C(report.junit.xml) (for a CI system - the fleet's verdict and each host as test
    cases, failed where the packet died) into O(report_dir).
  - The module decides; its action plugin writes the files, always on the controller. C(report.md) and
    C(report.html) are rendered from Jinja2 templates (the HTML autoescaped), the collection's own unless
    O(markdown_template) or O(html_template) names another.
author:
  - packetpath developers (@packetpath)
attributes:
  action:
    support: full
    description: An action plugin writes the files on the controller, from the module's verdicts.
  check_mode:
    support: full
    description: Computes the verdicts and renders the templates, and writes no file.
  diff_mode:
    support: none
    description: The report files are new each run; no diff is shown.
options:
  hosts:
    description:
      - Per host that got to the end of the run, its C(packetpath.linux.trace_results) result (with its C(finding));
        a skipped result for a host that was not collected (not armed, or check mode).
      - A host of C(request.trace_hosts) missing here failed or was unreachable before it reported; it gets a row with
        the error of its entry in O(last_results).
    type: dict
    required: true
  request:
    description: What was asked (C(port), C(proto), C(dst), C(probe_from), ...), copied into the report.
    type: dict
    required: true
  probe:
    description: The probe's result (packetpath.linux.probe), if there was a probe.
    type: dict
  probe_after_fix:
    description: The probe's result after a remediation.
    type: dict
  last_results:
    description:
      - Per host, its arming (the C(packetpath.linux.trace_rule) result with O(packetpath.linux.trace_rule#module:capture=true)).
        Its backend, capture and expiry go into the host's row; where it failed, its C(msg) is why the host could not
        be traced; for a host missing from O(hosts), the error its row shows.
    type: dict
  report_dir:
    description:
      - The directory to write the report into (created if needed). Without it, nothing is written.
      - Each run writes into a directory of its own under it, named after the run's UTC time
        (C(20261205T084402.123456Z)), and points C(latest) at it, so an earlier run's report is never overwritten.
    type: path
  run_started:
    description:
      - The C(generated_epoch) of this run's first report, given to a later report of the same run (the one after a
        remediation's probe), which is then written into that run's directory, over the first, so that one run has
        one directory. Without it, the report's own time names a new directory.
    type: float
  markdown_template:
    description:
      - A Jinja2 template for C(report.md) instead of the collection's own (C(roles/diagnose_port/templates/report.md.j2),
        the one to copy). A path, or a file name found in C(templates/) of the role or playbook, as
        M(ansible.builtin.template) finds its O(ansible.builtin.template#module:src).
      - The template gets C(report), the content of C(report.json), and the filters the collection's own template
        uses. It is rendered in check mode too, so a broken template fails before a real run.
    type: path
  html_template:
    description:
      - A Jinja2 template for C(report.html) instead of the collection's own
        (C(roles/diagnose_port/templates/report.html.j2)), found as O(markdown_template) is. Autoescaped.
    type: path
requirements:
  - ansible-core only, on the controller (the files are written there; the module runs where the play delegates it,
    usually localhost)
"""

EXAMPLES = r"""
- name: Verdicts and the report
  packetpath.linux.diagnosis_report:
    hosts: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'collected'))) }}"
    last_results: "{{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars, 'armed'))) }}"
    request: {port: 8081, proto: tcp, dst: 203.0.113.12, probe_from: client, trace_hosts: "{{ ansible_play_hosts_all }}"}
    probe: "{{ probe_result }}"
    report_dir: /tmp/packetpath-report
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
report:
  description: The report (the content of report.json).
  returned: always
  type: dict
table:
  description: The verdicts as a table for a terminal (host, seen, last hop, fate, cause).
  returned: always
  type: str
artifact:
  description:
    - What the role hands to C(ansible.builtin.set_stats) (AWX's job artifacts, later workflow nodes) - C(request),
      C(probe) and C(probe_after_fix) (the probe's summaries), C(verdict) (C(line), C(label), C(culprit), C(cause),
      C(direction), C(words), C(fix), C(fix_command), the command a person pastes, C(failing_endpoints),
      C(stale_conversations)), and C(hosts), each host's C(host), C(seen), C(role), C(cause) and C(words).
  returned: always
  type: dict
  sample: {"verdict": {"line": "client → node ✗", "label": "rp_filter", "culprit": "node", "cause": "rp_filter",
                       "fix_command": "sysctl -w net.ipv4.conf.eth1.rp_filter=2"}}
files:
  description: The files written (in the run's own directory under O(report_dir)).
  returned: always
  type: list
  elements: str
"""


from ansible_collections.packetpath.linux.plugins.module_utils._common import inputs
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError
from ansible_collections.packetpath.linux.plugins.module_utils._common.module import PacketpathModule
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import verdict


# What the verdicts read of a host's trace_results result: {key: (kind, kind of each item)}.
TRACE_FIELDS = {"packets": (list, dict), "finding": (dict, None), "capture": (dict, None), "stats": (dict, None),
                "drop_reasons": (dict, None)}


def check_inputs(params):
    """What the role hands over, checked before anything is written: a malformed value names its option."""
    inputs.check_paths(params, ("report_dir", "markdown_template", "html_template"))
    if params["run_started"] is not None and not 0 < params["run_started"] < 2 ** 40:
        raise OptionError("run_started", params["run_started"],
                          "the epoch of the run's first report (its generated_epoch)")
    inputs.check_per_host(params, ("hosts",), fields=TRACE_FIELDS)
    inputs.check_per_host(params, ("last_results",), fields={"capture": (dict, None)})
    for option in ("probe", "probe_after_fix"):
        if not isinstance((params[option] or {}).get("summary", {}), dict):
            raise OptionError(option, params[option], "the result of packetpath.linux.probe, whose summary is a mapping")
    trace_hosts = params["request"].get("trace_hosts", [])
    if not isinstance(trace_hosts, list) or not all(isinstance(host, str) for host in trace_hosts):
        raise OptionError("request", params["request"], "trace_hosts is a list of host names")


def main():
    module = PacketpathModule(
        argument_spec=dict(
            hosts={"type": "dict", "required": True},
            request={"type": "dict", "required": True},
            probe={"type": "dict"},
            probe_after_fix={"type": "dict"},
            last_results={"type": "dict"},
            report_dir={"type": "path"},
            run_started={"type": "float"},
            markdown_template={"type": "path"},
            html_template={"type": "path"},
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        check_inputs(params)
    except OptionError as exc:
        module.fail_json(msg=str(exc))
    last = params["last_results"] or {}
    unreported = {host: (last.get(host) or {}).get("msg") for host in params["request"].get("trace_hosts") or []
                  if host not in params["hosts"]}
    hosts = {host: verdict.gathered(trace, last.get(host)) for host, trace in params["hosts"].items()}
    hosts.update(dict.fromkeys(unreported))
    report = verdict.build_report(hosts, params["request"], params["probe"], params["probe_after_fix"], unreported)
    # The action plugin writes the files on the controller, from this result.
    module.exit_json(changed=False, report=report, table=verdict.table(report), artifact=verdict.artifact(report),
                     files=[])


if __name__ == "__main__":
    main()
