"""The host's records: written atomically through an unpredictable temporary file, and a killed writer's
temporary file removed by the next write (issue #27: one stayed for good)."""

import contextlib
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


@contextlib.contextmanager
def _child(ignoring_sigterm=False):
    """(the process, its record) of a child that sleeps a minute, killed afterwards whatever happened; one that
    ignores SIGTERM says so before it is handed over."""
    code = "import time; time.sleep(60)"
    if ignoring_sigterm:
        code = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); " + code
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)  # pylint: disable=consider-using-with
    try:
        if ignoring_sigterm:
            assert proc.stdout.readline() == b"ready\n"
        yield proc, {"pid": proc.pid, "started": hoststate.start_time(proc.pid)}
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_end_signals_only_the_process_it_recorded_and_returns_once_it_has_ended():
    with _child() as (proc, found):
        assert hoststate.end(dict(found, started=found["started"] + 1), signal.SIGTERM, 1) is False  # not ours
        assert proc.poll() is None
        assert hoststate.end(found, signal.SIGTERM, 5) is True
        assert proc.wait(timeout=1) == -signal.SIGTERM and not hoststate.ours(found)
        assert hoststate.end(found, signal.SIGTERM, 5) is False  # gone: nothing to end


def test_end_wakes_a_stopped_process_and_kills_one_that_ignores_its_signal():
    with _child() as (stopped, stopped_found), _child(ignoring_sigterm=True) as (stubborn, stubborn_found):
        os.kill(stopped.pid, signal.SIGSTOP)
        assert hoststate.end(stopped_found, signal.SIGTERM, 5)
        assert stopped.wait(timeout=1) == -signal.SIGTERM  # woken, it took the SIGTERM
        began = time.monotonic()
        assert hoststate.end(stubborn_found, signal.SIGTERM, 0.3)
        assert stubborn.wait(timeout=1) == -signal.SIGKILL and time.monotonic() - began >= 0.3


def test_end_takes_a_process_gone_between_its_look_and_its_signal_for_ended(monkeypatch):
    """A CI run failed so: the reader took its SIGTERM and was reaped at once, and the SIGCONT sent after it raised
    ESRCH out of trace_rule state=absent and the cleanup, which then left the drop reasons' program running. Here the
    process lives on (it ignores SIGTERM), and every signal after the first finds it gone, as the kernel would."""
    sent, kill = [], os.kill

    def gone_after_the_first(pid, signum):
        sent.append(signum)
        if len(sent) > 1:
            raise ProcessLookupError(3, "No such process")
        kill(pid, signum)

    with _child(ignoring_sigterm=True) as (_proc, found):
        with monkeypatch.context() as patched:
            patched.setattr(os, "kill", gone_after_the_first)
            assert hoststate.end(found, signal.SIGTERM, 0.2)
        assert sent == [signal.SIGCONT, signal.SIGTERM, signal.SIGKILL]  # woken first: waking ends nothing
