"""The kernel's drop reasons: their names come from the tracepoint's own format, and the program selects the flow."""

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
