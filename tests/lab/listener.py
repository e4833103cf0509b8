"""A small TCP/UDP service for the lab's hosts (stdlib only, runs on the target's python3).

TCP: accepts, writes one line naming the host and port, closes.
UDP: answers each datagram with the same line followed by what it received.
Stalled TCP: listens with a backlog of 0 and never accepts; one connection of its own over loopback fills the
accept queue before it says ready, so the kernel drops every SYN after (ListenOverflows), as for a service that has
stopped accepting.
Listens on every address of the namespace, IPv4 and IPv6.
"""

import argparse
import selectors
import socket


def open_socket(kind, port, backlog=128):
    sock = socket.socket(socket.AF_INET6, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    if kind == socket.SOCK_STREAM:
        sock.listen(backlog)
    sock.setblocking(False)
    return sock


def stall(port):
    """A listener whose accept queue is full: backlog 0 holds one connection, made here and never accepted. Both
    sockets are returned so they live as long as the process."""
    listener = open_socket(socket.SOCK_STREAM, port, backlog=0)
    filler = socket.create_connection(("127.0.0.1", port), timeout=5)
    return listener, filler


def serve(name, tcp_ports, udp_ports, ready, stalled_ports=()):
    selector = selectors.DefaultSelector()
    _stalled = [stall(port) for port in stalled_ports]  # held open as long as the process
    for port in tcp_ports:
        selector.register(open_socket(socket.SOCK_STREAM, port), selectors.EVENT_READ, ("tcp", port))
    for port in udp_ports:
        selector.register(open_socket(socket.SOCK_DGRAM, port), selectors.EVENT_READ, ("udp", port))
    if ready:
        with open(ready, "w", encoding="utf-8") as handle:
            handle.write("ready\n")
    while True:
        for key, _events in selector.select():
            proto, port = key.data
            banner = ("packetpath-lab %s %s/%d\n" % (name, proto, port)).encode()
            try:
                if proto == "tcp":
                    conn, _peer = key.fileobj.accept()
                    with conn:
                        conn.sendall(banner)
                else:
                    data, peer = key.fileobj.recvfrom(2048)
                    key.fileobj.sendto(banner + data, peer)
            except OSError:
                continue


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--tcp", type=int, action="append", default=[])
    parser.add_argument("--udp", type=int, action="append", default=[])
    parser.add_argument("--stalled-tcp", type=int, action="append", default=[])
    parser.add_argument("--ready", help="file written once every socket listens")
    args = parser.parse_args()
    serve(args.name, args.tcp, args.udp, args.ready, args.stalled_tcp)


if __name__ == "__main__":
    main()
