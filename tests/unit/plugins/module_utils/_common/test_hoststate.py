"""The host's records: written atomically through an unpredictable temporary file, and a killed writer's
temporary file removed by the next write (issue #27: one stayed for good)."""

import os
import time

from ansible_collections.packetpath.linux.plugins.module_utils._common import hoststate


def test_a_killed_writers_temporary_file_goes_with_the_next_write(tmp_path):
    stale = tmp_path / ".record-k1ll3d"
    stale.write_text('{"half": ')
    old = time.time() - hoststate.STALE - 1
    os.utime(stale, (old, old))
    fresh = tmp_path / ".record-wr1t1ng"  # another writer, now: left alone
    fresh.write_text("{")
    hoststate.write(str(tmp_path / "flow.json"), {"pid": 1})
    assert sorted(os.listdir(tmp_path)) == [".record-wr1t1ng", "flow.json"]
    assert hoststate.read(str(tmp_path / "flow.json")) == {"pid": 1}


def test_the_temporary_name_is_not_the_records_name_plus_a_pid(tmp_path, monkeypatch):
    seen = []
    real = os.rename
    monkeypatch.setattr(hoststate.os, "rename", lambda source, target: (seen.append(source), real(source, target)))
    hoststate.write(str(tmp_path / "flow.json"), {})
    name = os.path.basename(seen[0])
    assert name.startswith(hoststate.TEMPORARY) and str(os.getpid()) not in name
