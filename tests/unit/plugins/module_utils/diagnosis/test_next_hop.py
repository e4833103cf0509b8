"""Below the routing table, across two hosts (diagnosis/next_hop.py), from the two hosts of each incident as recorded
in the lab: the sender's neighbour entry against the MACs of the host that holds its next hop's address, and the
sender's unanswered ARP against that host's ARP policy. Each join names its cause only where both hosts' facts say so.
"""

import copy

import pytest
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import causes, finding, verdict
from ansible_collections.packetpath.linux.plugins.module_utils.probe import summary as probe_summary
from test_finding import INCIDENTS, RecordedEvidence, recorded_incident

TIMEOUTS = {"summary": probe_summary([{"result": "timeout"}] * 2)}


def fleet(name, kernel=False):
    """{host: gathered} for the incident's two recorded hosts, each finding decided again from its recorded
    evidence, with the link-layer facts trace_results sets beside it."""
    recorded = recorded_incident(name)
    truth, port = recorded["incident"], recorded["port"]
    other = "sent_to" if "sent_to" in truth else "sent_by"
    hosts = {}
    for host, result in ((truth["culprit"], recorded["result"]), (truth[other], recorded[other])):
        found = finding.explain(result["packets"], (port, port), RecordedEvidence(result, kernel=kernel))
        found["link_layer"] = copy.deepcopy(result["finding"].get("link_layer"))  # recorded since the ARP joins
        hosts[host] = {"trace": {"packets": result["packets"], "finding": found}}
    return hosts


def report(hosts):
    built = verdict.build_report(hosts, {"port": 8080}, TIMEOUTS)
    return built["verdict"], {row["host"]: row for row in built["hosts"]}


# Each incident a join decides, replayed from its two hosts' recorded evidence (duplicate-address-answered, whose
# probe was answered, has its own test below).
JOINED = [name for name in INCIDENTS if {"sent_by", "sent_to"} & set(recorded_incident(name)["incident"])
          and name != "duplicate-address-answered"]


@pytest.mark.parametrize("name", JOINED)
def test_the_join_that_decides_is_the_one_the_cause_record_names(name):
    truth = recorded_incident(name)["incident"]
    found, rows = report(fleet(name))
    assert (found["culprit"], found["cause"]) == (truth["culprit"], truth["cause"]), found
    assert rows[truth["culprit"]]["detector"] == causes.CATALOGUE[truth["cause"]].detector
    assert all(row.get("detector") is None for host, row in rows.items() if host != truth["culprit"]), rows


def interface(hosts, host, dev):
    return next(each for each in hosts[host]["trace"]["finding"]["link_layer"]["interfaces"] if each["dev"] == dev)


def test_a_static_entry_with_a_mac_the_holder_does_not_have_is_the_sender_s_cause():
    hosts = fleet("neighbour-stale-mac")
    router = hosts["router"]["trace"]["finding"]
    assert router["cause"] is None and router["evidence"]["next_hop"]["lladdr"] == "00:00:5e:00:53:01"
    found, rows = report(hosts)
    mac = interface(hosts, "server", "eth0")["mac"]
    assert (found["culprit"], found["cause"]) == ("router", "neighbour_wrong_lladdr"), found
    assert found["words"] == (
        "router: the neighbour entry for 198.18.20.2 on eth1 is PERMANENT with MAC 00:00:5e:00:53:01, but 198.18.20.2 "
        "is server's eth0, whose MAC is %s: the frames go to a MAC server does not have, and it drops them as not its "
        "own" % mac)
    assert found["fix"]["args"]["argv"] == ["ip", "-4", "neigh", "replace", "198.18.20.2", "lladdr", mac, "dev",
                                            "eth1", "nud", "permanent"]
    assert {host: row["cause"] for host, row in rows.items()} == {"router": "neighbour_wrong_lladdr", "server": None}


