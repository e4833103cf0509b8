# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a host is at layer 2, for the fleet to set beside what another host sent it: each interface's MAC, the
addresses it holds (with their prefixes, which say which link an address is on) and its ARP policy as the kernel
applies it.

No host can tell alone why its next hop never got a frame, or never answered one: the sender knows the MAC its
neighbour entry holds and that nobody answers its ARP request; only the host that holds the address knows its MACs,
on which interface the address is, and whether its arp_ignore lets it answer there. The finding carries these facts
for every host, seen or not, and the fleet verdict joins them (diagnosis/next_hop.py).
"""

from ansible_collections.packetpath.linux.plugins.module_utils.sysctl import conf

# The ARP policy keys the fleet verdict reads (IPv4 only: NDP has no such policy).
ARP_KEYS = ("arp_ignore", "arp_filter", "arp_announce", "proxy_arp")
LOOPBACK = ("127.", "::1/")


def _held(prefixes):
    """The addresses that say something of the links: not the loopback's own (127.0.0.0/8, ::1) nor link-local IPv6
    (every interface has one)."""
    return [prefix for prefix in prefixes if not prefix.startswith(LOOPBACK) and not prefix.lower().startswith("fe80:")]


def _routes_elsewhere(router, name, held):
    """The routes into the IPv4 subnets of interface `name` that leave by another interface, most specific first."""
    found = []
    for prefix in held:
        if ":" in prefix or prefix.endswith("/32"):
            continue  # IPv6 has no ARP; a /32 has no link subnet
        for route in router.routes_into(prefix, name):
            if route not in found:
                found.append(route)
    return found


def facts(router, read_sysctl):
    """{interfaces: [{dev, mac, up, addresses, arp, forwarding, disable_ipv6, on_link, routes_elsewhere, vxlan,
    dad_failed}], arp_all}: the interfaces that hold an address (the loopback too, where it holds a service address),
    and those that hold none but carry routes with no gateway (a Calico pod's veth on its node), sorted by name.
    - `arp`: the effective value of each ARP_KEYS key (max or OR of conf/all and conf/IFACE, as the kernel combines
      them), None where unreadable; `arp_all` conf/all's own (a fix must lower it too).
    - `forwarding`: the interface's IPv4 forwarding; `disable_ipv6` its IPv6 switch (1: the kernel took its IPv6
      addresses away and drops every IPv6 packet there).
    - `on_link`: the address-less interface's routes (the hosts it reaches there).
    - `routes_elsewhere`: where arp_filter is on, the routes into the interface's subnets that leave by another
      interface.
    - `vxlan`: a VXLAN device's vni, local (its VTEP) and port."""
    interfaces = []
    prefixes, dad_failed, on_link = router.prefixes(), set(router.dad_failed()), router.on_link("ipv4")
    for name, link in sorted(router.links().items()):
        held = _held(prefixes.get(name, []))
        if not held and not on_link.get(name):
            continue
        arp = {key: conf.effective(key, read_sysctl("ipv4", "all", key), read_sysctl("ipv4", name, key))
               for key in ARP_KEYS}
        up = bool(link.get("admin_up") and link.get("carrier"))
        interface = {"dev": name, "mac": link.get("mac"), "up": up, "addresses": held, "arp": arp,
                     "forwarding": read_sysctl("ipv4", name, "forwarding"),
                     "disable_ipv6": read_sysctl("ipv6", name, "disable_ipv6")}
        if not held:  # who answers ARP on this link for addresses nobody holds is this host's proxy_arp
            interface["on_link"] = on_link[name]
        if arp["arp_filter"] == 1:  # it answers ARP here only for askers its routes send back by this interface
            interface["routes_elsewhere"] = _routes_elsewhere(router, name, held)
        contested = [prefix for prefix in held if prefix in dad_failed]
        if contested:  # held but not used: another host on the link had the address first
            interface["dad_failed"] = contested
        if link.get("vxlan"):  # its VTEP: the remote another host's forwarding entry must point at
            interface["vxlan"] = {key: link["vxlan"].get(key) for key in ("vni", "local", "port")}
        interfaces.append(interface)
    return {"interfaces": interfaces, "arp_all": {key: read_sysctl("ipv4", "all", key) for key in ARP_KEYS}}
