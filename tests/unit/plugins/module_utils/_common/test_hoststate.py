"""The host's records: written atomically through an unpredictable temporary file, and a killed writer's
temporary file removed by the next write (issue #27: one stayed for good)."""

import os
import signal
import subprocess
import sys
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
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda source, target: (seen.append(source), real(source, target)))
    hoststate.write(str(tmp_path / "flow.json"), {})
    name = os.path.basename(seen[0])
    assert name.startswith(hoststate.TEMPORARY) and str(os.getpid()) not in name
    assert oct(os.stat(tmp_path / "flow.json").st_mode & 0o777) == "0o600"  # root's alone, as before


def _sleeper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # pylint: disable=consider-using-with
    return proc, {"pid": proc.pid, "started": hoststate.start_time(proc.pid)}


def test_end_signals_only_the_process_it_recorded_and_returns_once_it_has_ended():
    proc, found = _sleeper()
    try:
        assert hoststate.end(dict(found, started=found["started"] + 1), signal.SIGTERM, 1) is False  # not ours
        assert proc.poll() is None
        assert hoststate.end(found, signal.SIGTERM, 5) is True
        assert proc.wait(timeout=1) == -signal.SIGTERM and not hoststate.ours(found)
        assert hoststate.end(found, signal.SIGTERM, 5) is False  # gone: nothing to end
    finally:
        proc.kill()
        proc.wait()


def test_end_wakes_a_stopped_process_and_kills_one_that_ignores_its_signal():
    stopped = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # pylint: disable=consider-using-with
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, sys, time; signal.signal(signal.SIGTERM, "  # pylint: disable=consider-using-with
                                 "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    try:
        assert stubborn.stdout.readline() == b"ready\n"
        os.kill(stopped.pid, signal.SIGSTOP)
        assert hoststate.end({"pid": stopped.pid, "started": hoststate.start_time(stopped.pid)}, signal.SIGTERM, 5)
        assert stopped.wait(timeout=1) == -signal.SIGTERM  # woken, it took the SIGTERM
        began = time.monotonic()
        assert hoststate.end({"pid": stubborn.pid, "started": hoststate.start_time(stubborn.pid)}, signal.SIGTERM, 0.3)
        assert stubborn.wait(timeout=1) == -signal.SIGKILL and time.monotonic() - began >= 0.3
    finally:
        for proc in (stopped, stubborn):
            proc.kill()
            proc.wait()
        stubborn.stdout.close()


def test_end_takes_a_process_gone_between_its_look_and_its_signal_for_ended(monkeypatch):
    """A CI run failed so: the reader took its SIGTERM and was reaped at once, and the SIGCONT after it raised ESRCH
    out of trace_rule state=absent and the cleanup, which then left the drop reasons' program running. Here the
    process lives on (it ignores SIGTERM), and every signal after the first finds it gone, as the kernel would."""
    proc = subprocess.Popen([sys.executable, "-c", "import signal, sys, time; signal.signal(signal.SIGTERM, "  # pylint: disable=consider-using-with
                             "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    sent, kill = [], os.kill

    def gone_after_the_first(pid, signum):
        sent.append(signum)
        if len(sent) > 1:
            raise ProcessLookupError(3, "No such process")
        kill(pid, signum)

    try:
        assert proc.stdout.readline() == b"ready\n"
        monkeypatch.setattr(os, "kill", gone_after_the_first)
        assert hoststate.end({"pid": proc.pid, "started": hoststate.start_time(proc.pid)}, signal.SIGTERM, 0.2)
        assert sent == [signal.SIGTERM, signal.SIGCONT, signal.SIGKILL]
    finally:
        monkeypatch.undo()
        proc.kill()
        proc.wait()
        proc.stdout.close()
