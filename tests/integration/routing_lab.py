"""Random routing state for a lab host, and what to ask it: shared by the differential test and `make fixtures`."""

import ipaddress

# Runs inside the host's namespace: `ip route get` for each argv list, JSON answers or the error text.
LOOKUP_CHILD = r"""
import json, subprocess, sys
answers = []
for argv in json.load(sys.stdin):
    done = subprocess.run(argv, capture_output=True, text=True)
    answers.append(json.loads(done.stdout)[0] if done.returncode == 0 else {"error": done.stderr.strip()})
print(json.dumps(answers))
"""


def random_fib(rng):
    """`ip -batch` lines for 4 veth pairs, 400 routes over 4 tables, and 24 policy rules (by source, destination,
    mark, arrival interface, protocol and ports, uid range)."""
    lines, tables = [], ["main", "100", "200", "300"]
    for index in range(4):
        lines += ["link add r%d type veth peer name r%dp" % (index, index), "link set r%d up" % index,
                  "link set r%dp up" % index, "addr add 198.18.%d.1/24 dev r%d" % (100 + index, index),
                  "addr add 2001:db8:%d::1/64 dev r%d nodad" % (100 + index, index)]
    lines += ["route replace 198.19.0.0/16 via 198.18.100.2", "-6 route replace 2001:db8:1000::/42 via 2001:db8:100::2"]
    for number in range(300):
        prefix = ipaddress.ip_network("198.19.%d.%d/%d" % (rng.randrange(256), rng.randrange(256),
                                                           rng.choice((20, 24, 24, 28, 32))), strict=False)
        via = "via 198.18.%d.%d" % (100 + number % 4, 2 + rng.randrange(200))
        kind = rng.choice([via, via, via, via, "dev r%d" % (number % 4), "dev r%d" % (number % 4), "blackhole",
                           "unreachable", "prohibit"])
        where = "" if kind.startswith(("via", "dev")) else kind + " "
        how = kind if where == "" else ""
        metric = rng.randrange(1, 50)
        lines.append("route replace %s%s table %s %s metric %d" % (where, prefix, rng.choice(tables), how, metric))
    for number in range(100):
        prefix = ipaddress.ip_network("2001:db8:%x::/%d" % (0x1000 + rng.randrange(64), rng.choice((48, 56, 64))))
        via = "via 2001:db8:%d::%x" % (100 + number % 4, 2 + rng.randrange(200))
        kind = rng.choice([via, via, "dev r%d" % (number % 4), "blackhole", "unreachable"])
        where = "" if kind.startswith(("via", "dev")) else kind + " "
        how = kind if where == "" else ""
        lines.append("-6 route replace %s%s table %s %s" % (where, prefix, rng.choice(tables), how))
    for number, priority in enumerate(rng.sample(range(100, 30000), 24)):
        selector = rng.choice(["from 198.19.%d.0/24" % rng.randrange(256),
                               "to 198.19.%d.0/20" % (rng.randrange(16) * 16),
                               "fwmark 0x%x" % rng.randrange(1, 4), "iif r%dp" % rng.randrange(4),
                               # selectors a lookup without them never matches, which must decode all the same
                               "ipproto tcp dport %d-%d" % (80, 80 + rng.randrange(100)), "uidrange 1000-2000",
                               "ipproto udp sport 53"])
        family = "-6 " if number % 4 == 0 and not selector.startswith(("from", "to")) else ""
        lines.append("%srule add priority %d %s lookup %s" % (family, priority, selector, rng.choice(tables[1:])))
    return lines


def random_lookups(rng, count):
    lookups = []
    for number in range(count):
        if number % 20 == 3:  # one of the host's own addresses, or a broadcast address: local and broadcast
            lookup = {"dst": "198.18.%d.%s" % (100 + rng.randrange(4), rng.choice(("1", "255")))}
        elif number % 5 == 4:
            lookup = {"dst": "2001:db8:%x::%x" % (0x1000 + rng.randrange(64), rng.randrange(1, 0xffff))}
        else:
            lookup = {"dst": "198.19.%d.%d" % (rng.randrange(256), rng.randrange(1, 255))}
        shape = rng.randrange(4)
        if shape == 1 and ":" not in lookup["dst"]:
            lookup["src"] = "198.18.%d.1" % (100 + rng.randrange(4))
        elif shape == 2:
            lookup["iif"] = "r%dp" % rng.randrange(4)
            lookup["src"] = ("198.18.%d.%d" % (100 + rng.randrange(4), rng.randrange(2, 250)) if ":" not in
                             lookup["dst"] else "2001:db8:%d::%x" % (100 + rng.randrange(4), rng.randrange(2, 250)))
        if rng.randrange(3) == 0:
            lookup["mark"] = str(rng.randrange(4))
        lookups.append(lookup)
    return lookups


def ip_argv(lookup):
    argv = ["ip", "-j", "-d", "-6" if ":" in lookup["dst"] else "-4", "route", "get", "to", lookup["dst"]]
    for option, word in (("src", "from"), ("iif", "iif"), ("mark", "mark")):
        if option in lookup:
            argv += [word, lookup[option]]
    return argv


def apply_fib(in_netns, netns, lines):
    """Feed the lines to `ip -batch` (IPv6 ones, marked "-6 ", to `ip -6 -batch`); a line that fails is skipped."""
    for flag, chosen in (([], [l for l in lines if not l.startswith("-6 ")]),
                         (["-6"], [l[3:] for l in lines if l.startswith("-6 ")])):
        in_netns(netns, ["ip"] + flag + ["-force", "-batch", "-"], stdin="\n".join(chosen) + "\n", check=False)


# What the lab host needs for arriving lookups to be answered rather than refused for other reasons.
FORWARDING = ["net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.all.forwarding=1", "net.ipv6.conf.all.forwarding=1"] + [
    "net.ipv4.conf.r%dp.rp_filter=0" % index for index in range(4)]
