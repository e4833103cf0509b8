"""packetpath.linux.interface_sysctl on the seed lab's node, over SSH: runtime, our sysctl.d file, audit, martians."""

import glob
import hashlib
import os

import pytest
from ansible_collections.packetpath.linux.plugins.module_utils.sysctl import boot
from labtools import connect, in_netns, module

NODE_ETC = "/etc/netns/pp-node/sysctl.d"  # the node's /etc/sysctl.d (ip netns exec binds it there)
OUR_FILE = os.path.join(NODE_ETC, "90-packetpath-interfaces.conf")
STRICT = {"net.ipv4.conf.all.rp_filter": "1", "net.ipv4.conf.b-srv.rp_filter": "1", "net.ipv4.conf.a-srv.rp_filter": "1",
          "net.ipv4.conf.all.log_martians": "0", "net.ipv4.conf.b-srv.log_martians": "0"}


def sysctl_module(check=False, diff=False, **args):
    return module("node", "packetpath.linux.interface_sysctl", args, check=check, diff=diff)


def node_value(key):
    return in_netns("pp-node", ["sysctl", "-n", key]).stdout.strip()


def other_files():
    """Every sysctl.d file of the node but ours, with a digest of its content."""
    files = {}
    for path in glob.glob(os.path.join(NODE_ETC, "*")):
        if path != OUR_FILE:
            with open(path, "rb") as handle:
                files[path] = hashlib.sha256(handle.read()).hexdigest()
    return files


@pytest.fixture(autouse=True)
def strict_again(seed):
    """Every test starts from the seed's strict node, with no file of ours."""
    in_netns("pp-node", ["sysctl", "-qw"] + ["%s=%s" % item for item in STRICT.items()])
    if os.path.exists(OUR_FILE):
        os.unlink(OUR_FILE)
    yield


def test_set_loose_mode_now_and_persistently_then_nothing_to_do():
    before_others = other_files()
    result = sysctl_module(interfaces=["all", "b-srv"], settings={"rp_filter": 2}, persistent="present")
    assert result["_status"] == "CHANGED", result["_stdout"]
    assert result["effective"] == {"b-srv": {"rp_filter": 2}}
    assert node_value("net.ipv4.conf.all.rp_filter") == "2" and node_value("net.ipv4.conf.b-srv.rp_filter") == "2"
    assert node_value("net.ipv4.conf.a-srv.rp_filter") == "1"  # not asked for; effective there is max(2, 1) = 2
    with open(OUR_FILE, encoding="utf-8") as handle:
        assert "net.ipv4.conf.all.rp_filter = 2\nnet.ipv4.conf.b-srv.rp_filter = 2\n" in handle.read()
    again = sysctl_module(interfaces=["all", "b-srv"], settings={"rp_filter": 2}, persistent="present")
    assert again["_status"] == "SUCCESS" and again["changed_keys"] == []
    assert other_files() == before_others


def boot_files():
    """The node's own sysctl.d files in the order the boot applies them (the collection's boot-order reader), and
    none of the machine's: those hold keys that are not per network namespace."""
    return [path for path in boot.config_files(NODE_ETC) if path.startswith(NODE_ETC + os.sep)]


def test_the_file_survives_a_reboot_simulation_and_only_ours_changed():
    before_others = other_files()
    sysctl_module(interfaces=["all", "b-srv"], settings={"rp_filter": 2, "log_martians": 1}, persistent="present")
    in_netns("pp-node", ["sysctl", "-qw"] + ["%s=%s" % item for item in STRICT.items()])  # as after a reboot
    assert OUR_FILE in boot_files()
    for path in boot_files():  # what boot applies in the host's namespace, file by file
        in_netns("pp-node", ["sysctl", "-q", "-p", path])
    assert node_value("net.ipv4.conf.b-srv.rp_filter") == "2" and node_value("net.ipv4.conf.all.log_martians") == "1"
    assert other_files() == before_others


