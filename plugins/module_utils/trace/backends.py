# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TRACE rules behind one interface: iptables-legacy, iptables-nft, native nftables.

Callers say "trace this flow at these hooks"; only this package knows the
commands.  Every rule we place carries the tag packetpath:<flow id> (an iptables
comment, an nft rule comment inside our own table), and we list, compare and
delete nothing but tagged rules: no flush, no restore, no reordering.
"""

import calendar
import ipaddress
import re
import shlex
import time
from dataclasses import dataclass
from typing import Optional

from ansible_collections.packetpath.linux.plugins.module_utils._common.addresses import NFT_PAYLOAD, family_of
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import HostError, OptionError
from ansible_collections.packetpath.linux.plugins.module_utils.trace.detect import parse_iptables_version


def iptables_lines(text):
    """The rules of `iptables-save` / `iptables -S` output, one per item. A comment may hold a line break, which
    iptables prints as it is inside the comment's double quotes: a physical line that leaves a quote open goes on
    in the next one (read line by line, a foreign comment turned the DROP after it into another "rule")."""
    pending = None
    for line in text.splitlines():
        pending = line if pending is None else pending + "\n" + line
        if len(re.findall(r'(?<!\\)"', pending)) % 2 == 0:
            yield pending
            pending = None
    if pending is not None:
        yield pending


TAG_PREFIX = "packetpath:"
# A rule is ours only in the form we write it: the full tag (the flow id, and the probe's kind where it is one of
# the probe's rules), not a comment that merely starts like it; with iptables also our target and rate limit.
OUR_TAG = re.compile(r"^packetpath:([0-9a-f]{12})(?::(from_probe|to_probe))?$")
_NFT_OUR_TAG = re.compile(r'comment "packetpath:([0-9a-f]{12})"')
HOOKS = ("prerouting", "output")
# A flow with a probe_src has, beside the rule of the whole flow, rules for the probe's packets alone, from it and
# back to it, with a rate limit of their own: other traffic on the port cannot use up the probe's trace. On
# iptables each is a rule of its own, tagged packetpath:<flow id>:<kind>.
PROBE_KINDS = ("from_probe", "to_probe")
BACKENDS = ("iptables_legacy", "iptables_nft", "nftables")
# Every rule of ours with an expiry stops matching at it in the kernel as well (issue #42): a sleeper killed, or a
# host rebooted into a restored ruleset, then leaves an inert rule, which the next arm, collect or cleanup removes.
# iptables' time match (xt_time) reads --datestop in UTC; nft reads and prints `meta time` in the local time of the
# process, which the runner sets to UTC (_common/command.py).
KERNEL_TIME = "%Y-%m-%dT%H:%M:%S"
NFT_TIME = "%Y-%m-%d %H:%M:%S"


def _stamp(epoch, form):
    return time.strftime(form, time.gmtime(epoch))


def _epoch(text, form):
    """The epoch of a UTC time in `form`; None where it does not read as one."""
    try:
        return calendar.timegm(time.strptime(text, form))
    except ValueError:
        return None


def run_checked(runner, argv, stdin=None):
    """Run a command; a failure raises HostError naming the command and what it said."""
    rc, out, err = runner.run(argv, data=stdin)
    if rc != 0:
        raise HostError("%s failed (rc=%d): %s" % (" ".join(argv), rc, (err or out).strip()))
    return out


@dataclass
class Action:
    """One command that changes the host: argv, and what to feed it on stdin."""

    argv: list
    stdin: Optional[str] = None

    def as_plan(self):
        return [list(self.argv), self.stdin]


@dataclass
class TraceRule:
    """One rule of ours, as the backend itself lists it."""

    backend: str
    flow_id: str
    hook: str
    families: tuple
    rate: Optional[int]
    burst: Optional[int]
    text: str
    removal: Action  # deletes exactly this rule
    kind: str = ""  # "" for the flow's rule, else one of PROBE_KINDS
    until: Optional[int] = None  # the epoch at which the kernel stops matching it; None: no expiry of its own

    @property
    def unit(self):
        return (self.hook, self.families, self.kind)

    def expired(self, now):
        """Whether the kernel no longer matches it: its expiry passed and its sleeper did not take it out."""
        return self.until is not None and self.until <= now

    def as_dict(self):
        return {
            "backend": self.backend,
            "flow_id": self.flow_id,
            "hook": self.hook,
            "families": list(self.families),
            "rate": self.rate,
            "burst": self.burst,
            "until": _stamp(self.until, KERNEL_TIME) + "Z" if self.until is not None else None,
            "rule": self.text,
        }


class Backend:
    """What every backend offers.  `units` says how a flow is split into rules."""

    name = None

    def __init__(self, runner):
        self.runner = runner

    def missing_tools(self):
        raise NotImplementedError

    def list_rules(self):
        raise NotImplementedError

    def nat_rules(self, family):
        """(its format, its text): the rules of this backend that diagnosis/evidence/nat.py reads for the targets
        a service's NAT gives; '' for the text where there are none to read."""
        raise NotImplementedError

    def units(self, flow, hooks):
        raise NotImplementedError

    def add(self, flow, unit, rate, burst, until):
        """Return (Action, text) for one new rule that the kernel stops matching at `until` (an epoch; None for
        never); text is how the rule reads, for diffs."""
        raise NotImplementedError

    def planned_removal(self, flow, unit, rate, burst, until):
        """The Action that will delete the rule add() makes, known before it is inserted (the expiry is armed
        with it first)."""
        raise NotImplementedError

    def remove(self, rules, last=False):
        """Actions deleting `rules`; `last` when no rule of ours stays in this backend."""
        return [rule.removal for rule in rules]

    def _run(self, argv):
        return run_checked(self.runner, argv)


