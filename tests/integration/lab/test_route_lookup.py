"""packetpath.linux.route_lookup on the seed lab's node over SSH: the incident's rp_filter answer, and a
differential test against `ip route get` on a few hundred random routes, tables and rules (IPv4 and IPv6)."""

import json
import random

import pytest
from labtools import ansible_playbook, in_netns, module
from routing_lab import FORWARDING, LOOKUP_CHILD, apply_fib, ip_argv, random_fib, random_lookups


def route_lookup(**args):
    result = module("node", "packetpath.linux.route_lookup", args)
    assert result["_status"] == "SUCCESS", result["_stdout"]
    return result


@pytest.mark.usefixtures("seed")
def test_the_incident_rejected_by_strict_rp_filter_then_local_in_loose_mode():
    result = route_lookup(dst="203.0.113.12", src="198.51.100.13", iif="b-srv")
    assert result["engine"] == "ip"  # one lookup: answered before pyroute2 would be imported
    error = result["answers"][0]["error"]
    assert error["name"] == "EINVAL"  # EXDEV on the seed's 4.x kernel: the number alone cannot name the cause
    assert error["explanation"] == ("rejected by rp_filter (strict on b-srv): the route back to 198.51.100.13 leaves "
                                    "via a-srv")
    assert error["reverse_path"]["rejected"] and error["reverse_path"]["route_back_dev"] == "a-srv"
    in_netns("pp-node", ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=2", "net.ipv4.conf.b-srv.rp_filter=2"])
    try:
        answer = route_lookup(dst="203.0.113.12", src="198.51.100.13", iif="b-srv")["answers"][0]
        # With only the default rules the kernel keeps local and main merged and answers "main", as ip does.
        assert (answer["type"], answer["dev"], answer["table"]) == ("local", "lo", "main")
        printed = in_netns("pp-node", ["ip", "route", "get", "203.0.113.12", "from", "198.51.100.13", "iif",
                                       "b-srv"]).stdout
        assert answer["ip_route_get"] == printed.splitlines()[0].strip() == "local 203.0.113.12 from 198.51.100.13 dev lo"
        assert answer["matched_rule"] == {"priority": 32766, "rule": "32766: from all lookup main"}
    finally:
        in_netns("pp-node", ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.b-srv.rp_filter=1"])


@pytest.mark.usefixtures("seed")
def test_a_foreign_source_without_iif_is_explained():
    error = route_lookup(dst="203.0.113.12", src="198.51.100.13")["answers"][0]["error"]
    assert error["explanation"].startswith("from=198.51.100.13 is not an address of this host")


@pytest.mark.usefixtures("seed")
@pytest.mark.parametrize("args,message", [
    ({"dst": "203.0.113.0/24"}, "dst='203.0.113.0/24': not an IPv4/IPv6 address"),
    ({"dst": "203.0.113.12", "iif": "nope0"}, "iif='nope0': no such interface"),
    ({"dst": "203.0.113.12", "mark": "banana"}, "mark='banana': must be 0-4294967295"),
    ({"dst": "203.0.113.12", "dport": "80"}, "sport/dport: need proto tcp, udp or sctp"),
    ({"lookups": [{"dst": "203.0.113.12", "color": "red"}]}, "lookups.color. Supported parameters include"),
    ({"lookups": [{"dst": "203.0.113.12"}], "dst": "192.0.2.1"}, "parameters are mutually exclusive: lookups|dst"),
    ({"rules": False}, "dst: required"),
])
def test_bad_lookups_fail_clearly(args, message):
    result = module("node", "packetpath.linux.route_lookup", args)
    assert result["_status"] == "FAILED" and message in result["msg"], result["_stdout"]


HIDE_PYROUTE2 = """---
- name: route_lookup on a host where pyroute2 cannot be imported
  hosts: node
  gather_facts: false
  environment:
    PYTHONPATH: "{{ hide }}"
  tasks:
    - name: Look up with engine=auto
      packetpath.linux.route_lookup:
        lookups: "{{ lookup('ansible.builtin.file', lookups_file) | from_json }}"
      register: found
    - name: Keep the answers
      ansible.builtin.copy:
        content: "{{ found | to_json }}"
        dest: "{{ answers_file }}"
        mode: "0600"
"""


def route_lookup_without_pyroute2(tmp_path, lookups):
    """engine=auto on the node with a `pyroute2` first on its path that cannot be imported: the `ip -j` fallback."""
    hide = tmp_path / "hide"
    (hide / "pyroute2").mkdir(parents=True)
    (hide / "pyroute2" / "__init__.py").write_text("raise ImportError('pyroute2 hidden by the test')\n")
    (tmp_path / "lookups.json").write_text(json.dumps(lookups))
    (tmp_path / "play.yml").write_text(HIDE_PYROUTE2)
    ansible_playbook(str(tmp_path / "play.yml"), "-e", "hide=%s lookups_file=%s answers_file=%s" % (
        hide, tmp_path / "lookups.json", tmp_path / "answers.json"))
    return json.loads((tmp_path / "answers.json").read_text())


@pytest.mark.usefixtures("seed")
def test_answers_equal_ip_route_get_on_random_routes_tables_and_rules(tmp_path):
    rng = random.Random(20261124)
    apply_fib(in_netns, "pp-node", random_fib(rng))
    in_netns("pp-node", ["sysctl", "-qw"] + FORWARDING)
    lookups = random_lookups(rng, 2500)
    reference = json.loads(in_netns("pp-node", ["python3", "-c", LOOKUP_CHILD],
                                    stdin=json.dumps([ip_argv(l) for l in lookups]), timeout=300).stdout)
    through_pyroute2 = route_lookup(lookups=lookups, engine="netlink")
    assert route_lookup(lookups=lookups[:21])["engine"] == "pyroute2"  # engine=auto past 20 lookups
    # The ip engine runs one process per lookup: a tenth of the lookups prove it gives the same answers.
    fallback = route_lookup_without_pyroute2(tmp_path, lookups[::10])
    assert (through_pyroute2["engine"], fallback["engine"]) == ("pyroute2", "ip")
    for engine, answers, expected_set in (("pyroute2", through_pyroute2["answers"], reference),
                                          ("ip", fallback["answers"], reference[::10])):
        assert len(answers) == len(expected_set)
        mismatches = []
        for answer, expected in zip(answers, expected_set):
            ours = (answer["error"]["message"] if "error" in answer else
                    (answer["type"], answer["dev"], answer["gateway"], answer["prefsrc"], str(answer["table"])))
            theirs = (expected["error"].split(": ", 1)[-1] if "error" in expected else
                      (expected.get("type", "unicast"), expected.get("dev"), expected.get("gateway"),
                       expected.get("prefsrc"), str(expected.get("table", "main"))))
            if ours != theirs:
                mismatches.append((answer["lookup"], ours, theirs))
        assert mismatches == [], "%s: %d of %d differ, e.g. %s" % (
            engine, len(mismatches), len(answers), mismatches[:3])
    # Blackhole, unreachable and prohibit routes answer `route get` with an error, not a route.
    kinds = set(a.get("type", "unicast") for a in reference if "error" not in a)
    errors = set(a["error"].split(": ", 1)[-1] for a in reference if "error" in a)
    assert {"unicast", "local", "broadcast"} <= kinds
    assert {"No route to host", "Permission denied", "Invalid argument"} <= errors
    assert sum(1 for a in reference if "error" in a) > 100 and sum(1 for a in reference if "error" not in a) > 1000
