# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which tables hook where on the host: what could have printed a trace line.

"The trace ends after nat PREROUTING" means "it died at the routing decision"
only if something at input or forward would have printed a line had the packet
got there.  A legacy table hooks all its built-in chains once loaded; an nft
base chain hooks one.  A table that only sees new connections (nat) prints
nothing for later packets of a connection.  Where the host's ruleset is not at
hand (a log file from elsewhere), the tables the trace itself shows are
assumed, and for iptables-legacy also `filter`, which every firewalled host has.
"""

import re
from dataclasses import dataclass
from typing import Optional

# Legacy tables: the hooks each registers, at its priority.
LEGACY_TABLES = {
    "raw": {"prerouting": -300, "output": -300},
    "mangle": {"prerouting": -150, "input": -150, "forward": -150, "output": -150, "postrouting": -150},
    "nat": {"prerouting": -100, "output": -100, "input": 100, "postrouting": 100},
    "filter": {"input": 0, "forward": 0, "output": 0},
    "security": {"input": 50, "forward": 50, "output": 50},
}
LEGACY_ASSUMED = ("filter",)
_NFT_PRIORITY_NAMES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}
_NFT_TABLE = re.compile(r"^table (\S+) (\S+) \{")
_NFT_CHAIN = re.compile(r"^\s*chain (\S+) \{")
_NFT_HOOK = re.compile(r"type (\w+) hook (\w+)(?: device \S+)? priority ([^;]+);")
_NFT_FAMILIES = {"ip": ("ipv4",), "ip6": ("ipv6",), "inet": ("ipv4", "ipv6")}


@dataclass
class Step:
    """A place that prints a trace line: a table (legacy) or base chain (nft) at a hook."""

    hook: str
    priority: int
    table: str
    chain: Optional[str] = None
    nat_only: bool = False  # sees only the first packet of a connection

    @property
    def label(self):
        return "%s:%s" % (self.table, self.chain or self.hook.upper())


def _nft_priority(text):
    """'dstnat', 'filter - 10', '-350' -> an integer."""
    text = text.strip()
    match = re.match(r"^(-?\d+)$", text) or re.match(r"^(\w+)\s*([+-])\s*(\d+)$", text)
    if not match:
        return _NFT_PRIORITY_NAMES.get(text, 0)
    if len(match.groups()) == 1:
        return int(match.group(1))
    base = _NFT_PRIORITY_NAMES.get(match.group(1), 0)
    return base + int(match.group(3)) * (1 if match.group(2) == "+" else -1)


class HookInventory:
    """Steps per family, sorted by hook and priority; `source` says where the knowledge came from."""

    def __init__(self, steps, source):
        self.steps = steps  # family -> [Step]
        self.source = source

    @classmethod
    def legacy(cls, tables_by_family, source):
        steps = {}
        for family, tables in tables_by_family.items():
            steps[family] = [Step(hook, priority, table, nat_only=(table == "nat"))
                             for table in tables for hook, priority in LEGACY_TABLES.get(table, {}).items()]
        return cls(steps, source)

    @classmethod
    def nft(cls, listing, source):
        """From `nft list chains` (or `nft list ruleset`)."""
        steps = {"ipv4": [], "ipv6": []}
        families = table = chain = None
        for line in listing.splitlines():
            found = _NFT_TABLE.match(line)
            if found:
                families, table = _NFT_FAMILIES.get(found.group(1), ()), found.group(2)
                continue
            found = _NFT_CHAIN.match(line)
            if found:
                chain = found.group(1)
                continue
            found = _NFT_HOOK.search(line)
            if found and table and chain:
                kind, hook, priority = found.groups()
                for family in families:
                    steps[family].append(Step(hook, _nft_priority(priority), table, chain, nat_only=(kind == "nat")))
        return cls(steps, source)

    def chain_hooks(self):
        """(table, chain) -> hook of every nft base chain, for telling hooks apart in nft traces."""
        return {(step.table, step.chain): step.hook
                for steps in self.steps.values() for step in steps if step.chain}

    def for_family(self, family, seen_steps, legacy):
        """The steps of a family: the host's where known, else what the trace showed plus the usual."""
        known = self.steps.get(family)
        if known is not None and self.source != "trace":
            return known
        steps = list(seen_steps)
        if legacy:
            tables = set(step.table for step in steps) | set(LEGACY_ASSUMED)
            steps = [Step(hook, priority, table, nat_only=(table == "nat"))
                     for table in tables for hook, priority in LEGACY_TABLES.get(table, {}).items()]
        return steps


EMPTY = HookInventory({}, "trace")