# -- iptables (both flavours) -------------------------------------------------

_IPT_PROTO = {"icmpv6": "ipv6-icmp"}


def _port(value):
    low, high = value
    return str(low) if low == high else "%d:%d" % (low, high)


class IptablesBackend(Backend):
    """One rule per hook and family in the raw table, inserted at the top."""

    COMMANDS = {"ipv4": "iptables", "ipv6": "ip6tables"}
    # Legacy tables that exist in this namespace.  Listing a legacy table that does not
    # exist creates it (and its hooks), so legacy tables are looked up here first.
    LEGACY_TABLE_NAMES = {"ipv4": "/proc/net/ip_tables_names", "ipv6": "/proc/net/ip6_tables_names"}

    def __init__(self, runner, flavour):
        super().__init__(runner)
        self.flavour = flavour  # "legacy" or "nft"
        self.name = "iptables_" + flavour
        self._binaries = {}

    def binary(self, family):
        if family not in self._binaries:
            command = self.COMMANDS[family]
            path = self.runner.which("%s-%s" % (command, self.flavour))
            if path is None and self.flavour == "legacy":
                # iptables before 1.8 has no -legacy name: plain iptables is the legacy backend there.
                plain = self.runner.which(command)
                if plain and parse_iptables_version(self.runner.run([plain, "--version"])[1])[1] == self.name:
                    path = plain
            self._binaries[family] = path
        return self._binaries[family]

    def missing_tools(self):
        return ["%s-%s" % (self.COMMANDS[f], self.flavour) for f in ("ipv4", "ipv6") if not self.binary(f)]

    def _base(self, family):
        argv = [self.binary(family), "-t", "raw"]
        if self.flavour == "legacy":
            argv[1:1] = ["-w", "5"]  # wait for the xtables lock instead of failing beside kube-proxy
        return argv

    def legacy_tables(self, family):
        """The legacy tables loaded in this namespace (reading them creates none)."""
        try:
            with open(self.LEGACY_TABLE_NAMES[family]) as handle:
                return handle.read().split()
        except OSError:
            return []

    def _raw_table_exists(self, family):
        if self.flavour != "legacy":
            return True  # iptables-nft lists a missing table without creating it
        return "raw" in self.legacy_tables(family)

    def save(self, family):
        """iptables-save of one family ('' where nothing is loaded: saving would not create tables, but
        there is nothing to read)."""
        if not self.binary(family) or (self.flavour == "legacy" and not self.legacy_tables(family)):
            return ""
        return run_checked(self.runner, [self.binary(family) + "-save"])

    def nat_rules(self, family):
        return "iptables", self.save(family)

    def list_rules(self):
        rules = []
        for family in ("ipv4", "ipv6"):
            if not self.binary(family) or not self._raw_table_exists(family):
                continue
            for hook in HOOKS:
                chain = hook.upper()
                out = self._run(self._base(family) + ["-S", chain])
                for line in iptables_lines(out):
                    rule = self._parse(family, hook, chain, line)
                    if rule:
                        rules.append(rule)
        return rules

    def _parse(self, family, hook, chain, line):
        if TAG_PREFIX not in line or not line.startswith("-A %s " % chain):
            return None
        words = shlex.split(line)
        options = dict(zip(words, words[1:]))
        tag = OUR_TAG.match(options.get("--comment", ""))
        if tag is None or options.get("-j") != "TRACE" or "--limit" not in options:
            return None  # someone else's rule that only looks like ours (issue #42): never ours to remove
        flow_id, kind = tag.group(1), tag.group(2) or ""
        rate = options.get("--limit", "").split("/")[0]
        removal = Action(self._base(family) + ["-D", chain] + words[2:])
        return TraceRule(self.name, flow_id, hook, (family,),
                         int(rate) if rate.isdigit() else None,
                         int(options["--limit-burst"]) if options.get("--limit-burst", "").isdigit() else None,
                         self._command_text(family, line), removal, kind,
                         _epoch(options["--datestop"], KERNEL_TIME) if "--datestop" in options else None)

    def _command_text(self, family, rule):
        """How an operator would type the rule: `ip6tables -t raw -A OUTPUT ...` tells the family apart."""
        return "%s -t raw %s" % (self.COMMANDS[family], rule)

    def units(self, flow, hooks):
        probe_family = family_of(flow.probe_src) if flow.probe_src else None
        return [(hook, (family,), kind) for hook in hooks for family in flow.families
                for kind in ("",) + (PROBE_KINDS if family == probe_family else ())]

    def match(self, flow, hook, family, kind=""):
        if kind:  # the probe's packets: from probe_src on the port, or back to it on the port
            proto = _IPT_PROTO.get(flow.proto, flow.proto)
            address, port = ("-s", "--sport") if kind == "from_probe" else ("-d", "--dport")
            return [address, flow.probe_src, "-p", proto, "-m", proto, port, _port(flow.port)]
        args = []
        if flow.src:
            args += ["-s", flow.src]
        if flow.dst:
            args += ["-d", flow.dst]
        if flow.iif and hook == "prerouting":
            args += ["-i", flow.iif]
        if flow.oif and hook == "output":
            args += ["-o", flow.oif]
        if flow.proto != "any":
            proto = _IPT_PROTO.get(flow.proto, flow.proto)
            args += ["-p", proto]
            if flow.sport or flow.dport:
                args += ["-m", proto]
            if flow.port:  # multiport's --ports matches the source or the destination port
                args += ["-m", "multiport", "--ports", _port(flow.port)]
            if flow.sport:
                args += ["--sport", _port(flow.sport)]
            if flow.dport:
                args += ["--dport", _port(flow.dport)]
        return args

    def _rule(self, flow, unit, rate, burst, until):
        hook, (family,), kind = unit
        return family, hook.upper(), self.match(flow, hook, family, kind) + [
            "-m", "comment", "--comment", TAG_PREFIX + flow.flow_id + (":" + kind if kind else ""),
        ] + (["-m", "time", "--datestop", _stamp(until, KERNEL_TIME)] if until is not None else []) + [
            "-m", "limit", "--limit", "%d/sec" % rate, "--limit-burst", str(burst),
            "-j", "TRACE",
        ]

    def add(self, flow, unit, rate, burst, until):
        family, chain, rule = self._rule(flow, unit, rate, burst, until)
        text = self._command_text(family, " ".join(shlex.quote(word) for word in ["-A", chain] + rule))
        return Action(self._base(family) + ["-I", chain, "1"] + rule), text

    def planned_removal(self, flow, unit, rate, burst, until):
        family, chain, rule = self._rule(flow, unit, rate, burst, until)
        return Action(self._base(family) + ["-D", chain] + rule)


