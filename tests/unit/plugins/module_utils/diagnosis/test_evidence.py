"""The evidence readers on what a lab namespace's /proc/net said: counters that moved, and who listens."""

import json

import pytest
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import causes
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis.evidence import counters, sockets
from recorded import fixture_path


def read(name):
    with open(fixture_path("evidence", name), encoding="utf-8") as handle:
        return handle.read()


def snapshot(moment):
    return counters.snapshot([fixture_path("evidence", "%s-%s.txt" % (moment, name))
                              for name in ("snmp", "netstat", "snmp6")])


def test_counter_names_are_nstats():
    parsed = counters.parse(read("before-snmp.txt"))
    assert "IpInAddrErrors" in parsed and "UdpNoPorts" in parsed and "IcmpMsgOutType3" not in parsed
    assert "TcpExtIPReversePathFilter" in counters.parse(read("before-netstat.txt"))
    assert "IpExtInNoRoutes" in counters.parse(read("before-netstat.txt"))
    assert "Ip6InNoRoutes" in counters.parse(read("before-snmp6.txt"))


def test_a_refused_connect_and_two_datagrams_to_nothing_move_what_no_listener_reads():
    delta = counters.moved(snapshot("before"), snapshot("after"))
    assert delta["UdpNoPorts"] == 2 and delta["TcpOutRsts"] == 1
    assert delta["IcmpOutDestUnreachs"] == 2 and delta["IcmpMsgOutType3"] == 2
    assert causes.corroborating("no_listener", delta) == {
        "TcpOutRsts": 1, "UdpNoPorts": 2, "IcmpOutDestUnreachs": 2}
    assert causes.corroborating("rp_filter", delta) == {}
    assert all(value > 0 for value in delta.values())  # only what went up


def test_a_file_the_kernel_lacks_is_skipped():
    assert counters.snapshot(["/nonexistent/snmp6"]) == {}


def listening():
    return sockets.listening({(proto, family): fixture_path("evidence", "sockets-%s%s.txt" % (
        proto, "6" if family == "ipv6" else "")) for proto in ("tcp", "udp") for family in ("ipv4", "ipv6")})


def test_the_kernel_tables_say_who_listens():
    found = listening()
    assert {"proto": "tcp", "address": "::", "port": 8080, "queued": 0} in found
    assert {"proto": "udp", "address": "127.0.0.1", "port": 5353, "queued": 0, "drops": 0} in found
    assert all("drops" not in socket for socket in found if socket["proto"] == "tcp")  # udp's column only


@pytest.mark.parametrize("proto,address,port,takes", [
    ("tcp", "198.18.20.2", 8080, True),  # the dual-stack wildcard takes IPv4 too
    ("tcp", "2001:db8::5", 8080, True),
    ("tcp", "198.18.20.2", 9090, False),
    ("udp", "127.0.0.1", 5353, True),
    ("udp", "127.0.0.2", 5353, False),  # bound to another address
    ("udp", "127.0.0.1", 8080, False),  # tcp listens there, not udp
])
def test_who_takes_a_packet(proto, address, port, takes):
    same, nearby = sockets.takers(listening(), proto, address, port)
    assert bool(same) == takes
    if proto == "udp" and port == 8080:
        assert {"proto": "tcp", "address": "::", "port": 8080, "queued": 0} in nearby  # what listens there instead


def test_conntrack_s_statistics_are_summed_over_the_cpus_and_corroborate_an_invalid_drop():
    # The router of incidents/conntrack-invalid after the probe: it could not place the server's SYN-ACKs.
    with open(fixture_path("incidents", "conntrack-invalid.json"), encoding="utf-8") as handle:
        recorded = json.load(handle)["result"]
    stats = counters.parse_conntrack_stat(recorded["proc_net"][counters.CONNTRACK_STAT])
    assert set(stats) == set(counters.CONNTRACK_NAMES.values()) and stats["NfctInvalid"] >= 2
    assert recorded["finding"]["evidence"]["counters"]["NfctInvalid"] >= 2
    assert causes.corroborating("conntrack_invalid", recorded["finding"]["counters"])["NfctInvalid"] >= 2
