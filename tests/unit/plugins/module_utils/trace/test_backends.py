"""Backends on listings recorded in the kube lab (tests/unit/fixtures/backends/)."""

import calendar
import shlex
import time

import pytest
from replay import ReplayRunner

from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError
from ansible_collections.packetpath.linux.plugins.module_utils.flow import Flow
from ansible_collections.packetpath.linux.plugins.module_utils.trace import backends

LEGACY = {"iptables-legacy": "/usr/sbin/iptables-legacy", "ip6tables-legacy": "/usr/sbin/ip6tables-legacy"}
NFT = {"nft": "/usr/sbin/nft"}
TCP_30080 = Flow.from_params({"proto": "tcp", "dport": "30080"})


@pytest.fixture
def legacy(fixture_text, tmp_path):
    answers = {}
    for family, command in (("ipv4", "iptables-legacy"), ("ipv6", "ip6tables-legacy")):
        for chain in ("PREROUTING", "OUTPUT"):
            argv = (LEGACY[command], "-w", "5", "-t", "raw", "-S", chain)
            answers[argv] = (0, fixture_text("backends/%s-S-%s.txt" % (command, chain)), "")
    backend = backends.IptablesBackend(ReplayRunner(LEGACY, answers), "legacy")
    names = {}
    for family in ("ipv4", "ipv6"):
        names[family] = str(tmp_path / family)
        (tmp_path / family).write_text("raw\nnat\nfilter\n")
    backend.LEGACY_TABLE_NAMES = names
    return backend


def test_legacy_lists_only_tagged_rules_with_their_limits(legacy):
    rules = legacy.list_rules()
    by_flow = {}
    for rule in rules:
        by_flow.setdefault(rule.flow_id, []).append(rule)
    # packetpath:abc123 and abc124 are not a flow id (12 hex digits), packetpath:x has no rate limit: they only look
    # like ours, and are someone else's (issue #42).
    assert sorted(by_flow) == ["625c0f8d239d", "950644b047e6"]
    assert sorted(r.unit for r in by_flow["625c0f8d239d"]) == [
        ("output", ("ipv4",), ""), ("output", ("ipv6",), ""), ("prerouting", ("ipv4",), ""),
        ("prerouting", ("ipv6",), "")]
    udp6 = by_flow["950644b047e6"][0]
    assert (udp6.hook, udp6.families, udp6.rate, udp6.burst) == ("prerouting", ("ipv6",), 3, 6)
    assert udp6.text.startswith("ip6tables -t raw -A PREROUTING -s 2001:db8:100::10/128 -i eth1 -p udp")


def test_legacy_deletes_exactly_the_listed_rule(legacy, fixture_text):
    rule = [r for r in legacy.list_rules() if r.flow_id == "950644b047e6"][0]
    listed = [line for line in fixture_text("backends/ip6tables-legacy-S-PREROUTING.txt").splitlines()
              if "950644b047e6" in line][0]
    assert rule.removal.argv == [LEGACY["ip6tables-legacy"], "-w", "5", "-t", "raw", "-D", "PREROUTING"] + \
        shlex.split(listed)[2:]


def test_legacy_skips_a_raw_table_that_does_not_exist(legacy, tmp_path):
    (tmp_path / "ipv4").write_text("nat\nfilter\n")
    (tmp_path / "ipv6").write_text("")
    assert legacy.list_rules() == []
    assert legacy.runner.calls == [], "listing a missing legacy table would create it"


@pytest.mark.parametrize("flow_params, fixture, family, chain", [
    ({"proto": "tcp", "dport": "30080"}, "iptables-legacy-S-PREROUTING.txt", "ipv4", "PREROUTING"),
    ({"proto": "udp", "src": "2001:db8:100::10", "sport": "40000-40010", "iif": "eth1"},
     "ip6tables-legacy-S-PREROUTING.txt", "ipv6", "PREROUTING"),
])
def test_a_rule_we_add_reads_back_word_for_word(legacy, fixture_text, flow_params, fixture, family, chain):
    flow = Flow.from_params(flow_params)
    rate, burst = (3, 6) if flow.proto == "udp" else (10, 20)
    action, text = legacy.add(flow, ("prerouting", (family,), ""), rate, burst, None)
    listed = [line for line in fixture_text("backends/" + fixture).splitlines() if flow.flow_id in line][0]
    assert shlex.split(text)[3:] == shlex.split(listed)
    assert action.argv[-len(shlex.split(listed)[2:]):] == shlex.split(listed)[2:]
    assert action.argv[:9] == [legacy.binary(family), "-w", "5", "-t", "raw", "-I", chain, "1", shlex.split(listed)[2]]


@pytest.fixture
def nftables(fixture_text):
    argv = (NFT["nft"], "-a", "list", "table", "inet", "packetpath")
    return backends.NftablesBackend(ReplayRunner(NFT, {argv: (0, fixture_text("backends/nft-a-list-table-inet-packetpath.txt"), "")}))