# -- native nftables -------------------------------------------------------------

NFT_TABLE = "packetpath"
NFT_CHAIN_PREFIX = {"prerouting": "pre_", "output": "out_"}
# Below raw (-300): the trace is on before anything else of the host sees the packet.
NFT_PRIORITY = -350
_NFT_CHAIN = re.compile(r"^\s*chain (pre|out)_([0-9a-f]{12}) \{")
_NFT_LIMIT = re.compile(r"limit rate (\d+)/second burst (\d+) packets")
_NFT_UNTIL = re.compile(r'meta time < "([^"]+)"')
_NFT_PROTO = {"icmpv6": "ipv6-icmp"}


def _nft_ports(value):
    return str(value[0]) if value[0] == value[1] else "%d-%d" % value


def _nft_address(network):
    """A single address as nft prints it (no prefix length); a network as it is (2001:db8::/32 stays a network)."""
    parsed = ipaddress.ip_network(network)
    return str(parsed.network_address) if parsed.prefixlen == parsed.max_prefixlen else network


class NftablesBackend(Backend):
    """Our own table inet packetpath; one base chain per flow and hook, holding one rule."""

    name = "nftables"
    table_exists = False
    foreign_chains = ()

    def missing_tools(self):
        return [] if self.runner.which("nft") else ["nft"]

    def _nft(self):
        return self.runner.which("nft")

    def nat_rules(self, family):
        """`nft -j list ruleset`: every table of this namespace as JSON, both families ('' where nft is missing)."""
        return "nftables", (run_checked(self.runner, [self._nft(), "-j", "list", "ruleset"]) if self._nft() else "")

    def list_rules(self):
        rc, out, err = self.runner.run([self._nft(), "-a", "list", "table", "inet", NFT_TABLE])
        self.table_exists = rc == 0
        if rc != 0:
            if "No such file or directory" in err:
                return []
            raise HostError("nft list table inet %s failed (rc=%d): %s" % (NFT_TABLE, rc, err.strip()))
        rules = []
        chain, listed = None, set()
        # A chain in our table that is not one of ours (someone added it): the table is then not ours to delete.
        self.foreign_chains = [line.split()[1] for line in out.splitlines()
                               if line.strip().startswith("chain ") and not _NFT_CHAIN.match(line)]
        for line in out.splitlines():
            found = _NFT_CHAIN.match(line)
            if found:
                chain = (found.group(1), found.group(2))
                continue
            tag = _NFT_OUR_TAG.search(line)
            if chain and "meta nftrace set 1" in line and tag and tag.group(1) == chain[1] and chain not in listed:
                listed.add(chain)  # a port either way is two rules in the chain; the chain is the unit
                text = line.split(" # handle ")[0].strip()
                limit = _NFT_LIMIT.search(text)
                until = _NFT_UNTIL.search(text)
                hook = "prerouting" if chain[0] == "pre" else "output"
                name = "%s_%s" % chain
                rules.append(TraceRule(
                    self.name, chain[1], hook, (),
                    int(limit.group(1)) if limit else None, int(limit.group(2)) if limit else None,
                    "chain %s: %s" % (name, text),
                    Action([self._nft(), "delete", "chain", "inet", NFT_TABLE, name]),
                    until=_epoch(until.group(1), NFT_TIME) if until else None,
                ))
        return rules

    def units(self, flow, hooks):
        # The flow id fixes the families (and the probe's rules), and each flow has one chain per hook: the hook is
        # the unit.
        return [(hook, (), "") for hook in hooks]

    def match(self, flow, hook):
        """The rule's match words; one list per direction where the flow selects a port either way (nft has no
        "source or destination port" in one rule)."""
        words = []
        if len(flow.families) == 1 and not (flow.src or flow.dst):
            words += ["meta", "nfproto", flow.families[0]]
        for option, direction in (("src", "saddr"), ("dst", "daddr")):
            value = getattr(flow, option)
            if value:
                words += [NFT_PAYLOAD[family_of(value)], direction, _nft_address(value)]
        if flow.iif and hook == "prerouting":
            words += ["iifname", '"%s"' % flow.iif.replace("+", "*")]
        if flow.oif and hook == "output":
            words += ["oifname", '"%s"' % flow.oif.replace("+", "*")]
        if flow.proto != "any":
            if flow.probe_src:  # the probe's packets first, from it on the port and back to it, their own budget
                family = NFT_PAYLOAD[family_of(flow.probe_src)]
                probe = [[family, direction, flow.probe_src, flow.proto, field, _nft_ports(flow.port)]
                         for direction, field in (("saddr", "sport"), ("daddr", "dport"))]
            else:
                probe = []
            if not (flow.sport or flow.dport or flow.port):  # a port match implies the protocol; nft prints it so
                words += ["meta", "l4proto", _NFT_PROTO.get(flow.proto, flow.proto)]
            for option, field in (("sport", "sport"), ("dport", "dport")):
                value = getattr(flow, option)
                if value:
                    words += [flow.proto, field, _nft_ports(value)]
            if flow.port:
                return probe + [words + [flow.proto, field, _nft_ports(flow.port)] for field in ("sport", "dport")]
        return [words]

    def add(self, flow, unit, rate, burst, until):
        hook = unit[0]
        chain = NFT_CHAIN_PREFIX[hook] + flow.flow_id
        expiry = ["meta", "time", "<", '"%s"' % _stamp(until, NFT_TIME)] if until is not None else []
        rules = [" ".join(words + expiry + [
            "limit", "rate", "%d/second" % rate, "burst", str(burst), "packets",
            "meta", "nftrace", "set", "1", "comment", '"%s%s"' % (TAG_PREFIX, flow.flow_id),
        ]) for words in self.match(flow, hook)]
        script = "\n".join([
            "add table inet %s" % NFT_TABLE,
            "add chain inet %s %s { type filter hook %s priority %d; policy accept; }" % (NFT_TABLE, chain, hook, NFT_PRIORITY),
        ] + ["add rule inet %s %s %s" % (NFT_TABLE, chain, rule) for rule in rules]) + "\n"
        return Action([self._nft(), "-f", "-"], script), "chain %s: %s" % (chain, "; ".join(rules))

    def planned_removal(self, flow, unit, rate, burst, until):
        return Action([self._nft(), "delete", "chain", "inet", NFT_TABLE, NFT_CHAIN_PREFIX[unit[0]] + flow.flow_id])

    def remove(self, rules, last=False):
        actions = [rule.removal for rule in rules]
        if last and (rules or self.table_exists) and not self.foreign_chains:
            # The table is ours alone: it goes with its last flow (or, left empty, whenever we clean up).
            actions.append(Action([self._nft(), "delete", "table", "inet", NFT_TABLE]))
        return actions


