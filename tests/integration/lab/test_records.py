"""The collection's records on a host belong to one network namespace, also after the kernel gives that
namespace's inode to the next one (it does at once), so a namespace never sees, reports or undoes another's."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from labtools import ROOT, in_netns

SCRATCH = "ppscratch-records"  # not "pp-": lab-down's and the guard's names
HOSTSTATE = ("import json, sys; sys.path.insert(0, sys.argv[1])\n"
             "from ansible_collections.packetpath.linux.plugins.module_utils._common import hoststate\n"
             "from ansible_collections.packetpath.linux.plugins.module_utils.trace import expiry\n")
WRITE = HOSTSTATE + ("hoststate.write(expiry.record_path('0123abcd'), {'flow_id': '0123abcd', 'pid': 1})\n"
                     "print(hoststate.namespace_dir())\n")
READ = HOSTSTATE + "print(json.dumps({'dir': hoststate.namespace_dir(), 'flows': expiry.armed_flows()}))\n"


def python_in_scratch(code):
    return in_netns(SCRATCH, [sys.executable, "-c", code, os.path.join(ROOT, "build", "collections")]).stdout


def inode():
    return os.stat("/run/netns/" + SCRATCH).st_ino


def test_a_namespace_given_a_dead_ones_inode_sees_none_of_its_records():
    subprocess.run(["ip", "netns", "del", SCRATCH], capture_output=True, check=False)
    written = None
    try:
        subprocess.run(["ip", "netns", "add", SCRATCH], check=True)
        first_inode = inode()
        written = python_in_scratch(WRITE).strip()
        assert os.path.isfile(os.path.join(written, "expiry", "0123abcd.json"))
        # The namespace goes and its record stays, as when its expiry sleeper was killed.
        subprocess.run(["ip", "netns", "del", SCRATCH], check=True)
        # The kernel frees a namespace's inode once its cleanup work has run, then gives the lowest free one.
        deadline = time.monotonic() + 10
        while True:
            subprocess.run(["ip", "netns", "add", SCRATCH], check=True)
            if inode() == first_inode:
                break
            subprocess.run(["ip", "netns", "del", SCRATCH], check=True)
            if time.monotonic() > deadline:
                pytest.skip("the kernel did not give the dead namespace's inode again within 10 s")
            time.sleep(0.1)
        seen = json.loads(python_in_scratch(READ))
        assert seen["dir"] != written and seen["flows"] == [], seen
        # The record is still there: the one namespace that owned it is gone, not the record.
        assert os.path.isfile(os.path.join(written, "expiry", "0123abcd.json"))
    finally:
        subprocess.run(["ip", "netns", "del", SCRATCH], capture_output=True, check=False)
        if written and written.startswith("/run/packetpath/net-"):
            shutil.rmtree(written, ignore_errors=True)
            try:
                os.rmdir("/run/packetpath")
            except OSError:
                pass
