# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a legacy TRACE line leaves out: the rule text and the verdict.

`TRACE: nat:KUBE-SEP-X:rule:2` names the rule by its position only.  The text is
read from `iptables-save` (the host's ruleset when the trace is fetched, which
may differ from the ruleset when the packet passed: results say "as of fetch
time"); the verdict is the rule's target, or the policy of a built-in chain.
Where no ruleset is at hand, the next hop tells the verdict of most rules.
"""

import shlex

from ansible_collections.packetpath.linux.plugins.module_utils.trace.backends import iptables_lines

RULE_SOURCE = "iptables-save as of fetch time"

# Targets that end the table's walk with the packet accepted, and those that let it walk on.
_ACCEPTING_TARGETS = frozenset(("ACCEPT", "DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP", "TPROXY"))
_TERMINAL_TARGETS = {"DROP": "drop", "REJECT": "reject", "RETURN": "return", "QUEUE": "queue", "NFQUEUE": "queue"}


def _target(rule):
    """('-j' target, is_goto) of an iptables-save rule line, or (None, False)."""
    try:
        words = shlex.split(rule)
    except ValueError:
        words = rule.split()
    for index, word in enumerate(words[:-1]):
        if word in ("-j", "--jump", "-g", "--goto"):
            return words[index + 1], word in ("-g", "--goto")
    return None, False


def parse_save(text):
    """iptables-save output -> {(table, chain): {"policy": str|None, "rules": [line, ...]}}."""
    chains = {}
    table = None
    for line in iptables_lines(text):
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith(":") and table:
            name, _sep, rest = line[1:].partition(" ")
            policy = rest.split(" ", 1)[0]
            chains[(table, name)] = {"policy": None if policy == "-" else policy, "rules": []}
        elif line.startswith("-A ") and table:
            chain = line[3:].split(" ", 1)[0]
            chains.setdefault((table, chain), {"policy": None, "rules": []})["rules"].append(line)
    return chains


class LegacyRules:
    """The iptables-save of each family, read once per fetch."""

    def __init__(self, saves):
        self._chains = {family: parse_save(text) for family, text in saves.items() if text}

    def __bool__(self):
        return bool(self._chains)

    __nonzero__ = __bool__

    def rule(self, family, table, chain, number):
        rules = self._chains.get(family, {}).get((table, chain), {}).get("rules", [])
        return rules[number - 1] if 0 < number <= len(rules) else None

    def policy(self, family, table, chain):
        return self._chains.get(family, {}).get((table, chain), {}).get("policy")

    def verdict(self, family, table, rule):
        """(verdict, jump target) of a rule line."""
        target, goto = _target(rule)
        if target is None:
            return "continue", None
        if (table, target) in self._chains.get(family, {}):
            return ("goto" if goto else "jump"), target
        if target in _ACCEPTING_TARGETS:
            return "accept", None
        if target in _TERMINAL_TARGETS:
            return _TERMINAL_TARGETS[target], None
        return "continue", None  # LOG, MARK, CT, TRACE, ...: the walk goes on