def test_the_holder_s_kernel_dropping_the_frame_as_not_its_own_corroborates_and_is_not_blamed():
    hosts = fleet("neighbour-stale-mac", kernel=True)
    assert hosts["server"]["trace"]["finding"]["cause"] == "kernel_drop"  # alone, the server names its kernel's drop
    found, rows = report(hosts)
    assert (found["culprit"], found["cause"]) == ("router", "neighbour_wrong_lladdr")
    assert "(the kernel agrees: OTHERHOST in ip_rcv_core on server's eth0)" in found["words"], found["words"]
    assert rows["router"]["kernel"] == "corroborates"
    assert rows["server"]["cause"] is None and rows["server"]["explained_by"] == {
        "host": "router", "cause": "neighbour_wrong_lladdr", "was": "kernel_drop",
        "words": hosts["server"]["trace"]["finding"]["words"]}


def test_an_entry_holding_one_of_the_holder_s_macs_names_nothing():
    hosts = fleet("neighbour-stale-mac")
    interface(hosts, "server", "eth0")["mac"] = "00:00:5E:00:53:01"  # the same MAC, written in capitals
    found, _rows = report(hosts)
    assert (found["culprit"], found["cause"]) == (None, "undecided"), found


def test_a_mac_another_host_of_the_fleet_has_is_named_and_a_holder_outside_the_fleet_decides_nothing():
    hosts = fleet("neighbour-stale-mac")
    router_eth0 = interface(hosts, "router", "eth0")
    router_eth0["mac"] = "00:00:5e:00:53:01"
    found, _rows = report(hosts)
    assert found["cause"] == "neighbour_wrong_lladdr" and "; 00:00:5e:00:53:01 is router's eth0:" in found["words"]
    del hosts["server"]
    assert report(hosts)[0]["cause"] == "undecided"


def test_a_neighbour_nobody_answers_is_the_holder_s_arp_policy_where_it_ignores_the_request():
    hosts = fleet("arp-ignore-vip")
    assert hosts["router"]["trace"]["finding"]["cause"] == "neighbour_failed"
    found, rows = report(hosts)
    assert (found["culprit"], found["cause"]) == ("server", "arp_ignored"), found
    assert found["words"] == (
        "server: router asks for 198.18.30.10 by ARP on eth1 and gets no answer (neighbour state FAILED): server holds "
        "198.18.30.10 on lo, not on eth0 where the request comes in, and arp_ignore = 1 there answers only for "
        "addresses configured on the interface asked")
    assert found["fix"]["args"] == {"interfaces": ["eth0", "all"], "settings": {"arp_ignore": 0},
                                    "persistent": "present"} and not found["fix"]["remediable"]
    assert found["line"] == "router \u2192 server \u2717"  # the packet waited at the router; the fix is the server's
    assert rows["router"]["cause"] is None and rows["router"]["explained_by"]["was"] == "neighbour_failed"


def test_the_asker_s_kernel_giving_up_corroborates_the_holder_s_arp_policy():
    found, rows = report(fleet("arp-ignore-vip", kernel=True))
    assert found["cause"] == "arp_ignored" and rows["server"]["kernel"] == "corroborates"
    assert "(the kernel agrees: NEIGH_FAILED in neigh_invalidate on router's eth1)" in found["words"], found["words"]


def test_an_arp_policy_that_answers_leaves_the_asker_s_own_cause():
    for change in ("answers", "on_the_link", "never", "down"):
        hosts = fleet("arp-ignore-vip")
        eth0, loopback = interface(hosts, "server", "eth0"), interface(hosts, "server", "lo")
        if change == "answers":
            eth0["arp"]["arp_ignore"] = 0
        elif change == "on_the_link":  # the address on the interface asked: arp_ignore 1 answers
            eth0["addresses"].append(loopback["addresses"].pop())
        elif change == "never":  # arp_ignore 8 answers nothing, wherever the address is
            eth0["arp"]["arp_ignore"] = 8
        else:
            eth0["up"] = False
        found, _rows = report(hosts)
        if change == "never":
            assert found["cause"] == "arp_ignored" and "server's arp_ignore = 8 on eth0 answers no ARP request" \
                in found["words"], found["words"]
        else:
            assert (found["culprit"], found["cause"]) == ("router", "neighbour_failed"), (change, found)