def make(name, runner):
    if name == "nftables":
        return NftablesBackend(runner)
    if name in ("iptables_legacy", "iptables_nft"):
        return IptablesBackend(runner, name.split("_", 1)[1])
    raise OptionError("backend", name, "one of auto, %s" % ", ".join(BACKENDS))


def installed(runner):
    """Every backend whose tools this host has."""
    return [b for b in (make(name, runner) for name in BACKENDS) if not b.missing_tools()]


def _has_rules(runner, command):
    """Whether an iptables-save of this flavour shows any rule at all (ours or not)."""
    path = runner.which(command)
    if not path:
        return False, ""
    rc, out, err = runner.run([path])
    return rc == 0 and "\n-A " in "\n" + out, out + err


# The only tables iptables-nft makes (in families ip and ip6).
XTABLES = ("filter", "nat", "mangle", "raw", "security")


def _native_nft_tables(runner, nft_save):
    """Tables iptables-nft did not make: any inet/bridge/netdev/arp table, an ip or ip6 table of another name than
    iptables' (kube-proxy's nftables mode: `table ip kube-proxy`), or one iptables-nft calls incompatible."""
    rc, out, _err = runner.run([runner.which("nft"), "list", "tables"])
    tables = [line.split(None, 2)[1:] for line in out.splitlines() if rc == 0 and line.startswith("table ")]
    native = ["%s %s" % (family, name) for family, name in tables
              if (family not in ("ip", "ip6") or name not in XTABLES) and name != NFT_TABLE]
    native += ["ip %s" % name for name in re.findall(r"# Table `(\w+)' is incompatible", nft_save)
               if "ip %s" % name not in native]
    return native


