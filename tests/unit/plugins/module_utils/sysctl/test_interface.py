"""interface_sysctl state=present never half-applies (issue #27: with a read-only key the file was written and the
runtime was not, and nothing said changed). On a /proc/sys tree in a temp directory, laid out as the kernel's."""

import errno
import os

import pytest

from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import HostError
from ansible_collections.packetpath.linux.plugins.module_utils.sysctl import conf, interface


@pytest.fixture(name="task")
def rp_filter_task(tmp_path, monkeypatch):
    for name in ("all", "default", "eth0"):
        directory = tmp_path / "net" / "ipv4" / "conf" / name
        directory.mkdir(parents=True)
        (directory / "rp_filter").write_text("1\n")
        (directory / "forwarding").write_text("0\n")
    monkeypatch.setattr(conf, "PROC_CONF", str(tmp_path / "net" / "%s" / "conf"))
    path = str(tmp_path / "etc" / "90-packetpath.conf")
    os.makedirs(os.path.dirname(path))
    return interface.InterfaceSettings(["all", "eth0"], {"rp_filter": 2}, path)


def test_a_key_that_cannot_be_set_at_runtime_changes_nothing(task, monkeypatch):
    read_only = conf.conf_path("ipv4", "eth0", "rp_filter")  # as access(2) answers on a read-only /proc/sys
    monkeypatch.setattr(interface.os, "access", lambda path, mode: path != read_only)
    with pytest.raises(HostError, match=r"^net.ipv4.conf.eth0.rp_filter: cannot be set at runtime here .*; nothing was "
                                        r"changed$"):
        interface.configure(task, "present", "fail", check_mode=False)
    assert not os.path.exists(task.path) and conf.read("ipv4", "all", "rp_filter") == 1


def test_a_runtime_write_that_fails_puts_back_what_was_changed_before_it(task, monkeypatch):
    real = conf.write

    def refuse_eth0(family, name_of_interface, name, value):
        if name_of_interface == "eth0":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        real(family, name_of_interface, name, value)

    monkeypatch.setattr(conf, "write", refuse_eth0)
    with pytest.raises(HostError, match="eth0.rp_filter: cannot be set to 2: Read-only file system; what was changed "
                                        "before it was put back"):
        interface.configure(task, "present", "fail", check_mode=False)
    assert not os.path.exists(task.path) and conf.read("ipv4", "all", "rp_filter") == 1


@pytest.mark.parametrize("linked", ["file", "directory"])
def test_a_linked_file_or_directory_is_never_written_through(task, tmp_path, linked):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "90-packetpath.conf").write_text("kernel.panic = 1\n")
    if linked == "file":
        os.symlink(str(elsewhere / "90-packetpath.conf"), task.path)
    else:
        os.rmdir(os.path.dirname(task.path))
        os.symlink(str(elsewhere), os.path.dirname(task.path))
    link = task.path if linked == "file" else os.path.dirname(task.path)
    with pytest.raises(HostError, match="^%s is a symbolic link .*; nothing was changed$" % link):
        interface.configure(task, "present", "fail", check_mode=False)
    assert (elsewhere / "90-packetpath.conf").read_text() == "kernel.panic = 1\n"
    assert sorted(os.listdir(elsewhere)) == ["90-packetpath.conf"] and conf.read("ipv4", "all", "rp_filter") == 1