def test_an_arp_request_the_holder_s_arp_filter_refuses_names_the_setting_and_the_route_that_sends_the_asker_away():
    hosts = fleet("arp-filter-overlap")
    assert hosts["router"]["trace"]["finding"]["cause"] == "neighbour_failed"  # alone, the router sees no answer
    eth0 = interface(hosts, "server", "eth0")
    assert (eth0["arp"]["arp_filter"], eth0["routes_elsewhere"]) == (1, [{"dst": "198.18.20.0/25", "dev": "eth1"}])
    found, rows = report(hosts)
    assert (found["culprit"], found["cause"]) == ("server", "arp_filtered"), found
    assert found["words"] == (
        "server: router asks for 198.18.20.2 by ARP on eth1 and gets no answer (neighbour state FAILED): server has "
        "arp_filter = 1 on eth0, which answers only where the route back to the asker leaves by eth0, and its route "
        "to 198.18.20.1 leaves by eth1 (198.18.20.0/25 dev eth1); its kernel refused 3 ARP request(s) so in the "
        "window (TcpExtArpFilter)")
    # arp_filter was set on conf/all: the fix lowers it there too, and names the route as the better fix.
    assert found["fix"]["args"] == {"interfaces": ["eth0", "all"], "settings": {"arp_filter": 0},
                                    "persistent": "present"}
    assert "198.18.20.0/25 dev eth1 takes part of eth0's subnet" in found["fix"]["why"]
    assert not found["fix"]["remediable"]  # arp_filter is set on purpose where a host has several NICs on a subnet
    assert rows["server"]["evidence"]["counters"] == {"TcpExtArpFilter": 3}
    assert rows["router"]["cause"] is None and rows["router"]["explained_by"]["was"] == "neighbour_failed"


def test_the_router_s_kernel_giving_up_corroborates_the_server_s_arp_filter():
    found, rows = report(fleet("arp-filter-overlap", kernel=True))
    assert found["cause"] == "arp_filtered" and rows["server"]["kernel"] == "corroborates", rows["server"]


def test_arp_filter_decides_only_where_the_kernel_counted_a_refusal_and_names_no_route_it_did_not_read():
    for change in ("off", "no_refusal", "down"):
        hosts = fleet("arp-filter-overlap")
        eth0 = interface(hosts, "server", "eth0")
        if change == "off":
            eth0["arp"]["arp_filter"] = 0
        elif change == "no_refusal":  # arp_filter on, but it refused nothing in the window: something else did
            del hosts["server"]["trace"]["finding"]["counters"]["TcpExtArpFilter"]
        else:
            eth0["up"] = False
        found, _rows = report(hosts)
        assert (found["culprit"], found["cause"]) == ("router", "neighbour_failed"), (change, found)
    hosts = fleet("arp-filter-overlap")
    interface(hosts, "server", "eth0")["routes_elsewhere"] = []  # sent away by a policy rule, which is not read
    found, _rows = report(hosts)
    assert found["cause"] == "arp_filtered" and "its route back to 198.18.20.1 leaves by another interface (by a " \
        "policy rule or a table other than main: not read here)" in found["words"], found["words"]
    assert "the better fix is the route" not in found["fix"]["why"]
    hosts = fleet("arp-filter-overlap")
    interface(hosts, "server", "eth0")["arp"]["arp_ignore"] = 8  # the kernel asks arp_ignore first
    assert report(hosts)[0]["cause"] == "arp_ignored"


