"""The kernel's drop reasons: their names come from the tracepoint's own format, and the program selects the flow."""

import pytest

from ansible_collections.packetpath.linux.plugins.module_utils.capture import drop_reasons
from ansible_collections.packetpath.linux.plugins.module_utils.flow import Flow


def test_the_reason_names_are_the_kernel_s_own(fixture_text):
    names = drop_reasons.reason_names(fixture_text("drop_reasons/kfree_skb-format-6.18.txt"))
    assert (names[2], names[3], names[12], names[16], names[73]) == (
        "NOT_SPECIFIED", "NO_SOCKET", "NETFILTER_DROP", "IP_RPFILTER", "TC_INGRESS")
    assert len(names) == 129 and "MAX" in names.values()


def test_the_program_keeps_the_namespace_the_protocol_and_the_ports_either_way():
    text = drop_reasons.program(Flow.from_params({"proto": "tcp", "port": "48080", "family": "both"}), 4026532174, 58)
    assert "if ($ns == 4026532174 && @budget > 0)" in text and "interval:s:58 { exit(); }" in text
    assert "if (($proto == 6) && ((($sport >= 48080 && $sport <= 48080) || ($dport >= 48080 && $dport <= 48080))))" \
        in text
    assert "@budget = 50" in text


# drop_reasons.member_offsets() of Linux 6.18 on the lab machine (x86-64), where drops-6.18.txt was printed.
OFFSETS_6_18 = {"dev": (16, 8), "sk": (24, 8), "head": (192, 8), "network_header": (180, 2), "dev_net": (264, 8),
                "ifindex": (224, 4), "sk_net": (48, 8), "net_inum": (176, 4)}


@pytest.mark.parametrize("offsets, expected", [
    (OFFSETS_6_18, ["$dev = *(uint64 *)($skb + 16);",
                    "$ns = *(uint32 *)(*(uint64 *)($dev + 264) + 176);",
                    "$ns = *(uint32 *)(*(uint64 *)($sk + 48) + 176);",
                    "$nh = *(uint64 *)($skb + 192) + *(uint16 *)($skb + 180);",
                    "$ifindex = *(uint32 *)($dev + 224);"]),
    (None, ["$dev = ((struct sk_buff *)$skb)->dev;",
            "$ns = ((struct net *)((struct net_device *)$dev)->nd_net.net)->ns.inum;",
            "$ns = ((struct net *)((struct sock *)$sk)->__sk_common.skc_net.net)->ns.inum;",
            "$nh = ((struct sk_buff *)$skb)->head + ((struct sk_buff *)$skb)->network_header;",
            "$ifindex = ((struct net_device *)$dev)->ifindex;"]),
])
def test_the_program_reads_the_kernel_s_members_by_offset_where_known_else_by_name(offsets, expected):
    text = drop_reasons.program(Flow.from_params({"proto": "udp", "port": "9"}), 4026532174, 10, offsets=offsets)
    assert [statement for statement in expected if statement not in text] == []
    assert ("struct " in text) is (offsets is None)


def test_a_printed_drop_is_read_with_its_addresses_either_family(fixture_text):
    lines = fixture_text("drop_reasons/drops-6.18.txt").splitlines()
    drops = [drop_reasons.parse_line(line, {12: "NETFILTER_DROP"}, {1: "lo"}, 1000.0, "little") for line in lines]
    assert drops[:2] == [None, None] and drops[4:] == [None] * (len(drops) - 4)  # bpftrace's own lines
    assert drops[2] == {"reason": "NETFILTER_DROP", "reason_code": 12, "location": "nft_do_chain", "dev": "lo",
                        "family": "ipv4", "proto": "udp", "src": "127.0.0.1", "dst": "127.0.0.1", "sport": 42026,
                        "dport": 9, "ttl": 64, "time": round(52171047147559 / 1e9 + 1000.0, 6)}
    assert (drops[3]["family"], drops[3]["src"], drops[3]["dst"], drops[3]["sport"]) == ("ipv6", "::1", "::1", 47486)
    # Read in the other byte order, the same words are other addresses: the order is the machine's, not assumed.
    assert drop_reasons.parse_line(lines[2], {}, {}, 0, "big")["src"] == "1.0.0.127"
