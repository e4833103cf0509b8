"""The nf_log binding of a legacy trace, on files standing in for /proc (their content as this machine's kernel
gives it): what is bound is recorded before it is written, so a kill in between never leaves a binding nobody
puts back (issue #27)."""

import pytest

from ansible_collections.packetpath.linux.plugins.module_utils._common import hoststate
from ansible_collections.packetpath.linux.plugins.module_utils.trace import nflog

# /proc/net/netfilter/nf_log of a lab namespace (nfnetlink_log loaded, nothing bound), as read on the lab machine.
LOGGERS = """ 0 NONE (nfnetlink_log)
 2 NONE (nf_log_ipv4,nfnetlink_log)
10 NONE (nf_log_ipv6,nfnetlink_log)
"""


class Killed(BaseException):
    """The module killed where it writes the binding."""


@pytest.fixture(name="proc")
def fake_proc(tmp_path, monkeypatch):
    (tmp_path / "nf_log").write_text(LOGGERS)
    for pf in (2, 10):
        (tmp_path / str(pf)).write_text("NONE\n")
    monkeypatch.setattr(nflog, "LOGGERS", str(tmp_path / "nf_log"))
    monkeypatch.setattr(nflog, "NF_LOG", str(tmp_path / "%d"))
    monkeypatch.setattr(hoststate, "ROOT", str(tmp_path / "run"))
    return tmp_path


def test_a_kill_at_the_binding_leaves_a_record_that_puts_it_back(proc, monkeypatch):
    def killed(_path, _value):
        raise Killed()

    monkeypatch.setattr(nflog, "_write", killed)
    with pytest.raises(Killed):
        nflog.bind(None, ["ipv4", "ipv6"], check_mode=False)
    assert sorted(nflog.changed_bindings()) == ["ipv4", "ipv6"], "the binding must be recorded before it is written"
    monkeypatch.undo()
    monkeypatch.setattr(nflog, "NF_LOG", str(proc / "%d"))
    monkeypatch.setattr(hoststate, "ROOT", str(proc / "run"))
    assert nflog.restore(["ipv4", "ipv6"], check_mode=False) == {"ipv4": ["NONE", "NONE"], "ipv6": ["NONE", "NONE"]}
    assert nflog.changed_bindings() == []


def test_bind_then_restore_puts_back_what_was_found(proc):
    changes, logger, notes = nflog.bind(None, ["ipv4"], check_mode=False)
    assert (changes, logger, notes) == ({"ipv4": ["NONE", "nfnetlink_log"]}, "nflog", [])
    assert (proc / "2").read_text() == "nfnetlink_log" and (proc / "10").read_text() == "NONE\n"
    assert nflog.restore(["ipv4"], check_mode=False) == {"ipv4": ["nfnetlink_log", "NONE"]}
    assert (proc / "2").read_text() == "NONE" and nflog.changed_bindings() == []