def test_a_gateway_nobody_holds_is_the_proxy_arp_of_the_host_at_the_other_end_of_the_link():
    hosts = fleet("proxy-arp-off")
    assert hosts["client"]["trace"]["finding"]["cause"] == "neighbour_failed"  # alone, the pod sees no answer
    veth = interface(hosts, "node", "eth0")
    assert (veth["addresses"], veth["on_link"], veth["arp"]["proxy_arp"], veth["forwarding"]) == (
        [], ["198.18.40.2/32"], 0, 1), veth  # as trace_results read it in the lab
    found, rows = report(hosts)
    assert (found["culprit"], found["cause"]) == ("node", "proxy_arp_off"), found
    assert found["words"] == (
        "node: client asks for 198.18.41.1 by ARP on eth0 and gets no answer (neighbour state FAILED): no host holds "
        "198.18.41.1, and node's eth0, the other end of that link (it routes 198.18.40.2/32 there and holds no "
        "address on it), answers for a gateway nobody holds only by proxy ARP, which is off there (proxy_arp = 0)")
    assert found["fix"]["args"] == {"interfaces": ["eth0"], "settings": {"proxy_arp": 1}, "persistent": "ignore"}
    assert found["fix"]["remediable"]
    assert rows["client"]["cause"] is None and rows["client"]["explained_by"]["was"] == "neighbour_failed"


def test_the_pod_s_kernel_giving_up_on_its_gateway_corroborates_the_node_s_proxy_arp():
    found, rows = report(fleet("proxy-arp-off", kernel=True))
    assert found["cause"] == "proxy_arp_off" and rows["node"]["kernel"] == "corroborates", rows["node"]
    assert "(the kernel agrees: NEIGH_FAILED" in found["words"], found["words"]


def test_a_proxy_that_answers_or_cannot_or_a_holder_of_the_gateway_leaves_the_asker_s_own_cause():
    for change in ("proxies", "does_not_forward", "down", "holder", "another_link", "two_facing"):
        hosts = fleet("proxy-arp-off")
        veth = interface(hosts, "node", "eth0")
        if change == "proxies":
            veth["arp"]["proxy_arp"] = 1
        elif change == "does_not_forward":  # proxy_arp alone answers nothing on an interface that does not forward
            veth["forwarding"] = 0
        elif change == "down":
            veth["up"] = False
        elif change == "holder":  # a host of the fleet holds the gateway: its ARP policy is ignores_arp's question
            veth["addresses"] = ["198.18.41.1/32"]
        elif change == "another_link":  # the node routes another pod there, not this one
            veth["on_link"] = ["198.18.40.3/32"]
        else:  # two hosts route the pod on link: which one is at the other end is not known
            hosts["other"] = copy.deepcopy(hosts["node"])
        found, _rows = report(hosts)
        assert (found["culprit"], found["cause"]) == ("client", "neighbour_failed"), (change, found)


def test_an_ndp_request_nobody_answers_is_the_ipv6_switch_of_the_one_host_on_the_link_that_has_it_off():
    hosts = fleet("ipv6-disabled")
    assert hosts["router"]["trace"]["finding"]["cause"] == "neighbour_failed"  # alone, the router sees no answer
    eth0 = interface(hosts, "server", "eth0")
    assert (eth0["addresses"], eth0["disable_ipv6"]) == (["198.18.20.2/24"], 1), eth0  # its IPv6 address is gone
    found, rows = report(hosts)
    assert (found["culprit"], found["cause"]) == ("server", "ipv6_disabled"), found
    assert found["words"] == (
        "server: router asks for 2001:db8:20::2 by NDP on eth1 and gets no answer (neighbour state FAILED): no host "
        "holds 2001:db8:20::2, and server's eth0, on that link (198.18.20.0/24), has IPv6 disabled (disable_ipv6 = 1): "
        "the kernel took its IPv6 addresses away and drops every IPv6 packet that comes in there, the neighbour "
        "solicitations too; server discarded 3 IPv6 packet(s) in the window (Ip6InDiscards)")
    assert found["fix"]["args"] == {"interfaces": ["eth0"], "settings": {"ipv6.disable_ipv6": 0},
                                    "persistent": "ignore"}
    assert not found["fix"]["remediable"]  # the addresses the kernel removed do not come back with the switch
    assert rows["server"]["evidence"]["counters"] == {"Ip6InDiscards": 3}
    assert rows["router"]["cause"] is None and rows["router"]["explained_by"]["was"] == "neighbour_failed"


