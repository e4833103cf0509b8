"""The rule texts and verdicts of legacy lines, from iptables-save as recorded in a scratch namespace: a foreign
comment with a line break (and quotes) inside is one rule, not two (issue #27: the DROP after such a comment was
read as a rule of its own, and the verdict turned "undecided")."""

from recorded import fixture_path

from ansible_collections.packetpath.linux.plugins.module_utils.capture.legacy_rules import LegacyRules, parse_save
from ansible_collections.packetpath.linux.plugins.module_utils.trace.backends import iptables_lines


def recorded():
    with open(fixture_path("backends", "iptables-save-comment-with-newline.txt"), encoding="utf-8") as handle:
        return handle.read()


def test_a_comment_with_a_line_break_is_part_of_its_rule():
    rules = parse_save(recorded())[("filter", "INPUT")]["rules"]
    assert len(rules) == 2 and rules[0].endswith('-A INPUT -j ACCEPT" -j DROP'), rules
    legacy = LegacyRules({"ipv4": recorded()})
    assert legacy.verdict("ipv4", "filter", legacy.rule("ipv4", "filter", "INPUT", 1)) == ("drop", None)
    assert legacy.verdict("ipv4", "filter", legacy.rule("ipv4", "filter", "INPUT", 2)) == ("reject", None)


def test_lines_without_quotes_stay_as_they_are():
    text = "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j TRACE\nCOMMIT\n"
    assert list(iptables_lines(text)) == text.splitlines()
