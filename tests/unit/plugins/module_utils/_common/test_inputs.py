"""Option values the argument spec cannot refuse, refused before anything is touched, naming the option
(issue #27: a NUL byte ended in a traceback, a 300-byte file name failed only after its directories were made, and
text in place of a host's result crashed the controller modules)."""

import pytest

from ansible_collections.packetpath.linux.plugins.module_utils._common import inputs
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError
from ansible_collections.packetpath.linux.plugins.module_utils.sysctl import dropin


@pytest.mark.parametrize("value, why", [("/var/log/kern\0.log", "a path cannot hold a NUL byte"),
                                        ("/tmp/" + "x" * 256, "a name in the path is longer than 255 bytes")])
def test_a_path_the_system_cannot_take_is_refused_by_name(value, why):
    with pytest.raises(OptionError) as refused:
        inputs.check_paths({"path": value, "stop_file": None}, ("path", "stop_file"))
    assert str(refused.value) == "path=%r: %s; nothing was changed" % (value, why)
    inputs.check_paths({"path": "/tmp/" + "x" * 255}, ("path",))  # the longest name a directory holds


def test_a_persistent_file_too_long_is_refused_before_its_directory_is_made():
    with pytest.raises(OptionError, match="persistent_file=.*longer than 255 bytes"):
        dropin.persistent_path("x" * 300 + ".conf", "pp-node")


def test_text_where_a_hosts_result_belongs_is_refused():
    with pytest.raises(OptionError, match=r"^hosts=\{'node': 'abc'\}: each host's value is a registered module result"):
        inputs.check_per_host({"hosts": {"gone": None, "node": "abc"}}, ("hosts",))
    with pytest.raises(OptionError, match=r"^changes=\{'node': 'abc'\}: each host's value is a list"):
        inputs.check_per_host({"changes": {"node": "abc"}}, ("changes",), kind=list)
    inputs.check_per_host({"changes": {"node": [{"key": "rp_filter"}]}}, ("changes",), kind=list)


@pytest.mark.parametrize("value, option, why", [
    ({"node": {"packets": "x"}}, "hosts.node.packets", "a list of mappings"),
    ({"node": {"packets": [5]}}, "hosts.node.packets", "a list of mappings"),
    ({"node": {"finding": 5}}, "hosts.node.finding", "a mapping"),
    ({"node": {"capture": "x"}}, "hosts.node.capture", "a mapping"),
])
def test_a_host_s_result_whose_parts_are_of_another_kind_is_refused_by_the_part(value, option, why):
    """Issue #42: each ended in a traceback inside diagnosis_report's verdicts."""
    fields = {"packets": (list, dict), "finding": (dict, None), "capture": (dict, None)}
    with pytest.raises(OptionError) as refused:
        inputs.check_per_host({"hosts": value}, ("hosts",), fields=fields)
    part = option.rsplit(".", 1)[1]
    assert str(refused.value) == "%s=%r: %s, as the module registers it; nothing was changed" % (
        option, value["node"][part], why)
    inputs.check_per_host({"hosts": {"node": {"packets": [], "finding": None}}}, ("hosts",), fields=fields)


def test_an_audit_s_checks_without_their_status_are_refused():
    fields = {"checks": (list, dict, ("name", "status", "findings"))}
    with pytest.raises(OptionError, match=r"^hosts\.node\.checks='x': a list of mappings with name, status, findings"):
        inputs.check_per_host({"hosts": {"node": {"checks": "x"}}}, ("hosts",), fields=fields)
    with pytest.raises(OptionError, match=r"^hosts\.node\.checks=\[\{'name': 'rp_filter'\}\]: a list of mappings"):
        inputs.check_per_host({"hosts": {"node": {"checks": [{"name": "rp_filter"}]}}}, ("hosts",), fields=fields)
