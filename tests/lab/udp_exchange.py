"""One UDP request from `src`:`sport` to `dst`:`dport`, and its answer awaited for at most `timeout` seconds: the
conversation a client with a fixed source port (a resolver, a syslog forwarder) keeps with a service. Run inside a
lab namespace (`ip netns exec`); exits 0 where an answer came, 1 where none did. Only lab addresses are used."""

import argparse
import ipaddress
import socket
import sys

LAB_NETWORKS = [ipaddress.ip_network(net) for net in ("198.18.0.0/15", "192.0.2.0/24", "198.51.100.0/24",
                                                      "203.0.113.0/24", "2001:db8::/32")]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("src")
    parser.add_argument("sport", type=int)
    parser.add_argument("dst")
    parser.add_argument("dport", type=int)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    for address in (args.src, args.dst):
        if not any(ipaddress.ip_address(address) in net for net in LAB_NETWORKS):
            parser.error("%s is not a lab address" % address)
    family = socket.AF_INET6 if ":" in args.dst else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((args.src, args.sport))
        sock.settimeout(args.timeout)
        sock.sendto(b"packetpath-lab udp_exchange\n", (args.dst, args.dport))
        try:
            sock.recvfrom(2048)
        except socket.timeout:
            print("no answer from %s:%d" % (args.dst, args.dport), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
