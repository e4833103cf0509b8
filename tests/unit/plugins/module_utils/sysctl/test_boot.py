"""What the boot writes: sysctl.d files in systemd-sysctl's order, plain keys over globs, exclusions."""

import os

import pytest

from recorded import FIXTURES

from ansible_collections.packetpath.linux.plugins.module_utils.sysctl import boot
from ansible_collections.packetpath.linux.plugins.module_utils.sysctl.boot import BootConfig


DEBIAN = os.path.join(FIXTURES, "sysctl", "debian12")
OURS = os.path.join(FIXTURES, "sysctl", "90-packetpath-interfaces.conf")


@pytest.fixture
def debian_dirs(monkeypatch):
    """The directories and /etc/sysctl.conf of the recorded Debian 12 machine."""
    monkeypatch.setattr(boot, "DIRECTORIES", (
        os.path.join(DEBIAN, "etc", "sysctl.d"), "/nonexistent/run/sysctl.d", "/nonexistent/usr/local/lib/sysctl.d",
        os.path.join(DEBIAN, "usr", "lib", "sysctl.d"), "/nonexistent/lib/sysctl.d"))
    monkeypatch.setattr(boot, "SYSCTL_CONF", os.path.join(DEBIAN, "etc", "sysctl.conf"))


def test_debian_files_in_boot_order_and_sysctl_conf_once(debian_dirs):
    files = boot.config_files(boot.DIRECTORIES[0])
    assert [os.path.basename(path) for path in files] == ["50-pid-max.conf", "99-protect-links.conf",
                                                          "99-sysctl.conf"]
    # Debian's link to /etc/sysctl.conf is that file: it is not read a second time at the end.
    assert os.path.realpath(files[-1]) == os.path.realpath(boot.SYSCTL_CONF)


def test_sysctl_conf_comes_last_when_a_namespace_has_its_own_sysctl_d(debian_dirs, tmp_path):
    # `ip netns exec` binds /etc/netns/<ns>/sysctl.d over /etc/sysctl.d: Debian's link is not there.
    own = tmp_path / "sysctl.d"
    own.mkdir()
    with open(OURS) as source:
        (own / "90-packetpath-interfaces.conf").write_text(source.read())
    files = boot.config_files(str(own))
    assert [os.path.basename(path) for path in files] == ["50-pid-max.conf", "90-packetpath-interfaces.conf",
                                                          "99-protect-links.conf", "sysctl.conf"]


def test_commented_debian_lines_write_nothing(debian_dirs):
    config = BootConfig.from_files(boot.config_files(boot.DIRECTORIES[0]))
    # Debian's sysctl.conf carries `#net.ipv4.conf.all.rp_filter=1`, commented out.
    assert config.value("ipv4", "all", "rp_filter") is None
    assert config.lookup("kernel.pid_max")[0] == "4194304"
    assert config.lookup("fs.protected_regular")[0] == "2"


def test_our_file_with_a_name_and_a_glob():
    config = BootConfig.from_files([OURS])
    assert config.value("ipv4", "eth1", "rp_filter") == ("2", OURS)
    assert config.value("ipv4", "cni0", "log_martians") == ("1", OURS)
    assert config.value("ipv4", "mgmt0", "rp_filter") is None


def test_a_later_file_wins_and_a_plain_key_beats_any_glob():
    with open(OURS) as source:
        ours = source.read()
    # The example of sysctl.d(5): a glob for every interface, conf/all taken out of it.
    later = "net.ipv4.conf.*.rp_filter = 1\n-net.ipv4.conf.all.rp_filter\nnet/ipv4/conf/eth0.100/rp_filter = 0\n"
    config = BootConfig([("/etc/sysctl.d/90-packetpath-interfaces.conf", ours), ("/etc/sysctl.d/95-site.conf", later)])
    assert config.value("ipv4", "cni0", "rp_filter") == ("1", "/etc/sysctl.d/95-site.conf")  # later glob
    assert config.value("ipv4", "eth1", "rp_filter")[0] == "2"  # our plain key beats the later glob
    assert config.value("ipv4", "all", "rp_filter") is None  # excluded from the glob
    assert config.value("ipv4", "eth0.100", "rp_filter")[0] == "0"  # slash form, dot inside the name


@pytest.mark.parametrize("key,dotted", [
    ("net/ipv4/conf/eth0.100/rp_filter", "net.ipv4.conf.eth0/100.rp_filter"),
    ("net.ipv4.conf.eth0/100.rp_filter", "net.ipv4.conf.eth0/100.rp_filter"),
    ("kernel/pid_max", "kernel.pid_max"),
])
def test_either_separator(key, dotted):
    assert boot.normalize(key) == dotted