def test_audit_finds_drift_made_behind_its_back():
    sysctl_module(interfaces=["b-srv"], settings={"rp_filter": 2}, persistent="present")
    in_netns("pp-node", ["sysctl", "-qw", "net.ipv4.conf.b-srv.rp_filter=1"])
    result = sysctl_module(state="audit", interfaces=["b-srv", "a-srv"], expect={"rp_filter": [0, 2]})
    assert result["_status"] == "SUCCESS"
    assert result["drift"] == [{"interface": "b-srv", "key": "rp_filter", "runtime": 1, "persistent": 2}]
    assert result["compliant"] is False
    assert sorted(o["interface"] for o in result["offenders"]) == ["a-srv", "b-srv"]
    entry = result["interfaces"]["b-srv"]["rp_filter"]
    assert entry == {"all": 1, "default": 1, "interface": 1, "persistent": 2, "effective": 1}


def test_all_outranks_the_interface_in_the_effective_value():
    in_netns("pp-node", ["sysctl", "-qw", "net.ipv4.conf.b-srv.rp_filter=0"])
    result = sysctl_module(state="audit", interfaces=["b-srv"], expect={"rp_filter": 0})
    assert result["interfaces"]["b-srv"]["rp_filter"]["effective"] == 1  # max(all=1, b-srv=0)
    assert result["compliant"] is False


def test_a_glob_sets_existing_interfaces_and_writes_a_glob_line():
    result = sysctl_module(interfaces=["*-srv"], settings={"rp_filter": 2}, persistent="present")
    assert sorted(result["after"]) == ["a-srv", "b-srv"]
    assert node_value("net.ipv4.conf.a-srv.rp_filter") == "2"
    with open(OUR_FILE, encoding="utf-8") as handle:
        assert "net.ipv4.conf.*-srv.rp_filter = 2" in handle.read()
    audit = sysctl_module(state="audit", interfaces=["a-srv"], settings={"rp_filter": 2})
    assert audit["interfaces"]["a-srv"]["rp_filter"]["persistent"] == 2 and audit["compliant"]


def test_a_missing_interface_fails_or_is_written_for_later():
    failed = sysctl_module(interfaces=["vlan0.100"], settings={"rp_filter": 2}, persistent="present")
    assert failed["_status"] == "FAILED" and "vlan0.100 does not exist" in failed["msg"]
    assert "nothing was changed" in failed["msg"] and not os.path.exists(OUR_FILE)
    later = sysctl_module(interfaces=["vlan0.100"], settings={"rp_filter": 2}, persistent="present",
                          missing="persist_only")
    assert later["_status"] == "CHANGED" and later["missing"] == ["vlan0.100"]
    with open(OUR_FILE, encoding="utf-8") as handle:
        assert "net.ipv4.conf.vlan0/100.rp_filter = 2" in handle.read()


def test_check_mode_and_diff_change_nothing():
    result = sysctl_module(check=True, diff=True, interfaces=["all", "b-srv"], settings={"rp_filter": 2},
                           persistent="present")
    assert result["_status"] == "CHANGED"
    assert "-net.ipv4.conf.b-srv.rp_filter = 1" in result["_stdout"]
    assert "+net.ipv4.conf.b-srv.rp_filter = 2" in result["_stdout"]
    assert node_value("net.ipv4.conf.b-srv.rp_filter") == "1" and not os.path.exists(OUR_FILE)


def test_persistent_absent_removes_our_lines_and_then_the_file():
    sysctl_module(interfaces=["b-srv"], settings={"rp_filter": 2, "log_martians": 1}, persistent="present")
    result = sysctl_module(interfaces=["b-srv"], settings={"rp_filter": 2}, persistent="absent")
    with open(OUR_FILE, encoding="utf-8") as handle:
        text = handle.read()
    assert "rp_filter" not in text and "net.ipv4.conf.b-srv.log_martians = 1" in text
    assert result["changed_keys"] == ["file:net.ipv4.conf.b-srv.rp_filter"]
    sysctl_module(interfaces=["b-srv"], settings={"log_martians": 1}, persistent="absent")
    assert not os.path.exists(OUR_FILE)


