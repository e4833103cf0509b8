"""Fill this network namespace's conntrack table to the machine's nf_conntrack_max with entries conntrack may not
evict (UDP, ASSURED, an hour to live), so that a new flow here is dropped as "table full", as on a node under a
flood. Run inside a lab namespace (`ip netns exec`); the entries go with the namespace.

The limit is the machine's (read-only in a namespace) but the count is the namespace's: no other namespace is
touched. One message is encoded by pyroute2, then its addresses and ports are rewritten in place for each entry and
sent 256 to a datagram without acknowledgements: pyroute2's request-and-ack per entry makes ~3,700 entries/s here
(70 s for 262144); this makes them in a few seconds.
"""

import argparse
import ipaddress
import socket
import struct
import sys

from pyroute2.netlink import NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST
from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_CTNETLINK
from pyroute2.netlink.nfnetlink.nfctsocket import IPCTNL_MSG_CT_NEW, NFCTAttrTuple, nfct_msg

NETLINK_NETFILTER = 12
# IPS_SEEN_REPLY | IPS_ASSURED | IPS_CONFIRMED: ctnetlink refuses (EBUSY) a status that clears CONFIRMED.
STATUS = 0x2 | 0x4 | 0x8
SERVER = "203.0.113.250"
PORTS = 60000  # source ports 1024..61023 per client address
FIRST_CLIENT = int(ipaddress.ip_address("198.19.0.0"))
MARK_ADDRESS, MARK_PORT = "198.19.255.254", 65001


def _offsets(data, needle):
    return [i for i in range(len(data) - len(needle) + 1) if data[i:i + len(needle)] == needle]


def template():
    message = nfct_msg.create_from(
        tuple_orig=NFCTAttrTuple(saddr=MARK_ADDRESS, daddr=SERVER, proto=socket.IPPROTO_UDP, sport=MARK_PORT,
                                 dport=9),
        tuple_reply=NFCTAttrTuple(saddr=SERVER, daddr=MARK_ADDRESS, proto=socket.IPPROTO_UDP, sport=9,
                                  dport=MARK_PORT),
        status=STATUS, timeout=3600)
    message["nfgen_family"] = socket.AF_INET
    message["header"]["type"] = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW
    message["header"]["flags"] = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL
    message.encode()
    data = bytearray(message.data)
    address, port = socket.inet_aton(MARK_ADDRESS), struct.pack("!H", MARK_PORT)
    addresses, ports = _offsets(data, address), _offsets(data, port)
    assert len(addresses) == 2 and len(ports) == 2, (addresses, ports)  # once per tuple
    return data, addresses, ports


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, required=True)
    count = parser.parse_args().count
    data, addresses, ports = template()
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    sock.setblocking(False)
    batch = bytearray()
    for number in range(count):
        client, port = divmod(number, PORTS)
        for offset in addresses:
            data[offset:offset + 4] = struct.pack("!I", FIRST_CLIENT + client)
        for offset in ports:
            data[offset:offset + 2] = struct.pack("!H", 1024 + port)
        struct.pack_into("=I", data, 8, number + 1)  # nlmsg_seq
        batch += data
        if len(batch) >= 256 * len(data) or number == count - 1:
            sock.setblocking(True)
            sock.send(bytes(batch))
            sock.setblocking(False)
            batch = bytearray()
    errors = 0
    while True:  # only failures answer (no NLM_F_ACK): count them
        try:
            reply = sock.recv(65536)
        except BlockingIOError:
            break
        offset = 0
        while offset + 16 <= len(reply):
            length, kind = struct.unpack_from("=IH", reply, offset)
            if kind == 2 and struct.unpack_from("=i", reply, offset + 16)[0] != 0:
                errors += 1
            offset += (length + 3) & ~3
            if length == 0:
                break
    sock.close()
    if errors:
        sys.exit("conntrack_fill: %d of %d entries refused" % (errors, count))


if __name__ == "__main__":
    main()
