# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What listens in this network namespace, from the kernel's own socket tables (/proc/net/tcp, udp and their v6
twins, per network namespace), and whether anything takes a given address and port."""

import ipaddress
import struct

TABLES = {("tcp", "ipv4"): "/proc/net/tcp", ("tcp", "ipv6"): "/proc/net/tcp6",
          ("udp", "ipv4"): "/proc/net/udp", ("udp", "ipv6"): "/proc/net/udp6"}
# The `st` column: TCP_LISTEN for tcp; an unconnected udp socket stays TCP_CLOSE (7) and receives.
LISTENING = {"tcp": "0A", "udp": "07"}
TIME_WAIT = "06"


def _address(hexadecimal):
    """The kernel prints the address as 32-bit words in hex, each the host's integer of 4 bytes in network order:
    read back in the host's own byte order ("="), right on little-endian (x86, arm64) and big-endian (s390x) alike."""
    raw = bytes.fromhex(hexadecimal)
    words = struct.unpack("=%dI" % (len(raw) // 4), raw)
    return str(ipaddress.ip_address(struct.pack(">%dI" % len(words), *words)))


def parse(text, proto):
    """[{proto, address, port, queued[, drops]}] of the listening sockets in one table's text. `queued` is the
    rx_queue column: for a TCP listener the connections in its accept queue, not yet accepted (the kernel prints
    sk_ack_backlog there); for UDP the bytes waiting to be read, and `drops` the datagrams it dropped."""
    found = []
    for line in text.splitlines()[1:]:
        words = line.split()
        if len(words) < 5 or words[3] != LISTENING[proto]:
            continue
        address, _colon, port = words[1].partition(":")
        socket = {"proto": proto, "address": _address(address), "port": int(port, 16),
                  "queued": int(words[4].partition(":")[2] or "0", 16)}
        if proto == "udp" and len(words) > 12:
            socket["drops"] = int(words[12])  # datagrams the socket dropped since it was opened (a full buffer)
        found.append(socket)
    return found


def local_ports(proto, tables=None):
    """{port: states} of every socket of `proto` in this network namespace, listening or connected, by its local
    port (a fixed source port one of them holds is not free)."""
    found = {}
    for _proto, text in _texts(tables, proto):
        for line in text.splitlines()[1:]:
            words = line.split()
            if len(words) > 3 and not (proto == "tcp" and words[3] == TIME_WAIT):  # SO_REUSEADDR binds past it
                found.setdefault(int(words[1].partition(":")[2], 16), set()).add(
                    "listening" if words[3] == LISTENING[proto] else "connected")
    return found


def _texts(tables=None, proto=None):
    """(proto, text) of each socket table of this namespace that can be read (of `proto` only, where given)."""
    for (table_proto, _family), path in sorted((tables or TABLES).items()):
        if proto not in (None, table_proto):
            continue
        try:
            with open(path) as handle:
                text = handle.read()
        except OSError:
            continue
        yield table_proto, text


def listening(tables=None):
    """Every listening socket of this network namespace, sorted, one per proto, address and port."""
    found = []
    for proto, text in _texts(tables):
        found += parse(text, proto)
    unique = {}
    for socket in found:  # SO_REUSEPORT's sockets on one address and port: one entry, their queues added
        key = (socket["proto"], socket["address"], socket["port"])
        if key in unique:
            unique[key] = dict(unique[key], queued=unique[key]["queued"] + socket["queued"],
                               **({"drops": unique[key]["drops"] + socket["drops"]} if "drops" in socket else {}))
        else:
            unique[key] = socket
    return [unique[key] for key in sorted(unique)]


def _takes(socket, address):
    """A socket bound to the address itself or to a wildcard of the address's family; a v6 wildcard also takes
    IPv4 unless the socket is v6-only, which these tables do not say (the report says so)."""
    bound = ipaddress.ip_address(socket["address"])
    return bound == address or bound.is_unspecified and (bound.version == address.version or bound.version == 6)


def takers(sockets, proto, address, port):
    """The sockets that would receive `proto` to address:port, and the others that listen on that port or at that
    address (what listens there instead)."""
    wanted = ipaddress.ip_address(address)
    same = [s for s in sockets if s["proto"] == proto and s["port"] == port and _takes(s, wanted)]
    nearby = [s for s in sockets if s not in same and (
        s["port"] == port or s["proto"] == proto and _takes(s, wanted))][:10]
    return same, nearby
