# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Send a few bounded test packets and say what came back: TCP connects, UDP datagrams, ICMP echoes.

Sockets only (no shell, no ping or nc): a fixed source port lets a trace rule
match exactly the probe's packets; SO_BINDTODEVICE and SO_MARK send them the
way a given interface or policy route would.
"""

import errno
import os
import select
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError

MAX_COUNT = 100
MAX_TIMEOUT = 30.0
MAX_INTERVAL = 10.0
PAYLOAD = b"packetpath-probe"
SO_MARK = 36
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
_UNREACHABLE = (errno.EHOSTUNREACH, errno.ENETUNREACH)
_ECHO = {socket.AF_INET: (8, 0, socket.IPPROTO_ICMP), socket.AF_INET6: (128, 129, socket.IPPROTO_ICMPV6)}
_UNREACHABLE_TYPE = {socket.AF_INET: 3, socket.AF_INET6: 1}
# The kernel queues each ICMP error a socket gets, with the address that sent it, where the socket asks for it
# (IP_RECVERR, IPV6_RECVERR; linux/in.h, linux/in6.h, linux/errqueue.h): the probe reports who refused it and why.
RECVERR = {socket.AF_INET: (socket.IPPROTO_IP, 11), socket.AF_INET6: (socket.IPPROTO_IPV6, 25)}
_EE_ORIGIN_ICMP = (2, 3)  # SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6
_SOCK_EXTENDED_ERR = struct.Struct("=IBBBBII")
ICMP_NAMES = {socket.AF_INET: {3: "destination unreachable", 4: "source quench", 5: "redirect", 11: "time exceeded",
                               12: "parameter problem"},
              socket.AF_INET6: {1: "destination unreachable", 2: "packet too big", 3: "time exceeded",
                                4: "parameter problem"}}


class ProbeError(OptionError):
    """A bad probe option: nothing was sent."""

    consequence = "nothing was sent"


def _family(address, option="dst"):
    try:
        socket.inet_pton(socket.AF_INET, address)
        return socket.AF_INET
    except (OSError, ValueError):
        pass
    try:
        socket.inet_pton(socket.AF_INET6, address)
        return socket.AF_INET6
    except (OSError, ValueError):
        raise ProbeError(option, address, "not an IPv4/IPv6 address")


class Probe:
    """The options of one probe run, checked."""

    def __init__(self, proto, dst, dport=None, src=None, sport=None, dev=None, mark=None, count=3, interval=0.2,
                 timeout=2.0, expect_reply=False, parallel=False):
        self.family = _family(dst)
        if src and _family(src, "src") != self.family:
            raise ProbeError("src", src, "not of the same family as dst=%r" % (dst,))
        if proto not in ("tcp", "udp", "icmp"):
            raise ProbeError("proto", proto, "one of tcp, udp, icmp")
        if proto in ("tcp", "udp") and dport is None:
            raise ProbeError("dport", reason="required for proto=%s" % proto)
        if proto == "icmp" and (dport or sport):
            option = "dport" if dport else "sport"
            raise ProbeError(option, dport or sport, "ports go with tcp or udp, not icmp")
        for option, value, high in (("dport", dport, 65535), ("sport", sport, 65535)):
            if value is not None and not 1 <= value <= high:
                raise ProbeError(option, value, "must be 1-%d" % high)
        if not 1 <= count <= MAX_COUNT:
            raise ProbeError("count", count, "must be 1-%d" % MAX_COUNT)
        if not 0 < timeout <= MAX_TIMEOUT:
            raise ProbeError("timeout", timeout, "must be more than 0 and at most %d seconds" % MAX_TIMEOUT)
        if not 0 <= interval <= MAX_INTERVAL:
            raise ProbeError("interval", interval, "must be 0-%d seconds" % MAX_INTERVAL)
        if parallel and sport is not None and sport + count - 1 > 65535:
            raise ProbeError("sport", sport, "with parallel=true and count=%d the attempts use ports %d-%d, past 65535"
                             % (count, sport, sport + count - 1))
        if mark is not None and not 0 <= mark <= 0xFFFFFFFF:
            raise ProbeError("mark", mark, "must be 0-4294967295")
        # A NUL would end the name SO_BINDTODEVICE reads: "lo\0x" would bind to lo.
        if dev is not None and (not dev or len(dev) > 15 or "/" in dev or "\0" in dev or dev.split() != [dev]):
            raise ProbeError("dev", dev, "not an interface name")
        self.proto, self.dst, self.dport, self.src, self.sport = proto, dst, dport, src, sport
        self.dev, self.mark, self.count, self.interval, self.timeout = dev, mark, count, interval, timeout
        self.expect_reply = expect_reply or proto == "icmp"
        self.parallel = parallel

    def source_port(self, number):
        """The source port of attempt `number` (from 0): one port for attempts one after the other, sport + number
        side by side (a connection's addresses and ports are its own: two at once cannot share them)."""
        if not self.sport:
            return None
        return self.sport + number if self.parallel else self.sport

    def _socket(self, kind, protocol=0, number=0):
        sock = socket.socket(self.family, kind, protocol)
        try:
            if self.dev:
                sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, self.dev.encode() + b"\0")
            if self.mark is not None:
                # As the kernel's u32: Python passes an int as a C int, which refuses marks from 2**31 on.
                sock.setsockopt(socket.SOL_SOCKET, SO_MARK, struct.pack("=I", self.mark))
            if kind != socket.SOCK_RAW:
                sock.setsockopt(*RECVERR[self.family], 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                port = self.source_port(number) if number is not None else None  # None: any port
                if self.src or port:
                    sock.bind((self.src or ("::" if self.family == socket.AF_INET6 else "0.0.0.0"), port or 0))
            elif self.src:
                sock.bind((self.src, 0))
        except OSError:
            sock.close()
            raise
        return sock

    def plan(self, ports_in_use=None):
        """What the probe would send, without sending: the source address the kernel chooses for dst (a datagram
        socket connected, nothing sent; None and `source_error` where there is no route) and the source ports.
        A fixed source port a socket here already holds is refused: the probe could not have it, and a trace of the
        port either way would count that socket's packets. `ports_in_use`: {port: states} of this namespace's
        sockets of the probe's protocol."""
        ports = sorted(set(self.source_port(number) for number in range(self.count))) if self.sport else []
        for port in ports:
            if port in (ports_in_use or {}):
                raise ProbeError("sport", self.sport, "port %d is held by a %s socket in this network namespace: "
                                 "choose another" % (port, "/".join(sorted(ports_in_use[port]))))
        plan = {"source": None, "sports": ports}
        try:
            sock = self._socket(socket.SOCK_DGRAM, number=None)
        except OSError as exc:  # SO_BINDTODEVICE to an interface this namespace does not have, a mark refused
            option, value = ("dev", self.dev) if self.dev else ("mark", self.mark) if self.mark is not None else (
                "src", self.src)
            raise ProbeError(option, value, "refused here: %s" % (exc.strerror or exc))
        try:
            sock.connect((self.dst, self.dport or 9))
            plan["source"] = sock.getsockname()[0]
        except OSError as exc:  # the probe's attempts would say so, each: not a bad option
            plan["source_error"] = exc.strerror or str(exc)
        finally:
            sock.close()
        return plan

    def run(self):
        """The attempts, each started `interval` after the previous one ended; with parallel, after the previous one
        started, so the whole probe waits one timeout instead of one per attempt."""
        attempt = getattr(self, "_" + self.proto)
        if self.parallel:
            with ThreadPoolExecutor(max_workers=self.count) as pool:
                started = []
                for number in range(self.count):
                    if number:
                        time.sleep(self.interval)
                    started.append(pool.submit(attempt, number))
                attempts = [future.result() for future in started]
        else:
            attempts = []
            for number in range(self.count):
                if number:
                    time.sleep(self.interval)
                attempts.append(attempt(number))
        for number, outcome in enumerate(attempts):
            outcome["attempt"] = number + 1
            if self.proto != "icmp" and self.source_port(number):  # whatever the result: the trace's conversation
                outcome.setdefault("source_port", self.source_port(number))
        return attempts

    def _tcp(self, number):
        started = time.time()
        try:
            sock = self._socket(socket.SOCK_STREAM, number=number)
        except OSError as exc:
            return _failed(exc, started)
        try:
            # No TIME_WAIT on close (RST instead), so the next attempt can use the same source port.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.settimeout(self.timeout)
            sock.connect((self.dst, self.dport))
            result = {"result": "connected", "source_port": sock.getsockname()[1]}
        except socket.timeout:
            result = {"result": "timeout"}
        except OSError as exc:
            result = _failed(exc, started, sock)
        finally:
            sock.close()
        result["latency_ms"] = _ms(started)
        return result

    def _udp(self, number):
        started = time.time()
        try:
            sock = self._socket(socket.SOCK_DGRAM, number=number)
        except OSError as exc:
            return _failed(exc, started)
        try:
            sock.connect((self.dst, self.dport))  # so that an ICMP port unreachable comes back as ECONNREFUSED
            source_port = sock.getsockname()[1]
            sock.send(PAYLOAD)
            if not self.expect_reply:
                return {"result": "sent", "source_port": source_port, "latency_ms": _ms(started)}
            ready = select.select([sock], [], [], self.timeout)[0]
            if not ready:
                return {"result": "timeout", "source_port": source_port, "latency_ms": _ms(started)}
            sock.recv(2048)
            return {"result": "reply", "source_port": source_port, "latency_ms": _ms(started)}
        except OSError as exc:
            return _failed(exc, started, sock)
        finally:
            sock.close()

    def _icmp(self, number):
        started = time.time()
        request_type, reply_type, protocol = _ECHO[self.family]
        ident = (os.getpid() + number) & 0xFFFF
        try:
            sock = self._socket(socket.SOCK_RAW, protocol)
        except OSError as exc:
            return _failed(exc, started)
        try:
            header = struct.pack("!BBHHH", request_type, 0, 0, ident, number + 1)
            packet = header + PAYLOAD
            if self.family == socket.AF_INET:  # the kernel sums ICMPv6 itself
                packet = struct.pack("!BBHHH", request_type, 0, _checksum(packet), ident, number + 1) + PAYLOAD
            sock.sendto(packet, (self.dst, 0))
            deadline = started + self.timeout
            while True:
                left = deadline - time.time()
                if left <= 0 or not select.select([sock], [], [], left)[0]:
                    return {"result": "timeout", "latency_ms": _ms(started)}
                data, peer = sock.recvfrom(2048)
                if self.family == socket.AF_INET:
                    data = data[(data[0] & 0x0F) * 4:]  # raw IPv4 sockets hand over the IP header too
                if len(data) >= 8 and data[0] == reply_type and struct.unpack("!HH", data[4:8]) == (ident, number + 1):
                    return {"result": "reply", "from": peer[0], "latency_ms": _ms(started)}
                if len(data) >= 8 and data[0] == _UNREACHABLE_TYPE[self.family] and PAYLOAD in data:
                    # "Destination unreachable" quoting our echo request.
                    return {"result": "unreachable", "from": peer[0], "latency_ms": _ms(started)}
        except OSError as exc:
            return _failed(exc, started)
        finally:
            sock.close()


def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _ms(started):
    return round((time.time() - started) * 1000.0, 3)


def _failed(exc, started, sock=None):
    code = exc.errno
    result = "refused" if code == errno.ECONNREFUSED else "unreachable" if code in _UNREACHABLE else "error"
    outcome = {"result": result, "latency_ms": _ms(started)}
    if result == "error" or code:
        outcome["errno"] = errno.errorcode.get(code, str(code))
        outcome["message"] = os.strerror(code) if code else str(exc)
    icmp = icmp_error(sock) if sock is not None else None
    if icmp:
        outcome["icmp"] = icmp
    return outcome


def icmp_error(sock):
    """The ICMP error the kernel queued on the socket: {type, code, name, from}, or None (a local refusal, a reset,
    or nothing queued)."""
    try:
        _data, ancillary, _flags, _address = sock.recvmsg(512, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
    except OSError:
        return None
    for level, kind, data in ancillary:
        if (level, kind) not in RECVERR.values() or len(data) < _SOCK_EXTENDED_ERR.size:
            continue
        _errno, origin, icmp_type, icmp_code, _pad, _info, _data = _SOCK_EXTENDED_ERR.unpack_from(data)
        if origin not in _EE_ORIGIN_ICMP:
            continue
        family = sock.family
        offender = data[_SOCK_EXTENDED_ERR.size:]
        length = 4 if family == socket.AF_INET else 16
        start = 4 if family == socket.AF_INET else 8  # sockaddr_in: family, port; sockaddr_in6: and flowinfo
        sender = socket.inet_ntop(family, offender[start:start + length]) if len(offender) >= start + length else None
        return {"type": icmp_type, "code": icmp_code, "from": sender,
                "name": ICMP_NAMES[family].get(icmp_type, "type %d" % icmp_type)}
    return None


# The results of an attempt that got through.
SUCCEEDED = ("connected", "reply", "sent")


def summary(attempts):
    """How many attempts ended how, and the first and last result."""
    counts = {}
    for attempt in attempts:
        counts[attempt["result"]] = counts.get(attempt["result"], 0) + 1
    good = sum(counts.get(result, 0) for result in SUCCEEDED)
    icmp = []
    for attempt in attempts:
        error = {key: attempt["icmp"][key] for key in ("name", "code", "from")} if attempt.get("icmp") else None
        if error and error not in icmp:
            icmp.append(error)
    return {"attempts": len(attempts), "results": counts, "succeeded": good, "failed": len(attempts) - good,
            "first": attempts[0]["result"] if attempts else None, "last": attempts[-1]["result"] if attempts else None,
            "icmp": icmp}


EPHEMERAL = "/proc/sys/net/ipv4/ip_local_port_range"  # IPv6 sockets use the same range


def ephemeral_warning(first, last=None, path=EPHEMERAL):
    """Words for fixed source ports (first..last) that reach into this namespace's ephemeral range, or None: the
    kernel can hand such a port to any connection made here, and a trace that selects it either way then counts
    strangers' packets too."""
    if not first:
        return None
    last = last or first
    try:
        with open(path) as handle:
            low, high = (int(value) for value in handle.read().split())
    except (OSError, ValueError):
        return None
    if first <= high and last >= low:
        ports = "sport=%d lies" % first if last == first else "source ports %d-%d reach" % (first, last)
        return ("%s in this host's ephemeral port range (%d-%d): other connections can be given them too, and a "
                "trace of the port either way counts their packets with the probe's; choose a port outside it" % (
                    ports, low, high))
    return None