def test_the_router_s_kernel_giving_up_on_the_neighbour_corroborates_the_server_s_ipv6_switch():
    found, rows = report(fleet("ipv6-disabled", kernel=True))
    assert found["cause"] == "ipv6_disabled" and rows["server"]["kernel"] == "corroborates", rows["server"]


def test_ipv6_on_or_down_or_off_elsewhere_or_a_holder_leaves_the_asker_s_own_cause():
    for change in ("enabled", "down", "holder", "another_link", "two_disabled", "not_read"):
        hosts = fleet("ipv6-disabled")
        eth0 = interface(hosts, "server", "eth0")
        if change == "enabled":
            eth0["disable_ipv6"] = 0
        elif change == "down":
            eth0["up"] = False
        elif change == "holder":  # a host of the fleet holds the address: IPv6 is on where it answers
            eth0["addresses"].append("2001:db8:20::2/64")
        elif change == "another_link":  # the server with IPv6 off is not on the link the router asks on
            eth0["addresses"] = ["198.18.21.2/24"]
        elif change == "two_disabled":  # two hosts on the link have it off: which should answer is not known
            hosts["other"] = copy.deepcopy(hosts["server"])
        else:  # a host recorded before the switch was read
            del eth0["disable_ipv6"]
        found, _rows = report(hosts)
        assert (found["culprit"], found["cause"]) == ("router", "neighbour_failed"), (change, found)


def test_a_vxlan_device_without_a_remote_for_the_next_hop_is_named_and_its_fix_points_at_the_holder_s_vtep():
    hosts = fleet("vxlan-missing-fdb")
    assert hosts["node1"]["trace"]["finding"]["fix"] is None  # alone, node1 cannot know node2's VTEP
    found, rows = report(hosts)
    assert (found["culprit"], found["cause"]) == ("node1", "vxlan_no_fdb"), found
    assert found["fix"]["args"]["argv"] == ["bridge", "fdb", "append", "00:00:5e:00:53:42", "dev", "vxlan0", "dst",
                                            "198.18.50.2"]
    assert rows["node1"]["evidence"]["holder"] == {"host": "node2", "dev": "vxlan0", "vtep": "198.18.50.2"}


def test_a_vxlan_device_with_a_remote_for_the_mac_or_a_default_one_is_not_the_cause():
    recorded = recorded_incident("vxlan-missing-fdb")
    port, result = recorded["port"], copy.deepcopy(recorded["result"])
    for remote in ({"lladdr": "00:00:5e:00:53:42", "dst": "198.18.50.2"},
                   {"lladdr": "00:00:00:00:00:00", "dst": "198.18.50.2"}):
        result["finding"]["evidence"]["vxlan"]["entries"] = [dict(remote, ifindex=4, vni=None, port=None, master=None)]
        found = finding.explain(result["packets"], (port, port), RecordedEvidence(result, kernel=False))
        assert found["cause"] is None and "the forwarding database of vxlan0 (it sends 00:00:5e:00:53:42 to " \
            "198.18.50.2)" in found["ruled_out"], found
    result["finding"]["evidence"]["vxlan"]["entries"] = []
    result["finding"]["evidence"]["link"]["vxlan"]["group"] = "198.18.50.2"  # a remote of its own takes everything
    found = finding.explain(result["packets"], (port, port), RecordedEvidence(result, kernel=False))
    assert found["cause"] is None, found


