# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Switch the TRACE of one flow on or off, idempotently, on whichever backend.

Plain Python: it is handed a runner and a backend, decides what must change,
does it (unless in check mode), and says what it did in a dict the module
returns as it is.
"""

import math
import time
from datetime import datetime, timezone

from ansible_collections.packetpath.linux.plugins.module_utils.trace import backends, expiry, nflog

DEFAULT_RATE = 10
DEFAULT_BURST = 20
DEFAULT_EXPIRES = 900


def _iso(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if epoch else None


def marker():
    """Where the trace starts, for the readers of the kernel log: wall time and uptime (dmesg's clock)."""
    with open("/proc/uptime") as handle:
        uptime = float(handle.read().split()[0])
    now = time.time()
    return {"time": _iso(now), "epoch": round(now, 3), "uptime": uptime}


def _apply(runner, actions, check_mode):
    if check_mode:
        return
    for action in actions:
        backends.run_checked(runner, action.argv, action.stdin)


def _diff(name, before, after):
    return {
        "before_header": "%s (before)" % name,
        "after_header": "%s (after)" % name,
        "before": "".join(line + "\n" for line in before),
        "after": "".join(line + "\n" for line in after),
    }


def _legacy_logger(backend, families, check_mode, result):
    """Legacy TRACE goes where nf_log is bound: NFLOG of this namespace for the time of the trace."""
    if backend.name != "iptables_legacy":
        return
    changes, logger, notes = nflog.bind(backend.runner, families, check_mode)
    result["nf_log"] = dict(nflog.report(), bound=changes, logger=logger)
    result["warnings"].extend(notes)
    if changes:
        result["changed"] = True


def _deadline_kept(flow, mine, expires):
    """Whether the flow's rules carry the deadline it keeps: none without an expiry, else the running sleeper's (a
    second present does not re-arm). A rule without it, or with another (its sleeper gone, an expiry switched off
    or on), is placed anew."""
    if not expires:
        return all(r.until is None for r in mine)
    armed = expiry.current(flow.flow_id)
    return bool(armed and mine) and all(r.until == math.ceil(armed["expires_at"]) for r in mine)


def _expiry(backend, flow, until, removals, rebuilt, check_mode):
    """Keep the dead-man switch in step with the rules: (expires_at, changed). `removals` delete every rule of the
    flow that is or is about to be in place."""
    armed = expiry.current(flow.flow_id)
    if until is None:
        if armed and not check_mode:
            expiry.cancel(flow.flow_id)
        return None, armed is not None
    if armed and not rebuilt:
        return armed["expires_at"], False
    if check_mode:
        return until, True
    drop_table = [backend.runner.which("nft"), backends.NFT_TABLE] if backend.name == "nftables" else None
    nf_log = nflog.restore_plan() if backend.name == "iptables_legacy" else None
    record = expiry.arm(flow.flow_id, backend.name, until, removals, drop_table, nf_log)
    return record["expires_at"], True


def _remove_expired(backend, flow, rules, check_mode):
    """Of the backend's `rules`, those of other flows whose deadline passed in the kernel while they stayed (their
    sleeper was killed): inert, and taken out by the next arm on the host, with their records."""
    now = time.time()
    going = [r for r in rules if r.flow_id != flow.flow_id and r.expired(now)]
    if going:
        _apply(backend.runner, backend.remove(going), check_mode)
        if not check_mode:
            for flow_id in sorted(set(r.flow_id for r in going)):
                expiry.cancel(flow_id)
    return going


def _remove_from_other_backends(backend, flow, check_mode):
    """A flow lives in one backend at a time (its expiry follows it): take it out of the others."""
    removed = []
    for other in backends.installed(backend.runner):
        if other.name == backend.name:
            continue
        rules = other.list_rules()
        going = [r for r in rules if r.flow_id == flow.flow_id]
        if going:
            _apply(backend.runner, other.remove(going, last=len(going) == len(rules)), check_mode)
            removed += [r.as_dict() for r in going]
    return removed


def present(backend, reason, flow, hooks, rate, burst, expires, check_mode):
    moved = _remove_from_other_backends(backend, flow, check_mode)
    listed = backend.list_rules()
    expired = _remove_expired(backend, flow, listed, check_mode)
    rules = [r for r in listed if r not in expired]  # as the backend lists them once the expired ones are gone
    mine = [r for r in rules if r.flow_id == flow.flow_id]
    others = [r for r in rules if r.flow_id != flow.flow_id]
    wanted = backend.units(flow, hooks)
    result = {"changed": bool(expired), "backend": backend.name, "backend_reason": reason, "flow_id": flow.flow_id,
              "flow": flow.describe(), "warnings": [], "marker": marker()}
    if moved or expired:
        result["removed"] = moved + [r.as_dict() for r in expired]
    for flow_id in sorted(set(r.flow_id for r in expired)):
        result["warnings"].append("removed the rules of flow %s: their expiry had passed, and the kernel no longer "
                                  "matched them (its sleeper did not take them out)" % flow_id)
    until = math.ceil(time.time() + expires) if expires else None  # where the rules are placed anew
    rebuilt = bool(moved) or not _deadline_kept(flow, mine, expires) or sorted(r.unit for r in mine) != sorted(wanted) or any(
        (r.rate, r.burst) != (rate, burst) for r in mine)
    if rebuilt:
        # A changed rate, burst, hook set or deadline replaces the flow's rules: delete ours, insert anew. The expiry
        # is armed first, with the deletes of the rules there and of those about to go in: a kill at any point of
        # what follows leaves no rule of ours without a deadline.
        additions = [backend.add(flow, unit, rate, burst, until) for unit in wanted]
        expires_at, expiry_changed = _expiry(
            backend, flow, until, [r.removal for r in mine] + [
                backend.planned_removal(flow, unit, rate, burst, until) for unit in wanted], True, check_mode)
        _apply(backend.runner, backend.remove(mine) + [action for action, _unused in additions], check_mode)
        if check_mode:
            after_texts = [r.text for r in others] + [text for _unused, text in additions]
            result["rules"] = [{"backend": backend.name, "flow_id": flow.flow_id, "rule": text}
                               for _unused, text in additions]
        else:
            after = backend.list_rules()
            mine = [r for r in after if r.flow_id == flow.flow_id]
            after_texts = [r.text for r in after]
    else:
        after_texts = [r.text for r in rules]
        expires_at, expiry_changed = _expiry(backend, flow, until, [r.removal for r in mine], False, check_mode)
    result.setdefault("rules", [r.as_dict() for r in mine])
    result["changed"] = result["changed"] or rebuilt or expiry_changed
    result["expires_at"] = _iso(expires_at)
    _legacy_logger(backend, flow.families, check_mode, result)
    result["diff"] = _diff(backend.name, [r.text for r in rules], after_texts)
    return result


def absent(runner, flow, check_mode):
    """Remove the flow's rules wherever they are (every backend), and its expiry; and the rules of any flow that
    the kernel no longer matches (their expiry passed without their sleeper: see _remove_expired)."""
    now = time.time()
    return _remove(runner, lambda rule: rule.flow_id == flow.flow_id or rule.expired(now), [flow.flow_id],
                   check_mode, {"flow_id": flow.flow_id, "flow": flow.describe()})


def absent_all(runner, check_mode):
    """Remove every rule, table and expiry this collection placed on the host, and nothing else."""
    return _remove(runner, lambda rule: True, expiry.armed_flows(), check_mode, {})


def _remove(runner, selected, flow_ids, check_mode, result):
    result.update({"changed": False, "removed": [], "nft_tables": [], "expiry": [], "warnings": [],
                   "marker": marker()})
    before, after = [], []
    legacy_left = set()
    for backend in backends.installed(runner):
        rules = backend.list_rules()
        going = [r for r in rules if selected(r)]
        staying = [r for r in rules if not selected(r)]
        before += ["%s: %s" % (backend.name, r.text) for r in rules]
        after += ["%s: %s" % (backend.name, r.text) for r in staying]
        if backend.name == "iptables_legacy":
            legacy_left = set(f for r in staying for f in r.families)
        actions = backend.remove(going, last=not staying)
        if actions:
            _apply(runner, actions, check_mode)
            result["changed"] = True
            result["removed"] += [r.as_dict() for r in going]
            if len(actions) > len(going):  # the backend's own container went too
                result["nft_tables"].append("inet %s" % backends.NFT_TABLE)
    for flow_id in sorted(set(flow_ids) | set(rule["flow_id"] for rule in result["removed"])):
        record = expiry.record(flow_id)
        if record is None:
            continue
        result["expiry"].append(_timer(flow_id, record))
        result["changed"] = True
        if not check_mode:
            expiry.cancel(flow_id)
    restored = nflog.restore([f for f in nflog.PF if f not in legacy_left], check_mode)
    if restored:
        result["changed"] = True
        result["nf_log"] = {"restored": restored}
    result["diff"] = _diff("trace rules of packetpath", before, after)
    return result


def _timer(flow_id, record):
    timer = {"flow_id": flow_id, "pid": record.get("pid"), "expires_at": _iso(record.get("expires_at")),
             "running": expiry.current(flow_id) is not None}
    if record.get("failed"):  # the expiry fired and some deletes failed after their retries
        timer["failed"] = record["failed"]
    return timer


def leftovers(runner):
    """What of this collection is on the host now (read-only): rules, our nft table, expiry records, and
    nf_log bindings waiting to be put back."""
    found = {"rules": [], "nft_tables": [], "expiry": [], "nf_log_bindings": sorted(nflog.changed_bindings())}
    now = time.time()
    for backend in backends.installed(runner):
        found["rules"] += [dict(rule.as_dict(), expired=rule.expired(now)) for rule in backend.list_rules()]
        if backend.name == "nftables" and backend.table_exists:
            found["nft_tables"].append("inet %s" % backends.NFT_TABLE)
    for flow_id in expiry.armed_flows():
        record = expiry.record(flow_id)
        if record is not None:
            found["expiry"].append(_timer(flow_id, record))
    return found