def test_nftables_lists_one_chain_per_flow_and_hook(nftables):
    rules = nftables.list_rules()
    icmp = Flow.from_params({"proto": "icmp", "dst": "198.51.100.13"}).flow_id
    assert sorted((r.flow_id, r.hook, r.rate, r.burst) for r in rules) == sorted([
        ("625c0f8d239d", "output", 10, 20), ("625c0f8d239d", "prerouting", 10, 20), (icmp, "prerouting", 10, 20)])
    assert nftables.table_exists
    out = [r for r in rules if r.hook == "output"][0]
    assert out.removal.argv == [NFT["nft"], "delete", "chain", "inet", "packetpath", "out_625c0f8d239d"]


def test_nftables_rules_we_add_read_back_as_nft_prints_them(nftables, fixture_text):
    listed = fixture_text("backends/nft-a-list-table-inet-packetpath.txt")
    for params, hook in (({"proto": "tcp", "dport": "30080"}, "prerouting"),
                         ({"proto": "icmp", "dst": "198.51.100.13"}, "prerouting")):
        flow = Flow.from_params(params)
        action, text = nftables.add(flow, (hook, (), ""), 10, 20, None)
        rule = text.split(": ", 1)[1]
        assert rule + " # handle" in listed, rule
        assert "add chain inet packetpath pre_%s { type filter hook prerouting priority -350;" % flow.flow_id in action.stdin


def test_nftables_drops_its_table_with_the_last_flow_only(nftables):
    rules = nftables.list_rules()
    assert nftables.remove(rules[:1])[-1].argv[1:3] == ["delete", "chain"]
    assert nftables.remove(rules, last=True)[-1].argv == [NFT["nft"], "delete", "table", "inet", "packetpath"]


def test_a_missing_nftables_table_holds_no_rules(fixture_text):
    argv = (NFT["nft"], "-a", "list", "table", "inet", "packetpath")
    backend = backends.NftablesBackend(ReplayRunner(NFT, {argv: (1, "", fixture_text("backends/nft-list-table-missing.stderr.txt"))}))
    assert backend.list_rules() == [] and not backend.table_exists
    assert backend.remove([], last=True) == []


def test_missing_tools_are_named():
    assert backends.make("nftables", ReplayRunner({}, {})).missing_tools() == ["nft"]
    assert backends.make("iptables_nft", ReplayRunner({}, {})).missing_tools() == ["iptables-nft", "ip6tables-nft"]
    with pytest.raises(OptionError, match="backend='pf'"):
        backends.make("pf", ReplayRunner({}, {}))


def test_auto_picks_native_nftables_from_what_iptables_nft_save_cannot_show(fixture_text):
    tools = dict(NFT, **{"iptables-nft-save": "/usr/sbin/iptables-nft-save", "iptables": "/usr/sbin/iptables"})
    answers = {
        (NFT["nft"], "-a", "list", "table", "inet", "packetpath"): (1, "", fixture_text("backends/nft-list-table-missing.stderr.txt")),
        ("/usr/sbin/iptables-nft-save",): (
            0,
            fixture_text("backends/iptables-nft-save-kube-node3.stdout.txt"),
            fixture_text("backends/iptables-nft-save-kube-node3.stderr.txt"),
        ),
        (NFT["nft"], "list", "tables"): (0, fixture_text("backends/nft-list-tables-kube-node3.txt"), ""),
        # No iptables-legacy binary here: is plain iptables the legacy one (iptables < 1.8)?
        ("/usr/sbin/iptables", "--version"): (0, fixture_text("iptables-version/iptables-1.8.9-nft.txt"), ""),
    }
    backend, reason = backends.choose(ReplayRunner(tools, answers), "auto")
    assert backend.name == "nftables"
    assert reason == "the host's ruleset is native nftables (ip filter, ip nat)"


def test_auto_picks_native_nftables_for_kube_proxy_s_nftables_mode(fixture_text):
    """`table ip kube-proxy` is an ip table, but not one iptables-nft makes (nor lists: its save prints nothing)."""
    tools = dict(NFT, **{"iptables-nft-save": "/usr/sbin/iptables-nft-save", "iptables": "/usr/sbin/iptables"})
    answers = {
        (NFT["nft"], "-a", "list", "table", "inet", "packetpath"): (1, "", fixture_text("backends/nft-list-table-missing.stderr.txt")),
        ("/usr/sbin/iptables-nft-save",): (0, "", ""),
        (NFT["nft"], "list", "tables"): (0, fixture_text("backends/nft-list-tables-kube-proxy-nftables-mode.txt"), ""),
        ("/usr/sbin/iptables", "--version"): (0, fixture_text("iptables-version/iptables-1.8.9-nft.txt"), ""),
    }
    backend, reason = backends.choose(ReplayRunner(tools, answers), "auto")
    assert (backend.name, reason) == ("nftables", "the host's ruleset is native nftables (ip kube-proxy)")