def test_a_vxlan_remote_where_the_holder_takes_no_vxlan_is_the_sender_s_cause_whatever_differs():
    hosts = fleet("vxlan-port-mismatch")
    assert hosts["node1"]["trace"]["finding"]["cause"] is None  # alone, node1 sent it where its entries say
    found, _rows = report(copy.deepcopy(hosts))
    assert (found["culprit"], found["cause"]) == ("node1", "vxlan_remote_mismatch"), found
    assert found["words"].endswith("(the port differs): the encapsulated frame reaches no VXLAN device there")
    assert found["fix"] is None  # a port is the device's, not an entry's
    theirs = interface(hosts, "node2", "vxlan0")["vxlan"]
    theirs.update(port=4789, local="198.18.50.9")  # node2 replaced: a new VTEP address, the entry left behind
    found, _rows = report(copy.deepcopy(hosts))
    assert "(the address differs)" in found["words"] and found["fix"]["args"]["argv"] == [
        "bridge", "fdb", "replace", "00:00:5e:00:53:42", "dev", "vxlan0", "dst", "198.18.50.9"]
    theirs.update(local="198.18.50.2", vni=43)
    assert "(the VNI differs)" in report(copy.deepcopy(hosts))[0]["words"]
    theirs.update(vni=42)  # where it sends is where node2 takes VXLAN: nothing to say below the routing table
    assert report(hosts)[0]["cause"] == "undecided"


def test_a_host_downstream_that_names_another_cause_only_for_the_conversation_the_culprit_sent_astray_is_explained():
    # The router of service-stale-conntrack as recorded, and, where the stale entry sent the packet, a host whose
    # routing has nothing for it (the culprit of dnat-no-route as recorded), on the same conversation.
    stale, lost = recorded_incident("service-stale-conntrack"), recorded_incident("dnat-no-route")
    router = finding.explain(stale["result"]["packets"], (25353, 25355), RecordedEvidence(stale["result"]), "sport")
    elsewhere = copy.deepcopy(lost["result"]["finding"])
    elsewhere["conversations"] = [{"sport": 25353, "role": "stopped", "cause": "no_route", "words": elsewhere["words"]}]
    hosts = {"router": {"trace": {"packets": stale["result"]["packets"], "finding": router}},
             "server1": {"trace": {"packets": lost["result"]["packets"], "finding": elsewhere}}}
    found, rows = report(hosts)
    assert (found["culprit"], found["cause"]) == ("router", "conntrack_stale_nat"), found
    assert rows["server1"]["cause"] is None and rows["server1"]["explained_by"]["was"] == "no_route"
    elsewhere["conversations"].append({"sport": 25354, "role": "stopped", "cause": "no_route", "words": "-"})
    assert report(hosts)[1]["server1"]["cause"] == "no_route"  # a conversation of its own: its cause stands


