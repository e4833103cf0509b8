"""Strangers' traffic on a port: TCP SYNs from `src`, source port `sport`, to `dst` on random ports, `rate` a second,
for at most `seconds`. Run inside a lab namespace (`ip netns exec`); the caller ends it by its PID.

The packets leave through the namespace's OUTPUT and POSTROUTING like any of its own, so a trace of the port either
way sees them there, and on every lab host they are routed through. `src` is an address of the namespace's
network that is not the probe's: a stranger on the same port. Only lab addresses are written into the packets.
"""

import argparse
import ipaddress
import random
import socket
import struct
import time

LAB_NETWORKS = [ipaddress.ip_network(net) for net in ("198.18.0.0/15", "192.0.2.0/24", "198.51.100.0/24",
                                                      "203.0.113.0/24")]


def syn(src, dst, sport, dport, ident):
    """An IPv4 header (the kernel fills in its checksum) and a TCP SYN (its checksum left 0: only the headers are
    looked at on the way)."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, random.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ident, 0, 64, socket.IPPROTO_TCP, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    return header + tcp


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", required=True)
    parser.add_argument("--dst", required=True)
    parser.add_argument("--sport", type=int, required=True)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    for address in (args.src, args.dst):
        if not any(ipaddress.ip_address(address) in net for net in LAB_NETWORKS):
            raise SystemExit("%s: not a lab address" % address)
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)  # IP_HDRINCL: the source is ours
    sent, started = 0, time.monotonic()
    while time.monotonic() - started < args.seconds:
        due = int((time.monotonic() - started) * args.rate)
        while sent < due:
            try:
                sock.sendto(syn(args.src, args.dst, args.sport, random.randint(1024, 65000), sent & 0xFFFF),
                            (args.dst, 0))
            except OSError:  # a full queue or an unresolved neighbour: a stranger's packet lost, as on a real host
                pass
            sent += 1
        time.sleep(0.002)


if __name__ == "__main__":
    main()
