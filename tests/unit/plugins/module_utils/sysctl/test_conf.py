"""The sysctl engine: validation, the kernel's rules for effective values, our sysctl.d file, martian lines."""

import pytest

from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError
from ansible_collections.packetpath.linux.plugins.module_utils.sysctl import conf, dropin, martians


@pytest.mark.parametrize("key,all_value,own,forwarding,expected", [
    ("rp_filter", 1, 2, None, 2), ("rp_filter", 2, 1, None, 2), ("rp_filter", 0, 1, None, 1),
    ("rp_filter", 1, 0, None, 1),  # strict on all wins over off on the interface: the seed's trap
    ("log_martians", 1, 0, None, 1), ("log_martians", 0, 0, None, 0),
    ("accept_source_route", 1, 0, None, 0), ("accept_source_route", 1, 1, None, 1),
    ("accept_redirects", 1, 0, 1, 0), ("accept_redirects", 1, 0, 0, 1),
    ("forwarding", 0, 1, None, 1), ("ipv6.forwarding", 0, 1, None, 1),
])
def test_effective_value_follows_the_kernel(key, all_value, own, forwarding, expected):
    assert conf.effective(key, all_value, own, forwarding) == expected


@pytest.mark.parametrize("settings,message", [
    ({"rp_filter": 3}, "settings.rp_filter=3: must be one of 0, 1, 2"),
    ({"log_martians": 2}, "settings.log_martians=2: must be one of 0, 1"),
    ({"rp_filter": True}, "settings.rp_filter=True"),
    ({"arp_ignore": 4}, "settings.arp_ignore=4: must be one of 0, 1, 2, 3, 8"),
    ({"arp_notify": 1}, "'arp_notify' is not a conf key this module knows; known: accept_local"),
    ({}, "settings={}: give a mapping"),
])
def test_bad_settings_name_the_option_and_value(settings, message):
    with pytest.raises(OptionError) as error:
        conf.check_settings(settings)
    assert message in str(error.value)


def test_expect_takes_lists():
    assert conf.check_settings({"rp_filter": [0, "2"], "log_martians": 1}, "expect", allowed_lists=True) == {
        "rp_filter": [0, 2], "log_martians": [1]}


@pytest.mark.parametrize("name", ["eth0/1", "..", ".", "eth 0", "a" * 16, "", "eth0\n"])
def test_bad_interface_names(name):
    with pytest.raises(OptionError) as error:
        conf.check_interface(name)
    assert repr(name) in str(error.value)


def test_dots_in_interface_names():
    assert conf.sysctl_key("ipv4", "eth0.100", "rp_filter") == "net.ipv4.conf.eth0/100.rp_filter"
    assert conf.conf_path("ipv4", "eth0.100", "rp_filter") == "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"


def test_globs_expand_to_existing_interfaces_and_names_can_be_missing():
    concrete, missing = conf.expand(["all", "*-srv", "eth9"], ["a-srv", "b-srv", "lo", "mgmt0"])
    assert concrete == ["all", "a-srv", "b-srv"] and missing == ["eth9"]


def test_our_file_changes_only_our_keys():
    text = ("# local note\nnet.ipv4.conf.all.rp_filter = 1\nnet.ipv4.ip_forward = 1\n"
            "net.ipv4.conf.b-srv.rp_filter=1\n")
    after = dropin.updated_file(text, {"net.ipv4.conf.b-srv.rp_filter": "2", "net.ipv4.conf.*.log_martians": "1"},
                                set())
    assert after == ("# local note\nnet.ipv4.conf.all.rp_filter = 1\nnet.ipv4.ip_forward = 1\n"
                     "net.ipv4.conf.b-srv.rp_filter = 2\nnet.ipv4.conf.*.log_martians = 1\n")
    gone = dropin.updated_file(after, {}, {"net.ipv4.conf.b-srv.rp_filter", "net.ipv4.conf.*.log_martians"})
    assert "b-srv" not in gone and "ip_forward = 1" in gone and "# local note" in gone
    assert dropin.file_values(after)["net.ipv4.conf.*.log_martians"] == "1"


def test_a_persistent_file_name_with_a_control_character_is_refused():
    # Issue #42: a line break in the name was accepted, and the file written under it.
    with pytest.raises(OptionError, match=r"persistent_file='x\\ny.conf': a file name cannot hold a control character"):
        dropin.persistent_path("x\ny.conf", None)


def test_persistent_path_for_a_named_namespace():
    assert dropin.persistent_path("90-x.conf", None) == "/etc/sysctl.d/90-x.conf"
    assert dropin.persistent_path("90-x.conf", "pp-node") == "/etc/netns/pp-node/sysctl.d/90-x.conf"
    for bad in ("../x.conf", "x.txt", "sub/x.conf"):
        with pytest.raises(OptionError):
            dropin.persistent_path(bad, None)


def test_martian_lines_recorded_in_the_lab(fixture_text):
    lines = fixture_text("martians/seed-node-dmesg.txt").splitlines()
    found = martians.parse(lines)
    assert found == [{"kind": "source", "source": "198.51.100.13", "destination": "203.0.113.12", "device": "b-srv",
                      "count": 2, "first_uptime": 9645.821891, "last_uptime": 9646.844272}]
    assert martians.parse(lines, since_uptime=9646.0)[0]["count"] == 1
    assert martians.parse(lines, devices={"a-srv"}) == []