def test_a_service_spread_over_endpoints_says_which_the_probe_reached_and_which_it_does_not_speak_for():
    # The router of service-endpoint-gone as trace_results decided it in the lab: three attempts side by side,
    # DNAT'd nth to three endpoints (as the router's iptables-nft-save gives them), the third gone (neighbour FAILED).
    recorded = recorded_incident("service-endpoint-gone")
    packets, found = recorded["result"]["packets"], copy.deepcopy(recorded["result"]["finding"])
    assert found["service"]["reached"] == {"198.18.20.2:9090": [48080], "198.18.20.3:9090": [48081],
                                           "198.18.20.4:9090": [48082]} and found["service"]["not_reached"] == []
    attempts = [{"result": "connected", "source_port": 48080}, {"result": "connected", "source_port": 48081},
                {"result": "timeout", "source_port": 48082}]
    probe = {"attempts": attempts, "summary": probe_summary(attempts)}
    fleet = verdict.build_report({"router": {"trace": {"packets": packets, "finding": found}}}, {"port": 8080},
                                 probe)["verdict"]
    assert fleet["cause"] == "neighbour_failed" and fleet["words"].endswith(
        ". The service 198.18.10.1:8080 on router spreads over 3 endpoints; the probe reached 198.18.20.2:9090 (from "
        "port 48080), 198.18.20.3:9090 (from port 48081), 198.18.20.4:9090 (from port 48082). 1 of 3 endpoints fails: "
        "198.18.20.4:9090"), fleet["words"]
    assert fleet["failing_endpoints"] == [{"host": "router", "endpoint": "198.18.20.4:9090", "words": (
        "the next hop 198.18.20.4 on eth1 does not answer ARP/NDP (neighbour state FAILED)")}]
    # Had the spread sent no attempt to the gone endpoint, the probe would pass, and the verdict says it does not
    # speak for that one.
    del found["service"]["reached"]["198.18.20.4:9090"]
    found["service"]["not_reached"] = ["198.18.20.4:9090"]
    found["conversations"] = found["conversations"][:2]
    found.update(cause=None, words="passed")
    probe = {"attempts": attempts[:2], "summary": probe_summary(attempts[:2])}
    fleet = verdict.build_report({"router": {"trace": {"packets": packets, "finding": found}}}, {"port": 8080},
                                 probe)["verdict"]
    assert (fleet["cause"], verdict.label(fleet)) == (None, "passed")
    assert "; not reached, so not spoken for: 198.18.20.4:9090 (probe again with more attempts" in fleet["words"]
    assert fleet["failing_endpoints"] == []
    # With check_endpoints, the router connected to the one the probe missed (as it answered in the lab: the connect
    # ended in EHOSTUNREACH once the kernel gave up asking ARP for it).
    found["service"]["checked"] = {"198.18.20.4:9090": {
        "answer": "unreachable", "latency_ms": 3071.431,
        "next_hop": {"address": "198.18.20.4", "dev": "eth1", "neighbour": ["failed"]},
        "words": "fails (unreachable): the next hop 198.18.20.4 on eth1 does not answer ARP/NDP (neighbour state FAILED)"}}
    fleet = verdict.build_report({"router": {"trace": {"packets": packets, "finding": found}}}, {"port": 8080},
                                 probe)["verdict"]
    assert (fleet["cause"], fleet["culprit"], verdict.label(fleet)) == (
        None, None, "passed, but 1 endpoint of the service fails"), fleet
    assert fleet["words"].endswith("; router connected to the ones it missed: 198.18.20.4:9090 fails (unreachable): "
                                   "the next hop 198.18.20.4 on eth1 does not answer ARP/NDP (neighbour state FAILED). "
                                   "1 of 3 endpoints fails: 198.18.20.4:9090"), fleet["words"]
    assert [each["endpoint"] for each in fleet["failing_endpoints"]] == ["198.18.20.4:9090"]


def test_an_address_another_host_answers_for_is_the_holder_s_duplicate_address():
    # ipv6-duplicate-address as recorded: the client's entry for 2001:db8:10::20 learned lately (REACHABLE) with the
    # forgotten VM's MAC, and the server's own copy of the address failed DAD.
    hosts = fleet("ipv6-duplicate-address")
    client = hosts["client"]["trace"]["finding"]["evidence"]["next_hop"]
    assert client["neighbour"] == ["reachable"] and interface(hosts, "server", "eth0")["dad_failed"] == [
        "2001:db8:10::20/64"]
    found, rows = report(hosts)
    mac = interface(hosts, "server", "eth0")["mac"]
    assert (found["culprit"], found["cause"], found["fix"]) == ("server", "duplicate_address", None), found
    assert found["words"] == (
        "server: 2001:db8:10::20 is server's eth0 (MAC %s), but another host on the link answers ARP/NDP for it: "
        "client's neighbour entry for it on eth0 is REACHABLE with MAC %s, so the packets go there; server's own copy "
        "failed duplicate address detection (dadfailed): the other host had it first, and server does not use it. "
        "Find the host with MAC %s and take the address off it, then redo duplicate address detection on server "
        "(ip -6 address del 2001:db8:10::20/64 dev eth0, then add it again)" % (mac, client["lladdr"], client["lladdr"]))
    assert found["line"] == "client \u2192 server \u2717" and found["evidence"]["dad_failed"] == "2001:db8:10::20/64"
    assert {host: row["cause"] for host, row in rows.items()} == {"server": "duplicate_address", "client": None}


