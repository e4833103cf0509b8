# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Below the routing table, across two hosts: the host that sent the packet to its next hop, and the host in the
fleet that holds the next hop's address. Neither can tell alone.

- The sender's neighbour entry holds a MAC that none of the holder's interfaces has (a node replaced, or its NIC,
  while a static entry still holds the old MAC): the sender sees its packet leave, the holder's hooks see nothing
  (its kernel drops the frame as not its own, OTHERHOST). The sender's entry is the culprit.
- The sender's VXLAN device has no remote for the next hop (vxlan_no_fdb, decided by the sender alone): the holder's
  VTEP address is the remote its fix appends. Where it has one, it must be the holder's VTEP (address, UDP port,
  VNI): vxlan_remote_mismatch where it is not.
- The sender's entry was learned lately (REACHABLE) with a MAC none of the holder's interfaces has, or answers to
  the request came through it, or the holder's copy of the address failed duplicate address detection: another
  host on the link answers for the address (a forgotten VM, a cloned one), and where it holds the address too, it
  answers the packets as well (a reset the holder never sent). The holder's address is what to free
  (duplicate_address).
- The sender asks for the next hop by ARP and nobody answers (neighbour FAILED), and the holder has the address on
  another interface than the one asked (the loopback of an LVS-DR or anycast service) while its arp_ignore answers
  only for addresses on the interface asked (or never, 8). The holder's ARP policy is the culprit; the sender's
  "does not answer ARP" is what it looked like from there.
