"""One check of every module's netns option: spaces, empty strings, FIFOs and plain files are refused by name,
before anything is opened or written (a FIFO as netns used to hang; " /proc/PID/ns/net" used to pass as a name)."""

import os

import pytest
from ansible_collections.packetpath.linux.plugins.module_utils._common import netns
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError


@pytest.mark.parametrize("value, reason", [
    ("", "empty"),
    ("   ", "empty"),
    ("rel1 ", "has spaces around it"),
    (" /proc/self/ns/net", "has spaces around it"),
    ("rel 1", "not a namespace name, a path or a PID"),
    ("../x", "not a namespace name, a path or a PID"),
    ("/nonexistent/ns", "does not exist"),
])
def test_bad_values_are_refused_by_name(value, reason):
    with pytest.raises(OptionError) as caught:
        netns.resolve(value)
    assert caught.value.option == "netns" and reason in str(caught.value)
    with pytest.raises(OptionError):
        netns.named(value)
    with pytest.raises(OptionError):
        netns.enter(value)


def test_a_fifo_or_a_plain_file_is_not_a_namespace(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    plain = tmp_path / "plain"
    plain.write_text("x")
    for path in (fifo, plain):
        with pytest.raises(OptionError) as caught:
            netns.resolve(str(path))
        assert "is not a namespace file" in str(caught.value)


def test_a_namespace_file_a_pid_and_none_pass():
    assert netns.resolve("/proc/self/ns/net") == "/proc/self/ns/net"
    assert netns.resolve(str(os.getpid())) == "/proc/%d/ns/net" % os.getpid()
    assert netns.named(None) is None and netns.named(str(os.getpid())) is None
    assert netns.enter(None) is None
