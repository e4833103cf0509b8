"""The collection's records on a host belong to one network namespace, also after the kernel gives that
namespace's inode to the next one (it does at once), so a namespace never sees, reports or undoes another's."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from labtools import ROOT, Footprint, in_netns

SCRATCH = "ppscratch-records"  # not "pp-": lab-down's and the guard's names
HOSTSTATE = ("import json, sys; sys.path.insert(0, sys.argv[1])\n"
             "from ansible_collections.packetpath.linux.plugins.module_utils._common import hoststate\n"
             "from ansible_collections.packetpath.linux.plugins.module_utils.trace import expiry\n")
WRITE = HOSTSTATE + ("hoststate.write(expiry.record_path('0123abcd'), {'flow_id': '0123abcd', 'pid': 1})\n"
                     "print(hoststate.namespace_dir())\n")
READ = HOSTSTATE + "print(json.dumps({'dir': hoststate.namespace_dir(), 'flows': expiry.armed_flows()}))\n"


def python_in(netns, code):
    return in_netns(netns, [sys.executable, "-c", code, os.path.join(ROOT, "build", "collections")]).stdout


def inode(netns):
    return os.stat("/run/netns/" + netns).st_ino


def test_a_namespace_given_a_dead_ones_inode_sees_none_of_its_records():
    names, written, footprint = [SCRATCH], None, Footprint()
    subprocess.run(["ip", "netns", "del", SCRATCH], capture_output=True, check=False)
    try:
        subprocess.run(["ip", "netns", "add", SCRATCH], check=True)
        first_inode = inode(SCRATCH)
        written = python_in(SCRATCH, WRITE).strip()
        assert os.path.isfile(os.path.join(written, "expiry", "0123abcd.json"))
        # The namespace goes and its record stays, as when its expiry sleeper was killed.
        subprocess.run(["ip", "netns", "del", SCRATCH], check=True)
        names = []
        # The kernel frees a namespace's inode once its cleanup work has run, and gives the lowest free one: the
        # namespaces that get another (freed earlier by someone else) are held until one gets the dead one's.
        deadline = time.monotonic() + 10
        while not names or inode(names[-1]) != first_inode:
            if time.monotonic() > deadline or len(names) == 20:
                pytest.skip("the kernel did not give the dead namespace's inode again (10 s, 20 namespaces)")
            if names:
                time.sleep(0.05)
            names.append("%s-%d" % (SCRATCH, len(names)))
            subprocess.run(["ip", "netns", "add", names[-1]], check=True)
        seen = json.loads(python_in(names[-1], READ))
        assert seen["dir"] != written and seen["flows"] == [], seen
        # The record is still there: the namespace that owned it is gone, not the record.
        assert os.path.isfile(os.path.join(written, "expiry", "0123abcd.json"))
    finally:
        for name in names + [SCRATCH]:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        if written and written.startswith("/run/packetpath/net-"):
            shutil.rmtree(written, ignore_errors=True)
        footprint.undo()
