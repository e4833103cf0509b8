"""A mixed fleet (issue #38): hosts of Debian 11, 12 and 13 in one lab, each running its sshd, Python, iptables, nft,
iproute2 and pyroute2 from its own release's root (tests/lab/pplab/roots.py). preflight on each says what it found,
and the seed's diagnosis is `make demo`'s on each release. (Every incident lab runs on a mixed fleet too, without
the kernel's drop reasons: test_incidents.py.)
"""

import pytest
from labtools import lab, module, module_on
from test_incidents import OLD_PYROUTE2, diagnose

# What each release ships (Debian's packages, as its root was built): what preflight must find there.
SHIPPED = {"debian11": {"python": "3.9.2", "iptables": "1.8.7", "pyroute2": "0.5.14"},
           "debian12": {"python": "3.11.2", "iptables": "1.8.9", "pyroute2": "0.7.2"},
           "debian13": {"python": "3.13.5", "iptables": "1.8.11", "pyroute2": "0.7.7"}}
ROTATED = {"client": "debian11", "router": "debian12", "server": "debian13"}  # `--userspace rotate`, in host order
# `make demo`'s probe (the Makefile's DEMO_ARGS): the seed's client to the node's data address, port 8081.
SEED_PROBE = {"dst": "203.0.113.12", "dport": 8081, "probe_from": "client"}


def test_preflight_finds_each_host_s_own_release_and_an_old_pyroute2_is_not_used(lab_down_after):
    lab("up", "incidents/forward-drop", "--userspace", "rotate")
    surveyed = module_on(list(ROTATED), "packetpath.linux.preflight", {})
    for host, release in ROTATED.items():
        found = surveyed[host]
        # Python by its minor release: a Debian point release may move its patch level.
        shipped = dict(SHIPPED[release], python=SHIPPED[release]["python"].rsplit(".", 1)[0])
        assert {"python": found["python"].rsplit(".", 1)[0], "iptables": found["iptables"]["version"],
                "pyroute2": found["pyroute2"]} == shipped, (host, found)
        assert found["problems"] == [], (host, found["problems"])
    assert surveyed["client"]["pyroute2_unsupported"] == OLD_PYROUTE2
    # A batch that auto would give pyroute2 goes through `ip -j` there, and says why; netlink is refused by name.
    lookups = {"lookups": [{"dst": "198.18.20.%d" % last} for last in range(2, 32)]}
    batch = module("client", "packetpath.linux.route_lookup", lookups)
    assert (batch["engine"], batch["engine_reason"], len(batch["answers"])) == ("ip", OLD_PYROUTE2, 30), batch
    refused = module("client", "packetpath.linux.route_lookup", {"dst": "198.18.20.2", "engine": "netlink"})
    assert refused["_status"] == "FAILED" and \
        refused["msg"] == "engine=netlink: %s; use engine=auto or engine=ip" % OLD_PYROUTE2, refused
    assert module("server", "packetpath.linux.route_lookup", lookups)["engine"] == "pyroute2"


@pytest.mark.parametrize("release", ["debian11", "debian13"])  # debian12, this machine's own: `make demo`'s
def test_the_seed_incident_on_each_release(release, tmp_path, lab_down_after):
    lab("up", "seed", "--userspace", "client=%s,node=%s" % (release, release))
    output, report = diagnose(tmp_path, SEED_PROBE, "-e", "packetpath_drop_reasons=never",
                              "-e", "packetpath_trace_hosts=client:node")
    assert (report["verdict"]["culprit"], report["verdict"]["cause"]) == ("node", "rp_filter"), output
    assert "client \u2192 node \u2717" in report["verdict"]["line"], report["verdict"]["line"]
