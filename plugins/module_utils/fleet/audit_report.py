# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet's audit as one report (schema packetpath.linux/audit/v1), and as JUnit XML, Markdown and a table.

JUnit: one <testsuite> per host and one <testcase> per host and check, so CI
systems and AWX list every finding natively: a failing check is a <failure>, a
skipped one <skipped>, and a host that could not be audited has an <error> in
every check.  The XML keeps to the attributes of the common JUnit schema
(Jenkins' junit-10.xsd).
"""

import time
import xml.etree.ElementTree as ET

from ansible_collections.packetpath.linux.plugins.module_utils._common import junit as junit_file

SCHEMA = "packetpath.linux/audit/v1"


def _host_entry(host, result, checks, before, changes):
    if not isinstance(result, dict) or result.get("checks") is None:
        message = (result or {}).get("msg") if isinstance(result, dict) else None
        entry = {"host": host, "status": "error", "error": message or "not audited (unreachable or failed)",
                 "facts": {}, "checks": [{"name": name, "status": "error", "summary": message or "not audited",
                                          "findings": [], "details": {}} for name in checks]}
    else:
        failed = [check for check in result["checks"] if check["status"] == "fail"]
        entry = {"host": host, "status": "findings" if failed else "clean", "error": None,
                 "facts": result.get("facts", {}), "checks": result["checks"]}
    if before is not None:
        entry["before"] = _host_entry(host, before.get(host), checks, None, None)["status"]
        entry["before_findings"] = _finding_count(before.get(host))
        entry["changes"] = (changes or {}).get(host, [])
    return entry


def _finding_count(result):
    if not isinstance(result, dict) or "checks" not in result:
        return None
    return sum(len(check["findings"]) for check in result["checks"])


def build(hosts, checks, before=None, changes=None, title="packetpath audit"):
    """hosts: {host: host_audit result, or a failed/unreachable result}; before: the same, before remediation."""
    entries = [_host_entry(host, hosts[host], checks, before, changes) for host in sorted(hosts)]
    statuses = [check["status"] for entry in entries for check in entry["checks"]]
    return {
        "schema": SCHEMA,
        "title": title,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "checks": list(checks),
        "summary": {
            "hosts": len(entries),
            "hosts_clean": sum(1 for entry in entries if entry["status"] == "clean"),
            "hosts_with_findings": sum(1 for entry in entries if entry["status"] == "findings"),
            "hosts_not_audited": sum(1 for entry in entries if entry["status"] == "error"),
            "checks": len(statuses),
            "passed": statuses.count("pass"),
            "failed": statuses.count("fail"),
            "skipped": statuses.count("skip"),
            "errors": statuses.count("error"),
            "findings": sum(len(check["findings"]) for entry in entries for check in entry["checks"]),
        },
        "hosts": entries,
    }


def artifact(report):
    """What set_stats hands to AWX's job artifacts: the counts, the hosts not clean, and per such host what each of
    its failed checks says."""
    return {"summary": report["summary"],
            "hosts_not_clean": [entry["host"] for entry in report["hosts"] if entry["status"] != "clean"],
            "findings": {entry["host"]: ["%s: %s" % (check["name"], check.get("summary") or check["status"])
                                         for check in entry["checks"] if check["status"] in ("fail", "error")]
                         for entry in report["hosts"] if entry["status"] != "clean"}}


def junit(report):
    summary = report["summary"]
    root = ET.Element("testsuites", name=report["title"], tests=str(summary["checks"]),
                      failures=str(summary["failed"]), errors=str(summary["errors"]), time="0")
    for entry in report["hosts"]:
        statuses = [check["status"] for check in entry["checks"]]
        suite = ET.SubElement(root, "testsuite", name=entry["host"], hostname=entry["host"],
                              tests=str(len(statuses)), failures=str(statuses.count("fail")),
                              errors=str(statuses.count("error")), skipped=str(statuses.count("skip")),
                              time="0", timestamp=report["generated_at"])
        for check in entry["checks"]:
            status = check["status"]
            if status == "skip":
                ET.SubElement(junit_file.case(suite, check["name"], entry["host"]), "skipped", message=check["summary"])
            elif status == "fail":
                junit_file.case(suite, check["name"], entry["host"], "failure", "finding", check["summary"],
                                "\n".join(check["findings"]))
            elif status == "error":
                junit_file.case(suite, check["name"], entry["host"], "error", "not_audited", check["summary"])
            else:
                junit_file.case(suite, check["name"], entry["host"], text=check["summary"])
    return junit_file.document(root)


def _status_line(entry):
    if "before" not in entry:
        return entry["status"]
    return "%s -> %s" % (entry["before"], entry["status"])


def table(report):
    rows = [("host", "status", "failed checks", "first finding")]
    for entry in report["hosts"]:
        failed = [check for check in entry["checks"] if check["status"] in ("fail", "error")]
        first = entry["error"] or next((check["findings"][0] for check in failed if check["findings"]), "")
        rows.append((entry["host"], _status_line(entry), ", ".join(check["name"] for check in failed) or "-",
                     first[:100]))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3] for row in rows]
    summary = report["summary"]
    lines.append("%d hosts: %d clean, %d with findings, %d not audited; %d findings" % (
        summary["hosts"], summary["hosts_clean"], summary["hosts_with_findings"], summary["hosts_not_audited"],
        summary["findings"]))
    return "\n".join(lines)


def markdown(report):
    summary = report["summary"]
    out = ["# %s" % report["title"], "",
           "Generated %s. %d hosts: %d clean, %d with findings, %d not audited; %d findings." % (
               report["generated_at"], summary["hosts"], summary["hosts_clean"], summary["hosts_with_findings"],
               summary["hosts_not_audited"], summary["findings"]), "",
           "| host | status | " + " | ".join(report["checks"]) + " |",
           "| --- | --- | " + " | ".join("---" for _check in report["checks"]) + " |"]
    for entry in report["hosts"]:
        by_name = {check["name"]: check["status"] for check in entry["checks"]}
        out.append("| %s | %s | %s |" % (entry["host"], _status_line(entry),
                                         " | ".join(by_name.get(name, "-") for name in report["checks"])))
    for entry in report["hosts"]:
        failed = [check for check in entry["checks"] if check["status"] in ("fail", "error")]
        changes = entry.get("changes") or []
        if not failed and not changes:
            continue
        out += ["", "## %s" % entry["host"], ""]
        for change in changes:
            out.append("- changed `%s` on %s: %s -> %s (%s)" % (change["key"], change["interface"], change["before"],
                                                                change["after"], change["why"]))
        for check in failed:
            out.append("- **%s**: %s" % (check["name"], check["summary"]))
            out += ["  - %s" % finding for finding in check["findings"]]
    return "\n".join(out) + "\n"
