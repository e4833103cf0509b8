# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An address's family, decided in one place: only IPv6 writes a colon (an address, a prefix, a range)."""

IPV4, IPV6 = "ipv4", "ipv6"
# nftables' payload protocol of each family (`ip saddr`, `ip6 daddr`).
NFT_PAYLOAD = {IPV4: "ip", IPV6: "ip6"}


def family_of(address):
    """"ipv6" or "ipv4" for an address or prefix written as text. It says which family the text is of, not that it
    is a valid address: the callers have checked that, or do not need it."""
    return IPV6 if ":" in address else IPV4


def host_prefix_length(address):
    """The prefix length of one address of the family: 128 or 32."""
    return 128 if family_of(address) == IPV6 else 32