def choose(runner, requested):
    """The backend to use, and why, in words for the result.

    auto: where our rules already are; else the firewall the host really uses
    (a native nftables ruleset, rules in iptables-legacy, rules in iptables-nft);
    else what `iptables --version` says; else nft if it is installed.
    """
    if requested != "auto":
        return make(requested, runner), "chosen by the backend option"
    usable = installed(runner)
    for backend in usable:
        if backend.list_rules():
            return backend, "rules of this collection are already in %s" % backend.name
    legacy_used, _legacy_save = _has_rules(runner, "iptables-legacy-save")
    nft_used, nft_save = _has_rules(runner, "iptables-nft-save")
    by_name = {b.name: b for b in usable}
    native = _native_nft_tables(runner, nft_save) if "nftables" in by_name else []
    if native:
        return by_name["nftables"], "the host's ruleset is native nftables (%s)" % ", ".join(native)
    if legacy_used and "iptables_legacy" in by_name:
        return by_name["iptables_legacy"], "the host's rules are in iptables-legacy"
    if nft_used and "iptables_nft" in by_name:
        return by_name["iptables_nft"], "the host's rules are in iptables-nft"
    iptables = runner.which("iptables")
    if iptables:
        version_text = runner.run([iptables, "--version"])[1]
        flavour = parse_iptables_version(version_text)[1]
        if flavour in by_name:
            return by_name[flavour], "no rules yet; `iptables --version` says %s" % version_text.strip()
    if "nftables" in by_name:
        return by_name["nftables"], "no iptables; nft is installed"
    raise HostError("no trace backend: install iptables (legacy or nft) or nftables on this host")
