# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One host against the fleet's expectations: read-only checks, each passing, failing or skipped,
and the plan that would make it pass.

Each check says in one line what it found; a failing check lists its findings
in words an operator can act on.  The controller turns the checks of every host
into audit.json, JUnit XML and Markdown (audit_report).
"""

from ansible_collections.packetpath.linux.plugins.module_utils import preflight
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import HostError
from ansible_collections.packetpath.linux.plugins.module_utils.fleet import expectations as expectations_
from ansible_collections.packetpath.linux.plugins.module_utils.fleet import remediation
from ansible_collections.packetpath.linux.plugins.module_utils.fleet import strict_sources as strict
from ansible_collections.packetpath.linux.plugins.module_utils.sysctl import conf
from ansible_collections.packetpath.linux.plugins.module_utils.sysctl.boot import BootConfig, config_files
from ansible_collections.packetpath.linux.plugins.module_utils.trace import backends, rule

CHECKS = ("sysctl_expected", "sysctl_drift", "strict_reverse_path", "trace_leftovers", "trace_backend", "pyroute2")
# The checks that compare against the expectations (drift is looked for on the expected keys only).
NEED_EXPECTATIONS = ("sysctl_expected", "sysctl_drift")
STRICT = 1


def _check(name, findings, passed, failed=None, details=None):
    return {"name": name, "status": "fail" if findings else "pass", "summary": failed if findings else passed,
            "findings": findings, "details": details if details is not None else {}}


def _skip(name, summary, details=None):
    return {"name": name, "status": "skip", "summary": summary, "findings": [], "details": details or {}}


def _allowed(values):
    return " or ".join(str(value) for value in values)


def _failed_delete(failure):
    """A delete the expiry could not do, as its record keeps it."""
    said = failure["stderr"] or "rc %s" % failure["rc"]
    return "; its delete `%s` failed %d times: %s" % (" ".join(failure["argv"]), failure["attempts"], said)


class HostAudit:
    """Everything the checks need, read once: the sysctls, the boot configuration, and a router."""

    def __init__(self, runner, expectations, sources, make_router, etc_sysctl_d="/etc/sysctl.d"):
        self.runner = runner
        self.expectations = expectations
        self.sources = sources
        self.make_router = make_router
        # rp_filter always: the strict-mode check needs it, expected or not.
        self.snapshot = expectations_.Snapshot.read(set(expectations.keys()) | {"rp_filter"})
        self.boot_files = config_files(etc_sysctl_d)
        self.boot = BootConfig.from_files(self.boot_files)
        self.rows = expectations_.evaluate(expectations, self.snapshot)
        self.drift = expectations_.drift(expectations.keys(), self.snapshot, self.boot, expectations.ignored)
        self._router = None

    def router(self):
        if self._router is None:
            self._router = self.make_router()
        return self._router

    # -- the checks -----------------------------------------------------------------

    def sysctl_expected(self):
        offenders = [row for row in self.rows if not row["compliant"]]
        findings = ["%s %s is %s, wanted %s (%s)" % (row["interface"], row["key"], row["effective"],
                                                     _allowed(row["allowed"]), row["source"]) for row in offenders]
        return _check("sysctl_expected", findings,
                      "%d interface values as expected" % len(self.rows),
                      "%d of %d interface values not as expected" % (len(offenders), len(self.rows)),
                      {"values": self.rows})

    def sysctl_drift(self):
        findings = ["%s: runtime %s, the boot writes %s (%s)"
                    % (_sysctl_name(row), row["runtime"], row["persistent"], row["file"]) for row in self.drift]
        return _check("sysctl_drift", findings,
                      "runtime matches the boot configuration (%d files)" % len(self.boot_files),
                      "%d values differ from what the boot writes" % len(self.drift),
                      {"drift": self.drift, "files": self.boot_files})

    def strict_reverse_path(self):
        strict_now = [name for name in self.snapshot.interfaces("ipv4")
                      if not self.expectations.ignored(name) and self.snapshot.effective("rp_filter", name) == STRICT]
        checked = [name for name in strict_now if strict.networks_for(self.sources, name)]
        if not checked:
            return _skip("strict_reverse_path", "no strict interface with strict_sources to check"
                         + (" (strict: %s)" % ", ".join(strict_now) if strict_now else ""))
        found = self.conflicts(checked)
        return _check("strict_reverse_path", [item["message"] for item in found],
                      "strict on %s: every listed source network routes back the same way" % ", ".join(checked),
                      "strict mode drops traffic from %d listed networks" % len(found), {"conflicts": found})

    def conflicts(self, interfaces):
        found = []
        for interface in interfaces:
            found += strict.conflicts(self.router(), interface, strict.networks_for(self.sources, interface))
        return found

    def trace_leftovers(self):
        found = rule.leftovers(self.runner)
        findings = ["%s rule of flow %s%s: %s" % (
            rule["backend"], rule["flow_id"], " (inert: the kernel stopped matching it at %s, and its expiry did not "
            "take it out)" % rule["until"] if rule["expired"] else "", rule["rule"]) for rule in found["rules"]]
        findings += ["nftables table %s" % table for table in found["nft_tables"]]
        findings += ["expiry timer of flow %s (pid %s, %s, due %s)%s" % (
            timer["flow_id"], timer["pid"], "running" if timer["running"] else "no longer running",
            timer["expires_at"], "".join(map(_failed_delete, timer.get("failed", ())))) for timer in found["expiry"]]
        findings += ["nf_log binding for %s not put back" % family for family in found["nf_log_bindings"]]
        return _check("trace_leftovers", findings, "no TRACE rule, table or timer of packetpath",
                      "%d leftovers of packetpath (run packetpath.linux.cleanup)" % len(findings), found)

    def trace_backend(self, facts):
        findings = list(preflight.problems(facts))
        backend, reason = None, None
        if facts["tools"]["iptables"] or facts["tools"]["nft"]:
            try:
                chosen, reason = backends.choose(self.runner, "auto")
            except HostError as exc:
                findings.append(str(exc))
            else:
                backend = chosen.name
                findings += ["%s needs %s, not installed" % (backend, tool) for tool in chosen.missing_tools()]
        # The kernel's drop reasons are optional: said, never a finding.
        details = {"backend": backend, "reason": reason, "tools": facts["tools"], "is_root": facts["is_root"],
                   "drop_reasons": facts["drop_reasons"]}
        reasons = "; the kernel's drop reasons %s" % ("can be read" if facts["drop_reasons"]["available"] else
                                                      "cannot be read: %s" % facts["drop_reasons"]["why_not"])
        return _check("trace_backend", findings, "%s (%s)%s" % (backend, reason, reasons), "this host cannot be traced",
                      details)

    @staticmethod
    def pyroute2(facts, required):
        version, too_old = facts["pyroute2"], facts.get("pyroute2_unsupported")
        if version and not too_old:
            return _check("pyroute2", [], "pyroute2 %s" % version, details={"version": version})
        missing = too_old or "pyroute2 is not installed"
        if required:
            return _check("pyroute2", ["%s (python3-pyroute2)" % missing], "", "pyroute2 %s" % (
                "too old" if too_old else "missing"), {"version": version})
        return _skip("pyroute2", "%s: route lookups fall back to `ip -j`, one process per lookup (require_pyroute2 "
                     "makes this a finding)" % missing, {"version": version})

    def run(self, selected, require_pyroute2):
        facts = preflight.survey(self.runner)
        results = []
        for name in CHECKS:
            if name not in selected:
                continue
            if name == "trace_backend":
                results.append(self.trace_backend(facts))
            elif name == "pyroute2":
                results.append(self.pyroute2(facts, require_pyroute2))
            else:
                results.append(getattr(self, name)())
        return results, facts

    # -- the plan -------------------------------------------------------------------

    def remediation(self, force):
        """The writes that make this host pass, and the strict-mode conflicts that refuse them."""
        plan = remediation.plan(self.expectations, self.snapshot, self.drift)
        becoming_strict = sorted(set(
            name for change in plan["changes"] if change["key"] == "rp_filter"
            for name in (self.snapshot.interfaces("ipv4") if change["interface"] == "all" else [change["interface"]])
            if self._strict_after(name, plan["changes"]) and self.snapshot.effective("rp_filter", name) != STRICT))
        found = self.conflicts([name for name in becoming_strict if strict.networks_for(self.sources, name)])
        plan.update(becoming_strict=becoming_strict, conflicts=found, refused=bool(found) and not force)
        return plan

    def _strict_after(self, interface, changes):
        planned = {change["interface"]: change["after"] for change in changes if change["key"] == "rp_filter"}
        if interface == "default":
            return planned.get("default", self.snapshot.get("ipv4", "default", "rp_filter")) == STRICT
        return self.snapshot.effective("rp_filter", interface, planned.get("all"), planned.get(interface)) == STRICT


def _sysctl_name(row):
    family, name = conf.family_and_name(row["key"])
    return conf.sysctl_key(family, row["interface"], name)
