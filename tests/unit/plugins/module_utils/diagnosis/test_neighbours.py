"""The wait for neighbours still being resolved, on the router of incidents/neighbour-failed as `ip -j neigh` showed
it in the lab: 0.5 s after the client's SYN (its next hop INCOMPLETE), then after the kernel gave up (FAILED)
(tests/unit/fixtures/routing/, `make fixtures ONLY=neighbours`). Only the clock is the test's."""

import json

import pytest
from recorded import fixture_path

from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis.evidence import neighbours
from ansible_collections.packetpath.linux.plugins.module_utils.routing.iproute_cli import IpCommand
from ansible_collections.packetpath.linux.plugins.module_utils.routing.rt_tables import BUILT_IN, RtTables


@pytest.fixture(scope="module")
def recorded():
    with open(fixture_path("routing", "neighbour-failed-router-neigh.json"), encoding="utf-8") as handle:
        return json.load(handle)


class Kernel:
    """`ip -j neigh show` answering from the tables recorded while the router asked, `asking` dumps long (both
    families are one dump each), then from the table after it gave up; and a clock that its sleeps move."""

    def __init__(self, recorded, asking):
        self.recorded, self.asking, self.now, self.dumps = recorded, asking, 100.0, 0

    def which(self, name):
        return "/usr/sbin/" + name

    def run(self, argv, data=None):
        family = "ipv6" if "-6" in argv else "ipv4"
        table = self.recorded["ip_neigh_resolving" if self.dumps < 2 * self.asking else "ip_neigh"][family]
        self.dumps += 1
        return 0, json.dumps(table), ""

    def sleep(self, seconds):
        self.now += seconds

    def clock(self):
        return self.now


def settle(recorded, monkeypatch, asking, proc):
    names = {link["ifindex"]: link["ifname"] for link in recorded["links"]}
    monkeypatch.setattr("socket.if_nametoindex", {name: index for index, name in names.items()}.__getitem__)
    kernel = Kernel(recorded, asking)
    found = neighbours.settle(IpCommand(kernel, RtTables(dict(BUILT_IN))), names, proc=str(proc),
                              clock=kernel.clock, sleep=kernel.sleep)
    return found, kernel


def neigh_settings(tmp_path, dev, **values):
    for name, value in values.items():
        path = tmp_path / "ipv4" / "neigh" / dev / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("%s\n" % value)
    return tmp_path


def within_a_poll_after(seconds, bound):
    """The wait looks at the table every POLL seconds: it ends at the first look past its bound."""
    return bound - 1e-6 <= seconds <= bound + neighbours.POLL + 1e-6


def test_the_recording_holds_the_next_hop_incomplete_then_failed(recorded):
    states = {table: {entry["dst"]: entry["state"] for entry in recorded[table]["ipv4"] if entry["dev"] == "eth1"}
              for table in ("ip_neigh_resolving", "ip_neigh")}
    assert states["ip_neigh_resolving"]["198.18.20.9"] == ["INCOMPLETE"]
    assert states["ip_neigh"]["198.18.20.9"] == ["FAILED"]


def test_the_wait_ends_when_the_kernel_gives_up_on_the_next_hop(recorded, monkeypatch, tmp_path):
    found, kernel = settle(recorded, monkeypatch, asking=20, proc=tmp_path)
    assert found["resolved"] is True
    assert found["entries"] == [{"family": "ipv4", "dev": "eth1", "address": "198.18.20.9", "state": "failed"}]
    assert found["seconds"] == pytest.approx(20 * neighbours.POLL)
    assert kernel.dumps == 2 * 21  # 20 readings while it asked, one after


def test_nothing_is_waited_for_where_no_neighbour_is_being_asked_for(recorded, monkeypatch, tmp_path):
    found, kernel = settle(recorded, monkeypatch, asking=0, proc=tmp_path)
    assert found == {"seconds": 0, "resolved": True, "entries": []}
    assert kernel.dumps == 2


def test_the_wait_lasts_at_most_as_long_as_the_device_asks_for_a_neighbour(recorded, monkeypatch, tmp_path):
    # 5 probes 0.2 s apart on eth1: 1 s, plus the margin; the kernel (recorded) still asking long after.
    proc = neigh_settings(tmp_path, "eth1", mcast_solicit=4, app_solicit=1, retrans_time_ms=200)
    found, _kernel = settle(recorded, monkeypatch, asking=10000, proc=proc)
    assert found["resolved"] is False
    assert within_a_poll_after(found["seconds"], 1.0 + neighbours.MARGIN)


def test_the_default_settings_bound_a_device_without_its_own(recorded, monkeypatch, tmp_path):
    proc = neigh_settings(tmp_path, "default", mcast_solicit=3, app_solicit=0, retrans_time_ms=1000)
    found, _kernel = settle(recorded, monkeypatch, asking=10000, proc=proc)
    assert within_a_poll_after(found["seconds"], 3.0 + neighbours.MARGIN)
    assert neighbours.longest_resolution("ipv4", "eth1", str(proc)) == 3.0


def test_a_device_asking_longer_than_the_longest_wait_is_cut_at_it(recorded, monkeypatch, tmp_path):
    proc = neigh_settings(tmp_path, "eth1", mcast_solicit=30, app_solicit=0, retrans_time_ms=1000)
    found, _kernel = settle(recorded, monkeypatch, asking=10000, proc=proc)
    assert found["resolved"] is False
    assert within_a_poll_after(found["seconds"], neighbours.LONGEST_WAIT)