def test_each_backend_gives_its_nat_rules_in_the_format_nat_reads(fixture_text):
    """trace_results reads a service's NAT targets from every backend: iptables-save, `nft -j list ruleset`."""
    ruleset = fixture_text("nat/nft-j-list-ruleset-kube-proxy.json")
    nft = backends.make("nftables", ReplayRunner(NFT, {(NFT["nft"], "-j", "list", "ruleset"): (0, ruleset, "")}))
    assert nft.nat_rules("ipv4") == ("nftables", ruleset)
    assert backends.make("nftables", ReplayRunner({}, {})).nat_rules("ipv4") == ("nftables", "")  # no nft here
    save = fixture_text("backends/iptables-nft-save-service-endpoint-gone-router.txt")
    tools = {"iptables-nft": "/usr/sbin/iptables-nft", "ip6tables-nft": "/usr/sbin/ip6tables-nft"}
    iptables = backends.make("iptables_nft", ReplayRunner(tools, {("/usr/sbin/iptables-nft-save",): (0, save, "")}))
    assert iptables.nat_rules("ipv4") == ("iptables", save)


def test_auto_picks_legacy_where_the_rules_are(fixture_text, tmp_path):
    tools = {"iptables-legacy-save": "/usr/sbin/iptables-legacy-save", "iptables-legacy": "/usr/sbin/iptables-legacy",
             "ip6tables-legacy": "/usr/sbin/ip6tables-legacy"}
    answers = {("/usr/sbin/iptables-legacy-save",): (0, fixture_text("backends/iptables-legacy-save-kube-node1.txt"), "")}
    runner = ReplayRunner(tools, answers)
    backends.IptablesBackend.LEGACY_TABLE_NAMES = {"ipv4": str(tmp_path / "none"), "ipv6": str(tmp_path / "none")}
    try:
        backend, reason = backends.choose(runner, "auto")
    finally:
        del backends.IptablesBackend.LEGACY_TABLE_NAMES
    assert (backend.name, reason) == ("iptables_legacy", "the host's rules are in iptables-legacy")


# Issue #42: the kernel keeps the deadline too. Recorded by `make fixtures ONLY=backends`: TCP 30080 armed for 600 s on
# each kind of backend, and on nftables an ICMP flow with expires=0 beside it.
UNTIL = {"iptables-legacy": "2026-12-07T22:46:43", "iptables-nft": "2026-12-07T22:46:45", "nft": "2026-12-07T22:46:47"}


def epoch(stamp):
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S"))


@pytest.mark.parametrize("flavour", ["legacy", "nft"])
def test_an_iptables_rule_with_a_deadline_reads_back_word_for_word_and_expires_there(fixture_text, flavour):
    command = "iptables-" + flavour
    text = fixture_text("backends/%s-S-PREROUTING-until.txt" % command)
    argv = ("/usr/sbin/" + command, "-t", "raw", "-S", "PREROUTING")
    runner = ReplayRunner({command: argv[0]}, {argv: (0, text, "")})
    backend = backends.IptablesBackend(runner, flavour)
    until = epoch(UNTIL[command])
    action, written = backend.add(TCP_30080, ("prerouting", ("ipv4",), ""), 10, 20, until)
    listed = [line for line in text.splitlines() if line.startswith("-A ")][0]
    assert shlex.split(written)[3:] == shlex.split(listed)
    assert action.argv[-len(shlex.split(listed)[2:]):] == shlex.split(listed)[2:]
    rule = backend._parse("ipv4", "prerouting", "PREROUTING", listed)  # pylint: disable=protected-access
    assert rule.until == until and rule.as_dict()["until"] == UNTIL[command] + "Z"
    assert not rule.expired(until - 1) and rule.expired(until)
    assert backend.planned_removal(TCP_30080, ("prerouting", ("ipv4",), ""), 10, 20, until).argv == rule.removal.argv


def test_an_nft_rule_with_a_deadline_reads_back_as_nft_prints_it_in_utc(fixture_text):
    listed = fixture_text("backends/nft-a-list-table-inet-packetpath-until.txt")
    argv = (NFT["nft"], "-a", "list", "table", "inet", "packetpath")
    backend = backends.NftablesBackend(ReplayRunner(NFT, {argv: (0, listed, "")}))
    until = epoch(UNTIL["nft"])
    icmp = Flow.from_params({"proto": "icmp", "dst": "198.51.100.13"})
    for flow, deadline in ((TCP_30080, until), (icmp, None)):
        _action, text = backend.add(flow, ("prerouting", (), ""), 10, 20, deadline)
        assert text.split(": ", 1)[1] + " # handle" in listed
    assert sorted((r.flow_id, r.hook, r.until) for r in backend.list_rules()) == [
        (icmp.flow_id, "output", None), (icmp.flow_id, "prerouting", None),
        (TCP_30080.flow_id, "output", until), (TCP_30080.flow_id, "prerouting", until)]
