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
