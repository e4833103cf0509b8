"""A small TCP/UDP service for the lab's hosts (stdlib only, runs on the target's python3).

TCP: accepts, writes one line naming the host and port, closes.
UDP: answers each datagram with the same line followed by what it received.
Stalled TCP: listens with a backlog of 0 and never accepts; one connection of its own over loopback fills the
accept queue before it says ready, so the kernel drops every SYN after (ListenOverflows), as for a service that has
stopped accepting.
Stalled UDP: a socket with the smallest receive buffer that never reads; datagrams of its own over loopback fill the
buffer before it says ready, so the kernel drops every datagram after (RcvbufErrors), as for a service that has
stopped reading.
A port is PORT (every address of the namespace, IPv4 and IPv6) or PORT@ADDRESS (that address only).
"""

import argparse
import selectors
import socket


def open_socket(kind, where, backlog=128):
    """A socket on PORT (every address, both families) or PORT@ADDRESS."""
    port, _at, address = where.partition("@")
    family = socket.AF_INET6 if not address or ":" in address else socket.AF_INET
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if not address:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind((address or "::", int(port)))
    if kind == socket.SOCK_STREAM:
        sock.listen(backlog)
    sock.setblocking(False)
    return sock


def _loopback(where):
    address = where.partition("@")[2]
    return (address if address.startswith("127.") or address == "::1" else "127.0.0.1"), int(where.partition("@")[0])


def stall_tcp(where):
    """A listener whose accept queue is full: backlog 0 holds one connection, made here and never accepted. Both
    sockets are returned so they live as long as the process."""
    listener = open_socket(socket.SOCK_STREAM, where, backlog=0)
    filler = socket.create_connection(_loopback(where), timeout=5)
    return listener, filler


def stall_udp(where):
    """A udp socket whose receive buffer is full: the smallest buffer the kernel allows, filled with datagrams sent
    here and never read (more than it holds: the socket counts the rest as drops)."""
    receiver = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    receiver.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    receiver.bind(("::", int(where.partition("@")[0])))
    filler = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _datagram in range(64):
        filler.sendto(b"x" * 1024, _loopback(where))
    return receiver, filler


def serve(name, tcp_ports, udp_ports, ready, stalled_tcp=(), stalled_udp=()):
    selector = selectors.DefaultSelector()
    # held open as long as the process, never read
    _stalled = [stall_tcp(where) for where in stalled_tcp] + [stall_udp(where) for where in stalled_udp]
    for where in tcp_ports:
        selector.register(open_socket(socket.SOCK_STREAM, where), selectors.EVENT_READ, ("tcp", where))
    for where in udp_ports:
        selector.register(open_socket(socket.SOCK_DGRAM, where), selectors.EVENT_READ, ("udp", where))
    if ready:
        with open(ready, "w", encoding="utf-8") as handle:
            handle.write("ready\n")
    while True:
        for key, _events in selector.select():
            proto, where = key.data
            banner = ("packetpath-lab %s %s/%s\n" % (name, proto, where)).encode()
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
    for option in ("--tcp", "--udp", "--stalled-tcp", "--stalled-udp"):
        parser.add_argument(option, action="append", default=[], metavar="PORT[@ADDRESS]")
    parser.add_argument("--ready", help="file written once every socket listens")
    args = parser.parse_args()
    serve(args.name, args.tcp, args.udp, args.ready, args.stalled_tcp, args.stalled_udp)


if __name__ == "__main__":
    main()
