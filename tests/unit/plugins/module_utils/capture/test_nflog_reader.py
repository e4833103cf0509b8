"""NFLOG messages recorded in a scratch namespace, next to the kernel log's own line for each packet.

The namespace had two rules in raw OUTPUT (IPv4 and IPv6): `-j LOG --log-prefix "PPTWIN " --log-tcp-sequence
--log-tcp-options --log-ip-options --log-uid`, then `-j TRACE`, with nf_log/2 and nf_log/10 bound to nfnetlink_log.
LOG printed each packet to the kernel log with the same formatter TRACE uses there (nf_log_ipv4/ipv6), TRACE sent
its hops to NFLOG group 0: so every `raw:OUTPUT:policy:3` hop has the kernel's own line as a twin.  TCP to a closed
port (SYN and RST), UDP (datagram and the port-unreachable that quotes it) and ICMP echo (request and reply), over
IPv4 and IPv6 on lo; kernel 6.18, pyroute2 0.7.2, 2026-11-25.
"""

import json
import socket
import threading
import time

import pytest
from recorded import fixture_path

from ansible_collections.packetpath.linux.plugins.module_utils.capture import nflog_reader
from ansible_collections.packetpath.linux.plugins.module_utils.capture.fetch import TraceReader
from ansible_collections.packetpath.linux.plugins.module_utils.capture.parsers.kernel_log import packet_key, parse_fields

PACKET = (nflog_reader.NFNL_SUBSYS_ULOG << 8) | nflog_reader.NFULNL_MSG_PACKET


def recorded():
    with open(fixture_path("nflog", "lo-trace-and-log-twins.json"), encoding="utf-8") as handle:
        return json.load(handle)


def nflog_lines(chunks):
    marshal = nflog_reader.NflogMarshal()
    return [nflog_reader.decode_packet(message, 12.5, {1: "lo"})
            for chunk in chunks for message in marshal.parse(bytes.fromhex(chunk))
            if message["header"]["type"] == PACKET]


def test_every_nflog_hop_reads_as_the_kernel_log_line_of_the_same_packet():
    fixture = recorded()
    ours = [line.split("TRACE: raw:OUTPUT:policy:3 ", 1)[1].strip() for line in nflog_lines(fixture["nflog_recv_hex"])
            if "raw:OUTPUT:policy:3" in line]
    twins = [line.split("PPTWIN ", 1)[1].strip() for line in fixture["kernel_log_twins"]]
    assert len(ours) == len(twins) == 12
    for line, twin in zip(ours, twins):
        assert parse_fields(line) == parse_fields(twin), (line, twin)
        assert packet_key(line + " ") == packet_key(twin + " "), (line, twin)
    protocols = {parse_fields(twin)["proto"] for twin in twins}
    assert protocols == {"tcp", "udp", "icmp", "icmpv6"}


def test_the_lines_carry_the_hop_and_the_kernel_clock():
    lines = nflog_lines(recorded()["nflog_recv_hex"])
    assert all(line.startswith("[   12.500000] TRACE: ") and line.endswith("\n") for line in lines)
    assert any("TRACE: raw:PREROUTING:policy:1 IN=lo OUT= " in line for line in lines)


def test_the_kernel_log_parser_groups_them_into_packets():
    fixture = recorded()
    reader = TraceReader("kernel_log")
    packets = reader.read(nflog_lines(fixture["nflog_recv_hex"]))
    assert reader.stats["unparsable_lines"] == 0
    # Each packet passes the host twice on lo: sent (OUTPUT), then received (PREROUTING), as two passes of one id.
    assert [[hop["chain"] for hop in packet["hops"]] for packet in packets] == [["OUTPUT"], ["PREROUTING"]] * 12
    assert [packet["id"] for packet in packets[1::2]] == [packet["id"] + ".2" for packet in packets[::2]]
    syn = parse_fields(fixture["kernel_log_twins"][0].split("PPTWIN ", 1)[1])
    assert packets[0]["id"] == "tcp-%d-%d" % (syn["ip_id"], syn["seq"])


def test_what_is_not_a_trace_or_an_ip_packet_gives_no_line():
    assert nflog_reader.kernel_log_line(1.0, "NFLOG something ", b"\x45" + b"\0" * 39) is None
    assert nflog_reader.kernel_log_line(1.0, "TRACE: raw:OUTPUT:policy:2 ", b"\x00" * 10) is None
    assert nflog_reader.kernel_log_line(1.0, None, b"") is None


def test_a_configuration_the_kernel_never_answers_ends_at_its_deadline(monkeypatch):
    """Issue #27: under a flood the reader waited for the unbind's answer in recv past the capture's end. Here the
    other end of a socket pair keeps sending the recorded packets, never an acknowledgement."""
    monkeypatch.setattr(nflog_reader, "CONFIG_TIMEOUT", 0.3)
    chunks = [bytes.fromhex(chunk) for chunk in recorded()["nflog_recv_hex"]]
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    flooding = threading.Event()
    flooding.set()

    def flood():
        while flooding.is_set():
            for chunk in chunks:
                kernel.send(chunk)
            time.sleep(0.005)

    sender = threading.Thread(target=flood, daemon=True)
    with ours, kernel:
        sender.start()
        stream = nflog_reader.NflogStream()
        stream.sock, stream.marshal = ours, nflog_reader.NflogMarshal()
        started = time.monotonic()
        try:
            with pytest.raises(OSError) as gave_up:
                stream._config([("NFULA_CFG_CMD", {"command": nflog_reader.NFULNL_CFG_CMD_UNBIND})])  # pylint: disable=protected-access
        finally:
            flooding.clear()
            sender.join()
    # Our deadline (ETIMEDOUT), or the last recv's share of it (socket.timeout): either way within it.
    assert isinstance(gave_up.value, (socket.timeout, OSError)) and time.monotonic() - started < 1.5
