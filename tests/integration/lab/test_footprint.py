"""A test's footprint on the machine goes with it, whatever the machine had before: the scratch fixture run in a
private mount namespace whose /etc (an overlay over the machine's) and /run (a tmpfs) have no /etc/netns and no
/run/packetpath, as on a machine that never ran the project, then again with both present and holding something of
someone else's. The machine's own directories are never touched: every change lands in the overlay's upper layer
or the tmpfs, which go with the mount namespace."""

import json
import os
import subprocess
import sys

import pytest
from labtools import ENV, ROOT

SCRATCH = "ppscratch-footprint"  # not "pp-": lab-down's and the guard's names

# Inside `unshare --mount --propagation private`. argv: a work directory, "fresh" or "present", build/collections,
# the scratch namespace's name.
CHILD = r"""
import json, os, subprocess, sys
work, machine = sys.argv[1], sys.argv[2]
subprocess.run(["mount", "-t", "tmpfs", "pp-footprint", work], check=True)
os.makedirs(work + "/upper"), os.makedirs(work + "/work")
subprocess.run(["mount", "-t", "overlay", "pp-footprint-etc", "-o",
                "lowerdir=/etc,upperdir=%s/upper,workdir=%s/work" % (work, work), "/etc"], check=True)
subprocess.run(["mount", "-t", "tmpfs", "pp-footprint-run", "/run"], check=True)
mounts = {line.split()[1]: line.split()[2] for line in open("/proc/self/mounts")}
if (mounts.get("/etc"), mounts.get("/run")) != ("overlay", "tmpfs"):
    raise SystemExit("not in a mount namespace of our own: refusing to touch /etc/netns")
if os.path.isdir("/etc/netns"):
    subprocess.run(["rm", "-rf", "/etc/netns"], check=True)  # a whiteout in the overlay's upper layer
if machine == "present":  # a machine with both, each holding something of someone else's
    os.makedirs("/etc/netns/theirs"), os.makedirs("/run/packetpath/theirs")
from labtools import in_netns, scratch
code = ("import sys; sys.path.insert(0, sys.argv[1]); from ansible_collections.packetpath.linux.plugins.module_utils."
        "_common import hoststate; from ansible_collections.packetpath.linux.plugins.module_utils.trace import expiry;"
        " hoststate.write(expiry.record_path('0123abcd'), {'flow_id': '0123abcd', 'pid': 1}); print('ok')")
with scratch(sys.argv[4], sysctl_d=True) as netns:
    during = {"etc_netns": os.path.isdir("/etc/netns/%s/sysctl.d" % netns),
              "records": in_netns(netns, [sys.executable, "-c", code, sys.argv[3]]).stdout.strip()}
found = lambda path: sorted(os.listdir(path)) if os.path.isdir(path) else None
print(json.dumps({"during": during, "etc_netns": found("/etc/netns"), "run_packetpath": found("/run/packetpath")}))
"""


@pytest.mark.parametrize("machine", ["fresh", "present"])
def test_a_scratch_namespace_leaves_the_machine_as_it_found_it(machine, tmp_path):
    env = dict(ENV, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "tests", "integration"), ENV["PYTHONPATH"]]))
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-c", CHILD,
                           str(tmp_path), machine, os.path.join(ROOT, "build", "collections"), SCRATCH],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["during"] == {"etc_netns": True, "records": "ok"}, found  # the scratch really made both
    if machine == "fresh":
        assert (found["etc_netns"], found["run_packetpath"]) == (None, None), found
    else:
        assert (found["etc_netns"], found["run_packetpath"]) == (["theirs"], ["theirs"]), found