@pytest.mark.parametrize("args,message", [
    ({"interfaces": ["b-srv"], "settings": {"rp_filter": 3}}, "settings.rp_filter=3: must be one of 0, 1, 2"),
    ({"interfaces": ["b-srv"], "settings": {"ip_forward": 1}}, "'ip_forward' is not a conf key"),
    ({"interfaces": ["b/srv"], "settings": {"rp_filter": 2}}, "interfaces: 'b/srv' is not an interface name"),
    ({"interfaces": [".."], "settings": {"rp_filter": 2}}, "interfaces: '..' is not an interface name"),
    ({"interfaces": ["b srv"], "settings": {"rp_filter": 2}}, "interfaces: 'b srv' is not an interface name"),
    ({"interfaces": ["b-srv"], "settings": {"rp_filter": 2}, "persistent_file": "../passwd"},
     "persistent_file='../passwd'"),
    ({"interfaces": [], "settings": {"rp_filter": 2}}, "interfaces=[]: empty"),
    ({"interfaces": ["b-srv"], "settings": {"rp_filter": 2}, "netns": "pp-node "}, "netns='pp-node ': has spaces"),
    # Issue #42: a time that is no time, a file name with a line break.
    ({"interfaces": ["b-srv"], "settings": {"rp_filter": 2}, "state": "audit", "martians_since": "nan"},
     "martians_since='nan': the marker of trace_rule, or a mapping with uptime"),
    ({"interfaces": ["b-srv"], "settings": {"rp_filter": 2}, "state": "audit", "martians_since": {"uptime": "inf"}},
     "martians_since={'uptime': 'inf'}"),
    ({"interfaces": ["b-srv"], "settings": {"rp_filter": 2}, "persistent": "present", "persistent_file": "x\ny.conf"},
     "persistent_file='x\\ny.conf': a file name cannot hold a control character"),
])
def test_bad_values_change_nothing(args, message):
    result = sysctl_module(**args)
    assert result["_status"] == "FAILED" and message in result["msg"], result["_stdout"]
    assert "nothing was changed" in result["msg"]
    assert node_value("net.ipv4.conf.b-srv.rp_filter") == "1" and not os.path.exists(OUR_FILE)


def test_seed_martians_then_loose_mode_lets_the_connection_through():
    flow = {"proto": "tcp", "dport": "8081", "hooks": ["prerouting"]}
    marker = module("node", "packetpath.linux.trace_rule", flow)["marker"]
    try:
        sysctl_module(interfaces=["all"], settings={"log_martians": 1})
        assert connect("pp-client", "192.0.2.80", 8081, timeout=1.2) == "TimeoutError"
        audit = sysctl_module(state="audit", interfaces=["b-srv"], settings={"log_martians": 1},
                              martians_since=marker)
        records = audit["martians"]
        assert records and records[0]["kind"] == "source" and records[0]["device"] == "b-srv"
        assert (records[0]["source"], records[0]["destination"]) == ("198.51.100.13", "203.0.113.12")
        assert records[0]["count"] >= 1 and records[0]["first_uptime"] >= marker["uptime"]
        sysctl_module(interfaces=["all", "b-srv"], settings={"rp_filter": 2})
        assert connect("pp-client", "192.0.2.80", 8081, timeout=2).startswith("packetpath-lab node")
    finally:
        module("node", "packetpath.linux.trace_rule", {"state": "absent", "all": True})


def test_a_file_that_cannot_be_written_changes_nothing_at_runtime_either():
    """The file is written first, atomically: where it cannot be (here its name is taken by a directory), the
    module fails by name, no runtime value has changed and no temp file is left."""
    os.mkdir(OUR_FILE)
    try:
        before = {key: node_value(key) for key in STRICT}
        listing = sorted(os.listdir(NODE_ETC))
        result = sysctl_module(interfaces=["all", "b-srv"], settings={"rp_filter": 2}, persistent="present")
        assert result["_status"] == "FAILED" and "cannot be written" in result["msg"], result["_stdout"]
        assert "nothing was changed" in result["msg"]
        assert {key: node_value(key) for key in STRICT} == before
        assert sorted(os.listdir(NODE_ETC)) == listing and os.listdir(OUR_FILE) == []
    finally:
        os.rmdir(OUR_FILE)
