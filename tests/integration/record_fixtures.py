"""Record real trace output in the kube lab, through trace_rule itself: `make fixtures`.

For each backend node and each case (TCP, UDP, ICMP over IPv4; TCP and ICMPv6 over
IPv6) it switches a trace on, sends one bounded packet from the client, captures what
the backend prints, switches the trace off, and writes the lines unedited under
tests/unit/fixtures/traces/.  The lab is torn down at the end, also on failure.
"""

import os
import sys
import time

from labtools import ROOT, Monitor, connect, kernel_trace_since, lab, module, send, uptime

OUT = os.path.join(ROOT, "tests", "unit", "fixtures", "traces")
NODES = {"node1": ("iptables_legacy", "11"), "node2": ("iptables_nft", "12"), "node3": ("nftables", "13")}
CASES = {
    "tcp4": ({"proto": "tcp", "dport": "30080"}, "tcp", "198.51.100.%s", 30080),
    "udp4": ({"proto": "udp", "dport": "9999"}, "udp", "198.51.100.%s", 9999),
    "icmp4": ({"proto": "icmp", "dst": "198.51.100.%s"}, "icmp", "198.51.100.%s", 0),
    "tcp6": ({"proto": "tcp", "dport": "30080", "family": "ipv6"}, "tcp", "2001:db8:100::%s", 30080),
    "icmp6": ({"proto": "icmpv6", "dst": "2001:db8:100::%s"}, "icmp", "2001:db8:100::%s", 0),
}


def probe(proto, address, port):
    if proto == "tcp":
        connect("pp-client", address, port, timeout=1)
    else:
        send("pp-client", proto, address, port)


def record(host, case):
    backend, suffix = NODES[host]
    flow, proto, address, port = CASES[case]
    flow = dict((k, v % suffix if "%s" in v else v) for k, v in flow.items())
    address = address % suffix
    result = module(host, "packetpath.linux.trace_rule", dict(flow, expires=60, hooks=["prerouting"]))
    assert result["_status"] == "CHANGED", result["_stdout"]
    if backend == "iptables_legacy":
        since = uptime()
        probe(proto, address, port)
        time.sleep(0.5)
        lines = kernel_trace_since(since, "IN=eth1")
        name = "%s-kube-%s-%s-dmesg.txt" % (backend, host, case)
    else:
        argv = ["xtables-monitor", "--trace"] if backend == "iptables_nft" else ["nft", "monitor", "trace"]
        monitor = Monitor("pp-" + host, argv)
        probe(proto, address, port)
        lines = monitor.stop().splitlines()
        name = "%s-kube-%s-%s.txt" % ("xtables-monitor" if backend == "iptables_nft" else "nft-monitor", host, case)
    module(host, "packetpath.linux.trace_rule", {"state": "absent", "all": True})
    if not lines:
        raise AssertionError("no trace for %s on %s" % (case, host))
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    print("%-55s %3d lines" % (name, len(lines)))


def main():
    lab("up", "kube")
    try:
        for host in NODES:
            for case in CASES:
                record(host, case)
    finally:
        lab("down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