- The sender asks for a gateway that no host holds (a Calico pod's 169.254.1.1), and the host at the other end of
  its link, which routes the sender's address there by an interface holding no address, forwards with proxy_arp
  off on it: nobody answers. That host's proxy_arp is the culprit (proxy_arp_off).
- The sender asks for the next hop by ARP and nobody answers, and the holder has arp_filter on the interface asked
  while a route into that link's subnet by another interface (a second NIC on an overlapping subnet) takes the
  sender's address elsewhere: arp_filter answers only where the route back leaves by the interface asked, and the
  holder's kernel counts each refusal (TcpExtArpFilter). The holder's arp_filter, or that route, is the culprit
  (arp_filtered).
- The sender asks for the next hop by NDP and nobody answers, nobody holds the address, and the one host on the link
  has IPv6 disabled there (ipv6_disabled).

Each join reads the rows' `link_layer` (evidence/link_layer.py) and the sender's `next_hop` evidence; where the holder
is not in the fleet (or did not report) nothing is joined, and the sender's own finding stands.
"""

import ipaddress

from ansible_collections.packetpath.linux.plugins.module_utils._common.addresses import IPV6, family_of
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import causes, finding

# arp_ignore values that answer only for an address on the interface the request came in by (2: and from a sender
# in that address's subnet); 8 answers nothing (ip-sysctl.rst).
ARP_IGNORE_WORDS = {1: "answers only for addresses configured on the interface asked",
                    2: "answers only for addresses configured on the interface asked, to senders in their subnet",
                    8: "answers no ARP request at all"}


def _interface(prefix):
    try:
        return ipaddress.ip_interface(prefix)
    except ValueError:
        return None


def _interfaces(row):
    """The link-layer facts of a row's interfaces ([] where the host reported none)."""
    return (row.get("link_layer") or {}).get("interfaces") or []


def _interface_on(row, dev):
    """The row's facts of its interface `dev`, or None."""
    return next((interface for interface in _interfaces(row) if interface["dev"] == dev), None)


def _asked_by(asker, dev, neighbour):
    """The asker's side of an ARP join's proof: who asked, on which device, what its entry says, its kernel's word."""
    return {"host": asker["host"], "dev": dev, "neighbour": neighbour, "drop_reasons": asker.get("drop_reasons")}


def holder(address, rows):
    """(row, interface facts) of the host in the fleet that holds `address`, or None."""
    try:
        wanted = ipaddress.ip_address(address)
    except ValueError:
        return None
    for row in rows:
        for interface in _interfaces(row):
            if any(getattr(_interface(prefix), "ip", None) == wanted for prefix in interface["addresses"]):
                return row, interface
    return None


def _mac_holder(mac, rows):
    """'client's eth0' for the host and interface in the fleet whose MAC this is, or None."""
    for row in rows:
        for interface in _interfaces(row):
            if (interface.get("mac") or "").lower() == mac.lower():
                return "%s's %s" % (row["host"], interface["dev"])
    return None


def _shared(mine, theirs):
    """The subnets two interfaces share (an address of one in the other's subnet), the narrower of each pair, sorted:
    what says they are on one link."""
    shared = set()
    for own in filter(None, map(_interface, mine["addresses"])):
        for other in filter(None, map(_interface, theirs["addresses"])):
            if own.version == other.version and (own.ip in other.network or other.ip in own.network):
                shared.add(str(max(own.network, other.network, key=lambda network: network.prefixlen)))
    return sorted(shared)


def _facing(sender, dev, owner):
    """The holder's interface on the sender's link: the one whose subnet holds an address of the sender's `dev`."""
    mine = _interface_on(sender, dev)
    if mine is None:
        return None
    return next((interface for interface in _interfaces(owner) if _shared(mine, interface)), None)


def _kernel_word_from(other, row):
    """The kernel's reasons of the other host of the join, set beside the cause on the row it blames (`kernel_drops`,
    each drop with its host), where bpftrace read them there."""
    drops = [dict(drop, host=other["host"]) for drop in other.get("drop_reasons") or []]
    if drops:
        row["kernel_drops"] = drops
        row["kernel"] = causes.CATALOGUE[row["cause"]].kernel_stance(drops, row["direction"])


def supersede(row, by, why):
    """A host's own cause that the join explains better: the row keeps it under `explained_by` and names no cause
    (one host is blamed, the one whose entry or setting is to fix)."""
    if not row.get("cause"):
        return
    row["explained_by"] = {"host": by["host"], "cause": by["cause"], "was": row["cause"], "words": row["words"]}
    row.update(cause=None, layer=None, direction=None, fix=None, remediable=False, kernel=None, detector=None,
               words="%s (here: %s)" % (why, row["words"]))


def wrong_lladdr(way, rows):
    """The last host on the way sent the packet to a next hop whose entry holds a MAC the holder of that address does
    not have. Its row, naming neighbour_wrong_lladdr, or None."""
    sender = way[-1] if way else None
    if sender is None or sender["role"] not in ("sent", "forwarded"):
        return None
    next_hop = sender["evidence"].get("next_hop") or {}
    lladdr, states = next_hop.get("lladdr"), next_hop.get("neighbour") or []
    if not lladdr or not set(states) & set(finding.SENT_WITHOUT_ASKING):
        return None
    found = holder(next_hop["address"], [row for row in rows if row is not sender])
    if found is None:
        return None
    owner, interface = found
    macs = [(each.get("mac") or "").lower() for each in owner["link_layer"]["interfaces"]]
    if lladdr.lower() in macs:
        return None
    elsewhere = _mac_holder(lladdr, [row for row in rows if row is not owner])
    proof = dict(sender["evidence"], holder={"host": owner["host"], "dev": interface["dev"], "mac": interface["mac"],
                                             "macs": {each["dev"]: each["mac"] for each in
                                                      owner["link_layer"]["interfaces"]}})
    if elsewhere:
        proof["lladdr_is"] = elsewhere
    state = ",".join(name.upper() for name in states)
    contested = _dad_failed(next_hop["address"], interface)
    if contested or "reachable" in states or sender.get("replies"):
        # Not an entry left behind: somebody answered for the address lately (ARP/NDP, or the request itself: a
        # MAC nobody has answers nothing, whatever state the entry is in by the time it is read), or was there
        # first (DAD).
        return _duplicate(sender, owner, interface, proof, contested, next_hop, state, lladdr, elsewhere)
    decided = causes.finding("neighbour_wrong_lladdr", "request", proof, address=next_hop["address"],
                             dev=next_hop["dev"], state=state, lladdr=lladdr, owner=owner["host"],
                             owner_dev=interface["dev"], mac=interface["mac"],
                             elsewhere="; %s is %s" % (lladdr, elsewhere) if elsewhere else "",
                             permanent="permanent" in states)
    causes.decide(sender, decided, "wrong_lladdr")
    _kernel_word_from(owner, sender)  # the holder's kernel dropping the frame as not its own says the same
    supersede(owner, sender, "no hook here saw the packet: %s's neighbour entry for %s sends it to %s, not to this "
                             "host's MAC" % (sender["host"], next_hop["address"], lladdr))
    return sender


def _dad_failed(address, interface):
    """The holder's prefix of `address` where it failed duplicate address detection, else None."""
    wanted = ipaddress.ip_address(address)
    return next((prefix for prefix in interface.get("dad_failed") or []
                 if getattr(_interface(prefix), "ip", None) == wanted), None)


def _duplicate(sender, owner, interface, proof, contested, next_hop, state, lladdr, elsewhere):
    """Another host answers for the holder's address: the holder's row names duplicate_address (the address to
    free), the sender's entry is only what it learned."""
    if contested:
        proof["dad_failed"] = contested
    decided = causes.finding(
        "duplicate_address", "request", proof, address=next_hop["address"], owner=owner["host"],
        owner_dev=interface["dev"], mac=interface["mac"], sender=sender["host"], dev=next_hop["dev"], state=state,
        lladdr=lladdr, elsewhere=" (%s)" % elsewhere if elsewhere else "",
        dad="; %s's own copy failed duplicate address detection (dadfailed): the other host had it first, and %s "
            "does not use it" % (owner["host"], owner["host"]) if contested else "",
        redo=", then redo duplicate address detection on %s (ip -6 address del %s dev %s, then add it again)" % (
            owner["host"], contested, interface["dev"]) if contested else "",
        # The answers the sender's trace saw come from that host: the reset the probe got is not the holder's.
        answered=" (the %d answer(s) %s's trace saw come from there, not from %s)" % (
            sender["replies"], sender["host"], owner["host"]) if sender.get("replies") else "")
    causes.decide(owner, decided, "wrong_lladdr")
    return owner


def _vxlan_words(address, port, vni):
    return "%s UDP port %s VNI %s" % (address, port, vni)


def vxlan_mismatch(way, rows):
    """The last host on the way sent the frame by VXLAN to a remote (address, port, VNI) where the holder of its
    next hop's address takes no VXLAN: another VTEP address (an entry left from a replaced node), another port
    (4789 against flannel's 8472) or another VNI. Its row, naming vxlan_remote_mismatch, or None."""
    sender = way[-1] if way else None
    if sender is None or sender["role"] not in ("sent", "forwarded"):
        return None
    vxlan, next_hop = sender["evidence"].get("vxlan") or {}, sender["evidence"].get("next_hop") or {}
    remote = vxlan.get("remote")
    found = holder(next_hop.get("address"), [row for row in rows if row is not sender]) if remote else None
    theirs = (found[1].get("vxlan") or {}) if found else {}
    if not theirs.get("local"):
        return None
    owner, interface = found
    differs = [what for what, mine, their in (("address", remote["dst"], theirs["local"]),
                                              ("port", remote["port"], theirs.get("port")),
                                              ("VNI", remote["vni"], theirs.get("vni"))) if str(mine) != str(their)]
    if not differs:
        return None
    proof = dict(sender["evidence"], holder={"host": owner["host"], "dev": interface["dev"], "vxlan": theirs})
    decided = causes.finding("vxlan_remote_mismatch", "request", proof, dev=next_hop["dev"],
                             address=next_hop["address"], mac=vxlan["mac"], owner=owner["host"],
                             owner_dev=interface["dev"], vtep=theirs["local"],
                             sent=_vxlan_words(remote["dst"], remote["port"], remote["vni"]),
                             expected=_vxlan_words(theirs["local"], theirs.get("port"), theirs.get("vni")),
                             differs="the %s differs" % " and the ".join(differs) if len(differs) < 3 else
                             "the address, the port and the VNI differ")
    causes.decide(sender, decided, "vxlan_mismatch")
    supersede(owner, sender, "no hook here saw the packet: %s's VXLAN remote for it is not this host's VTEP" % (
        sender["host"]))
    return sender


def _held_on_the_link(asker, rows):
    """(neighbour, holder's row, the interface that holds the address, the holder's interface on the asker's link)
    where the asker's unanswered next hop is asked for by ARP (IPv4: NDP has neither arp_ignore nor arp_filter) and
    a host of the fleet holds it, its interface on the asker's link up; else None."""
    neighbour = asker["evidence"].get("neighbour") or {}
    address, dev = neighbour.get("address"), neighbour.get("dev")
    if not address or family_of(address) == IPV6:
        return None
    found = holder(address, [row for row in rows if row is not asker])
    if found is None:
        return None
    owner, held_on = found
    facing = _facing(asker, dev, owner)
    if facing is None or not facing["up"]:
        return None
    return neighbour, owner, held_on, facing


def _state(neighbour):
    """'FAILED' for the neighbour entry's states, as the words give them."""
    return neighbour.get("state") and ",".join(state.upper() for state in neighbour["state"])


def ignores_arp(asker, rows):
    """The asker's next hop did not answer ARP, and its holder in the fleet ignores the request by its ARP policy.
    The holder's row, naming arp_ignored (the asker's own finding superseded), or None."""
    held = _held_on_the_link(asker, rows)
    if held is None:
        return None
    neighbour, owner, held_on, facing = held
    address, dev = neighbour["address"], neighbour["dev"]
    ignore = facing["arp"].get("arp_ignore") or 0
    if ignore == 8:
        why = "%s's arp_ignore = 8 on %s %s" % (owner["host"], facing["dev"], ARP_IGNORE_WORDS[8])
    elif ignore in (1, 2) and held_on["dev"] != facing["dev"]:
        why = "%s holds %s on %s, not on %s where the request comes in, and arp_ignore = %d there %s" % (
            owner["host"], address, held_on["dev"], facing["dev"], ignore, ARP_IGNORE_WORDS[ignore])
    else:
        return None
    proof = {"asked_by": _asked_by(asker, dev, neighbour), "held_on": held_on, "facing": facing,
             "arp_all": (owner["link_layer"].get("arp_all") or {})}
    decided = causes.finding("arp_ignored", asker["direction"] or "request", proof, address=address,
                             link_dev=facing["dev"], why=why, asker=asker["host"], dev=dev, owner=owner["host"],
                             state=_state(neighbour), all_ignores=bool((owner["link_layer"].get("arp_all") or {}).get("arp_ignore")))
    causes.decide(owner, decided, "ignores_arp")
    _kernel_word_from(asker, owner)  # the asker's kernel giving up on the neighbour says the same
    supersede(asker, owner, "its next hop %s does not answer ARP because %s ignores the request" % (
        address, owner["host"]))
    return owner


def filters_arp(asker, rows):
    """The asker's next hop did not answer ARP, its holder in the fleet has arp_filter on the interface asked, and its
    kernel counted ARP requests refused by it in the window (TcpExtArpFilter): arp_filter answers only where the
    holder's route back to the asker leaves by the interface the request came in by, and a route into that link's
    subnet by another interface (an overlapping subnet on a second NIC) takes the asker's address elsewhere. The
    holder's row, naming arp_filtered (the asker's own finding superseded), or None."""
    held = _held_on_the_link(asker, rows)
    if held is None:
        return None
    neighbour, owner, held_on, facing = held
    address, dev = neighbour["address"], neighbour["dev"]
    refused = (owner.get("counters") or {}).get("TcpExtArpFilter")
    if facing["arp"].get("arp_filter") != 1 or not refused:
        return None  # the kernel refused nothing by arp_filter in the window: it did not decide
    # The address the request came from: the asker's own on the link (arp_announce may pick another; the route
    # back to one on the link is the one the subnets say).
    mine = _interface_on(asker, dev)
    shared = [ipaddress.ip_network(network) for network in _shared(mine, facing)]
    asked_from = next((own.ip for own in filter(None, map(_interface, mine["addresses"]))
                       if any(own.ip in network for network in shared)), None)
    route = next((route for route in facing.get("routes_elsewhere") or []
                  if asked_from is not None and asked_from in ipaddress.ip_network(route["dst"])), None)
    if route:
        back = "its route to %s leaves by %s (%s%s dev %s)" % (
            asked_from, route["dev"], route["dst"], " via %s" % route["gateway"] if route.get("gateway") else "",
            route["dev"])
    else:
        back = "its route back to %s leaves by another interface (by a policy rule or a table other than main: not " \
               "read here)" % (asked_from or asker["host"])
    proof = {"asked_by": _asked_by(asker, dev, neighbour), "held_on": held_on, "facing": facing, "route_back": route,
             "arp_all": (owner["link_layer"].get("arp_all") or {})}
    decided = causes.finding(
        "arp_filtered", asker["direction"] or "request", proof, delta=owner.get("counters") or {}, address=address,
        link_dev=facing["dev"], asker=asker["host"], dev=dev, owner=owner["host"], back=back, refused=refused,
        state=_state(neighbour),
        route=route and "%s dev %s" % (route["dst"], route["dev"]),
        all_filters=bool((owner["link_layer"].get("arp_all") or {}).get("arp_filter")))
    causes.decide(owner, decided, "filters_arp")
    _kernel_word_from(asker, owner)  # the asker's kernel giving up on the neighbour says the same
    supersede(asker, owner, "its next hop %s does not answer ARP because %s's arp_filter refuses the request" % (
        address, owner["host"]))
    return owner


def unproxied(asker, rows):
    """The asker's next hop did not answer ARP, no host of the fleet holds its address, and the one host of the fleet
    at the other end of the asker's link (it routes an address of the asker's there, by an interface holding no
    address: a Calico node's veth to its pod, whose gateway exists only as the node's proxy ARP answer) forwards with
    proxy_arp off there. That host's row, naming proxy_arp_off (the asker's finding superseded), or None."""
    neighbour = asker["evidence"].get("neighbour") or {}
    address, dev = neighbour.get("address"), neighbour.get("dev")
    others = [row for row in rows if row is not asker]
    if not address or family_of(address) == IPV6 or holder(address, others) is not None:
        return None  # NDP has no proxy_arp; a holder in the fleet is ignores_arp's
    mine = _interface_on(asker, dev)
    own = [found.ip for found in map(_interface, (mine or {}).get("addresses") or []) if found is not None]
    facing = []
    for row in others:
        for interface in _interfaces(row):
            routed = [prefix for prefix in interface.get("on_link") or []
                      if any(ip in ipaddress.ip_network(prefix) for ip in own)]
            if routed:
                facing.append((row, interface, routed))
    if len(facing) != 1:
        return None  # no host of the fleet on the link, or several: who should answer is not known
    owner, interface, routed = facing[0]
    if not interface["up"] or interface.get("forwarding") != 1 or interface["arp"].get("proxy_arp") != 0:
        return None
    proof = {"asked_by": _asked_by(asker, dev, neighbour), "facing": interface}
    decided = causes.finding("proxy_arp_off", asker["direction"] or "request", proof, address=address,
                             link_dev=interface["dev"], asker=asker["host"], dev=dev, owner=owner["host"],
                             routed=", ".join(routed), state=_state(neighbour))
    causes.decide(owner, decided, "unproxied")
    _kernel_word_from(asker, owner)  # the asker's kernel giving up on the neighbour says the same
    supersede(asker, owner, "its next hop %s does not answer ARP because nobody holds it and %s does not answer for "
                            "it by proxy" % (address, owner["host"]))
    return owner


def ipv6_off(asker, rows):
    """The asker's next hop did not answer NDP, no host of the fleet holds its address, and the one host of the fleet
    on the asker's link with IPv6 disabled there (its interface shares an IPv4 subnet with the asker's: a dual-stack
    link) is the one that cannot answer: disable_ipv6 took its IPv6 addresses away and drops every IPv6 packet that
    comes in by that interface, the neighbour solicitations too. That host's row, naming ipv6_disabled (the asker's
    finding superseded), or None."""
    neighbour = asker["evidence"].get("neighbour") or {}
    address, dev = neighbour.get("address"), neighbour.get("dev")
    others = [row for row in rows if row is not asker]
    if not address or family_of(address) != IPV6 or holder(address, others) is not None:
        return None  # ARP is the other joins'; a holder in the fleet answers or not by its own settings
    disabled = [(row, facing) for row, facing in ((row, _facing(asker, dev, row)) for row in others)
                if facing is not None and facing["up"] and facing.get("disable_ipv6") == 1]
    if len(disabled) != 1:
        return None  # nobody on the link has IPv6 off, or several: which one should answer is not known
    owner, facing = disabled[0]
    shared = ", ".join(_shared(_interface_on(asker, dev), facing))
    discards = (owner.get("counters") or {}).get("Ip6InDiscards")
    proof = {"asked_by": _asked_by(asker, dev, neighbour), "facing": facing, "shared": shared}
    decided = causes.finding(
        "ipv6_disabled", asker["direction"] or "request", proof, delta=owner.get("counters") or {}, address=address,
        link_dev=facing["dev"], asker=asker["host"], dev=dev, owner=owner["host"], shared=shared,
        state=_state(neighbour),
        discarded="; %s discarded %d IPv6 packet(s) in the window (Ip6InDiscards)" % (owner["host"], discards)
        if discards else "")
    causes.decide(owner, decided, "ipv6_off")
    _kernel_word_from(asker, owner)  # the asker's kernel giving up on the neighbour says the same
    supersede(asker, owner, "its next hop %s does not answer NDP because %s has IPv6 disabled on the link" % (
        address, owner["host"]))
    return owner


def vxlan_remote(sender, rows):
    """The sender's VXLAN device had no remote for its next hop: where the holder of the next hop's address is in the
    run, its VTEP (its VXLAN device's local address) is the remote to add, and the fix says so."""
    next_hop = sender["evidence"].get("next_hop") or {}
    found = holder(next_hop.get("address"), [row for row in rows if row is not sender])
    vtep = (found[1].get("vxlan") or {}).get("local") if found else None
    if not vtep:
        return
    owner = found[0]
    mac = sender["evidence"]["vxlan"]["mac"]
    entry_mac = mac if mac != finding.BROADCAST else finding.DEFAULT_REMOTE
    sender["evidence"]["holder"] = {"host": owner["host"], "dev": found[1]["dev"], "vtep": vtep}
    sender["fix"] = causes.fix("vxlan_no_fdb", dev=next_hop["dev"], entry_mac=entry_mac, owner=owner["host"],
                               remote=vtep)
