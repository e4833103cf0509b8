"""No line makes a parser raise: real lines from the fixtures, cut short at every length, with fields emptied, and
with bytes changed at random (seeded), go through each parser; what is not a hop is counted, never raised."""

import random

import pytest
from recorded import fixture_path

from ansible_collections.packetpath.linux.plugins.module_utils.capture.fetch import TraceReader

FORMATS = {
    "kernel_log": ["legacy-seed-dmesg.txt", "seed-ceph2-prerouting-rp-filter-kern.log",
                   "iptables_legacy-kube-node1-icmp6-dmesg.txt"],
    "xtables_monitor": ["xtables-monitor-kube-node2-forward-drop.txt"],
    "nft_monitor": ["nft-monitor-kube-node3-dnat.txt", "nft-monitor-kube-node3-icmp6.txt"],
}


def real_lines(fmt):
    lines = []
    for name in FORMATS[fmt]:
        with open(fixture_path("traces", name), encoding="utf-8") as handle:
            lines += handle.read().splitlines(keepends=True)
    return lines


def variants(line, rng):
    """The line cut at every length, each `KEY=value` emptied, and 40 random byte changes."""
    for end in range(len(line)):
        yield line[:end]
    words = line.split(" ")
    for index, word in enumerate(words):
        if "=" in word:
            yield " ".join(words[:index] + [word.split("=", 1)[0] + "="] + words[index + 1:])
    for _change in range(40):
        chars = list(line)
        for _position in range(rng.randrange(1, 4)):
            chars[rng.randrange(len(chars))] = chr(rng.choice([0, 9, 32, 61, 58, 91, 93, rng.randrange(33, 127)]))
        yield "".join(chars)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_no_malformed_line_makes_a_parser_raise(fmt):
    rng = random.Random(19)
    lines = real_lines(fmt)
    fed = [variant for line in lines[:12] for variant in variants(line, rng)]
    reader = TraceReader(fmt, max_packets=10000)
    packets = reader.read(iter(fed))  # the assertion is that this returns
    stats = reader.stats
    assert stats["lines_read"] == len(fed)
    assert stats["unparsable_lines"] + stats["other_lines"] > 0  # the bad lines were counted, not raised
    assert isinstance(packets, list)


def test_a_kernel_log_line_with_an_empty_source_is_counted_not_raised():
    line = real_lines("kernel_log")[0].replace("SRC=198.51.100.13", "SRC=")
    reader = TraceReader("kernel_log")
    assert reader.read([line]) == []
    assert reader.stats["unparsable_lines"] == 1
