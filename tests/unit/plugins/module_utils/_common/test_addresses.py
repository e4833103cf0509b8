"""An address's family, decided in one place (issue #40: it was `":" in address` in 14 places)."""

from ansible_collections.packetpath.linux.plugins.module_utils._common.addresses import (
    IPV4, IPV6, NFT_PAYLOAD, family_of, host_prefix_length)


def test_the_family_of_an_address_a_prefix_and_a_mapped_address():
    assert [family_of(text) for text in ("198.18.0.1", "198.18.0.0/15", "2001:db8::1", "2001:db8::/32",
                                         "::ffff:198.18.0.1", "fe80::1%eth0")] == [IPV4, IPV4, IPV6, IPV6, IPV6, IPV6]
    assert (host_prefix_length("192.0.2.1"), host_prefix_length("2001:db8::1")) == (32, 128)
    assert (NFT_PAYLOAD[family_of("192.0.2.1")], NFT_PAYLOAD[family_of("2001:db8::1")]) == ("ip", "ip6")
