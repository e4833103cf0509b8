"""What the nftables backend writes for a flow's addresses: a host without its prefix length, a network with it."""

import pytest

from ansible_collections.packetpath.linux.plugins.module_utils.flow import Flow
from ansible_collections.packetpath.linux.plugins.module_utils.trace.backends import NftablesBackend


@pytest.mark.parametrize("src, written", [
    ("2001:db8::/32", "ip6 saddr 2001:db8::/32"),  # an IPv6 /32 is a network, not one host
    ("2001:db8::1/128", "ip6 saddr 2001:db8::1"),
    ("2001:db8::1", "ip6 saddr 2001:db8::1"),
    ("198.51.100.13/32", "ip saddr 198.51.100.13"),
    ("198.51.100.0/24", "ip saddr 198.51.100.0/24"),
    ("0.0.0.0/0", "ip saddr 0.0.0.0/0"),
])
def test_addresses_keep_their_prefix_unless_they_are_one_host(src, written):
    flow = Flow.from_params({"proto": "tcp", "src": src, "dport": "8081"})
    assert written in " ".join(NftablesBackend(None).match(flow, "prerouting")[0])