def test_a_lately_learned_entry_is_a_duplicate_even_without_dad_and_a_static_one_is_the_sender_s():
    hosts = fleet("ipv6-duplicate-address")
    del interface(hosts, "server", "eth0")["dad_failed"]  # IPv4 has no DAD: a REACHABLE entry alone says it
    found, _rows = report(hosts)
    assert (found["culprit"], found["cause"]) == ("server", "duplicate_address") and "dadfailed" not in found["words"]
    hosts["client"]["trace"]["finding"]["evidence"]["next_hop"]["neighbour"] = ["permanent"]
    found, _rows = report(hosts)
    assert (found["culprit"], found["cause"]) == ("client", "neighbour_wrong_lladdr"), found


def test_an_impostor_that_answers_the_probe_is_found_by_the_entry_the_answers_came_through():
    # duplicate-address-answered as the lab's engine decided it on each host: the client's entry for 198.18.30.20
    # holds the forgotten VM's MAC (REACHABLE), and the VM, holding the address too, resets each SYN. The client's
    # trace saw the resets come in, and its finding keeps the way its request left all the same (it was left out
    # where an answer came, and the fleet ended undecided). The server saw nothing.
    recorded = recorded_incident("duplicate-address-answered")
    hosts = {host: {"trace": {"packets": result["packets"], "finding": result["finding"]}}
             for host, result in (("server", recorded["result"]), ("client", recorded["sent_by"]))}
    client = hosts["client"]["trace"]["finding"]
    assert client["replies"] == 2 and client["evidence"]["next_hop"] == {
        "address": "198.18.30.20", "dev": "eth0", "lladdr": "00:00:5e:00:53:07", "neighbour": ["reachable"]}
    refused = {"summary": probe_summary([{"result": "refused"}] * 2)}
    built = verdict.build_report(hosts, {"port": 8080}, refused)
    found = built["verdict"]
    assert (found["culprit"], found["cause"]) == ("server", "duplicate_address"), found
    assert [row["detector"] for row in built["hosts"] if row["host"] == "server"] == ["wrong_lladdr"]
    assert "so the packets go there (the 2 answer(s) client's trace saw come from there, not from server). Find the " \
           "host with MAC 00:00:5e:00:53:07 and take the address off it" in found["words"], found["words"]
    assert "dadfailed" not in found["words"]  # IPv4: no duplicate address detection to redo
    # Read a while later, the entry is STALE (or DELAY, PROBE): the answers still say a host at that MAC holds the
    # address, where a MAC nobody has would answer nothing (a CI run read it so in ipv6-duplicate-address).
    client["evidence"]["next_hop"]["neighbour"] = ["stale"]
    found = verdict.build_report(hosts, {"port": 8080}, refused)["verdict"]
    assert (found["culprit"], found["cause"]) == ("server", "duplicate_address"), found
    assert "client's neighbour entry for it on eth0 is STALE with MAC 00:00:5e:00:53:07" in found["words"]
    client["replies"] = 0  # no answer came through it: an entry left behind, the sender's
    assert verdict.build_report(hosts, {"port": 8080}, TIMEOUTS)["verdict"]["cause"] == "neighbour_wrong_lladdr"
    client["replies"] = 2
    del client["evidence"]["next_hop"]  # as the finding was before: the fleet cannot tell
    assert verdict.build_report(hosts, {"port": 8080}, refused)["verdict"]["cause"] == "undecided"
