# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A live capture that outlives the module that starts it.

trace_rule (capture=true) switches the trace on and starts the capture in the same execution; trace_results
(source=capture) ends it and reads what it wrote. Between the two the playbook sends its probe, so one diagnosis
costs a host two module executions (arm; collect, which switches the trace off too) and no polling.

The capture is the live source trace_results would read (NFLOG of the namespace, xtables-monitor or nft monitor),
run by a detached grandchild of the module (a new session; its standard streams on /dev/null, so the module's SSH
session ends) that writes the lines to a spool file in the namespace's state directory. Everything it runs is
imported before the fork: the module's own files are gone once the module has returned. It ends when its stop
FIFO is written (it sleeps until then), or when the trace's expiry comes (its `duration`), whatever happens to the
play. Its PID and kernel start time are recorded, so only the process we started is ever signalled.
"""

import errno
import os
import signal
import time

from ansible_collections.packetpath.linux.plugins.module_utils._common import hoststate
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import HostError
from ansible_collections.packetpath.linux.plugins.module_utils.capture import drop_reasons, fetch

DIRECTORY = "capture"
READY_TIMEOUT = 20  # seconds for the reader to open its source
END_TIMEOUT = 10  # seconds for it to drain its last lines after the stop file


def base(flow_id):
    """Where the flow's capture files lie, less their suffix (the drop reasons' program writes beside them)."""
    return hoststate.record_path(DIRECTORY, flow_id)


def paths(flow_id):
    """The capture's files: its record, the spool of lines, and the ready, stop and done markers."""
    prefix = base(flow_id)
    return {"record": prefix + ".json", "lines": prefix + ".lines", "ready": prefix + ".ready",
            "stop": prefix + ".stop", "done": prefix + ".done"}


def record(flow_id):
    return hoststate.read(paths(flow_id)["record"])


def captured_flows():
    """The flows with capture files here: recorded ones, and those an arm left without a record (killed after it
    started the reader or the drop reasons' program, before it wrote the record), known by the files' names."""
    return sorted(set(name.split(".", 1)[0] for name in hoststate.listdir(DIRECTORY)
                      if not name.startswith(hoststate.TEMPORARY)))


def _create(path):
    """A spool file for writing, never through a link planted in its place (the write would land in its target)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


def _serve(lines, stream, files):
    """The grandchild: write the source's lines to the spool until the source ends, then say how it ended. A spool
    that cannot take a line (a full filesystem) ends the reading, and its source with it, as said in the done file
    where that still fits. The spool is written unbuffered: nothing is left to fail at its close."""
    ended = {"pid": os.getpid()}
    fd = _create(files["lines"])
    try:
        for line in lines:
            try:
                _write_all(fd, line.encode("utf-8"))
            except OSError as exc:
                ended["spool_error"] = exc.strerror or str(exc)
                lines.close()  # its finally ends the monitor program
                break
    finally:
        os.close(fd)
    ended.update(ended_by="spool" if "spool_error" in ended else stream.ended_by, returncode=stream.returncode,
                 overruns=stream.overruns, stalled=stream.stalled)
    hoststate.write(files["done"], ended)


def _write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]


def _end_quietly(_signum, _frame):
    raise SystemExit(0)


def _detach(lines, stream, files):
    """Fork twice; the grandchild reads `lines` (a generator not started yet) into the spool. Returns in the
    module only."""
    child = os.fork()
    if child:
        os.waitpid(child, 0)
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)  # pylint: disable=protected-access  # the first child ends at once; no cleanup of the module's
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, 65536)
        # SIGTERM (discard) ends the reader through its finally: the monitor program it started goes with it.
        signal.signal(signal.SIGTERM, _end_quietly)
        _serve(lines, stream, files)
    finally:
        os._exit(0)  # pylint: disable=protected-access  # never return into the module's code


def start(runner, backend, flow_id, duration, extra):
    """Start the live capture of a flow's trace on `backend`, for at most `duration` seconds, and return its record
    once the reader listens. An earlier reader of the flow is ended first; its drop reasons' program is the
    caller's (trace_rule ends an earlier one, then starts this capture's before this)."""
    discard(flow_id, with_drop_reasons=False)
    files = paths(flow_id)
    hoststate.make_dirs(os.path.dirname(files["record"]))
    os.mkfifo(files["stop"], 0o600)  # the collection writes it: the reader wakes then, and sleeps until then
    source, lines, stream = fetch.live_lines(runner, backend, duration, files["ready"], files["stop"])
    _detach(lines, stream, files)
    deadline = time.time() + READY_TIMEOUT
    pid = _listening(files["ready"])
    while pid is None:
        if time.time() > deadline or os.path.exists(files["done"]):
            discard(flow_id)
            raise HostError("the live capture did not start listening within %d s" % READY_TIMEOUT)
        time.sleep(0.05)
        pid = _listening(files["ready"])
    found = dict(extra, pid=pid, started=hoststate.start_time(pid), flow_id=flow_id, lines=files["lines"],
                 source=source, format=fetch.SOURCE_FORMAT[source], backend=backend,
                 expires_at=time.time() + duration)
    hoststate.write(files["record"], found)
    return found


def _ask_to_stop(fifo):
    """Write to the reader's stop FIFO (made at start()), which wakes it; a reader that ended meanwhile has nobody
    reading it (ENXIO), and needs no asking."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return
        raise
    try:
        os.write(fd, b"stop\n")
    finally:
        os.close(fd)


def _listening(ready):
    """The reader's PID once it listens: its ready file holds the whole line. The reader creates the file and then
    writes it, so it can be seen empty in between (a CI run read it so: int() of nothing)."""
    try:
        with open(ready) as handle:
            text = handle.read()
    except OSError:
        return None
    return int(text) if text.endswith("\n") else None


def collect(flow_id, stop=True):
    """End the flow's capture (its stop file; it drains what is still coming) and return (record, spool path);
    with stop=false (check mode), what it wrote so far. The files stay until discard()."""
    files = paths(flow_id)
    found = record(flow_id)
    if found is None:
        raise HostError("no capture of this flow on this host: start one with packetpath.linux.trace_rule "
                        "capture=true (it also ends when the trace expires, and is removed when it is switched off); "
                        "nothing was read")
    ended_before = os.path.exists(files["done"])  # the reader ended before it was asked to
    if stop and hoststate.ours(found):  # a reader that ended (or died: its spool full) needs no stop file
        drop_reasons.stop(found.get("drop_reasons"))  # it ends as the packets stop: what it printed is complete
        try:
            _ask_to_stop(files["stop"])
        except OSError as exc:  # a link planted at its name (ELOOP), the FIFO removed (ENOENT)
            raise HostError("cannot ask the capture to stop (%s: %s); it ends by itself at the trace's expiry, and "
                            "trace_rule state=absent ends it now; nothing was read" % (files["stop"], exc.strerror or exc))
        deadline = time.time() + END_TIMEOUT
        while hoststate.ours(found) and not os.path.exists(files["done"]) and time.time() < deadline and \
                not hoststate.stopped(found["pid"]):
            time.sleep(0.01)
    if not os.path.exists(files["lines"]):
        raise HostError("the capture wrote nothing at %s" % files["lines"])
    done = hoststate.read(files["done"])
    unfinished, alive = stop and done is None, hoststate.ours(found)  # asked to finish, and not done: gone, or stuck
    return dict(found, losses=losses(found, done, unfinished and not alive, ended_before, unfinished and alive)), \
        files["lines"]


def losses(found, done, reader_lost, ended_before, stalled=False):
    """Why the capture may lack packets of the window, in words ([] where it read all it was sent): its reader gone
    without finishing, or alive but not finishing when asked (stopped, stuck), its monitor ended on its own
    (xtables-monitor quits on ENOBUFS) or holding events it never printed (stopped, stuck), events the kernel
    dropped, or a capture that had reached its deadline before it was collected."""
    if reader_lost:
        return ["the capture's reader (pid %s) ended before it was collected, without finishing its spool "
                "(killed, its source failed, or its filesystem was full): packets after its end are missing"
                % found.get("pid")]
    if stalled:
        return ["the capture's reader (pid %s) did not finish its spool when asked (%s): packets it had not written "
                "yet are missing" % (found.get("pid"), "it is stopped" if hoststate.stopped(found["pid"]) else
                                     "it did not answer within %d s" % END_TIMEOUT)]
    why = []
    if (done or {}).get("ended_by") == "spool":
        why.append("the capture could not write its spool (%s) and ended: packets after that are missing"
                   % done.get("spool_error"))
    elif (done or {}).get("ended_by") == "source":
        why.append("the capture's %s ended on its own before it was collected (rc=%s): packets after its end are "
                   "missing" % (found.get("source"), done.get("returncode")))
    elif ended_before:
        why.append("the capture had reached its deadline (the trace's expiry) before it was collected: packets after "
                   "that were not captured")
    if (done or {}).get("stalled"):
        why.append("the capture's %s %s when the capture ended: the events it had not printed are missing"
                   % (found.get("source"), done["stalled"]))
    if (done or {}).get("overruns"):
        why.append("the kernel dropped trace events %d time(s) for a full socket buffer (ENOBUFS): the capture "
                   "missed some packets" % done["overruns"])
    return why


def discard(flow_id, with_drop_reasons=True):
    """End the flow's capture if it still runs (only the process we started), and remove its files. True when
    there was one. Without a record (an arm killed before it wrote it), its reader and program are found by the
    files they write. with_drop_reasons=False leaves the drop reasons' program and its files alone."""
    files = paths(flow_id)
    found = record(flow_id)
    if found is None:
        found = _unrecorded(flow_id, with_drop_reasons)
    # SIGTERM ends the reader through its finally (its monitor goes with it). Its files go once it has ended: a
    # reader still ending would write its done file after they went.
    hoststate.end(found, signal.SIGTERM, END_TIMEOUT)
    if with_drop_reasons:
        drop_reasons.discard(found.get("drop_reasons"))
    existed = bool(found.get("pid") or found.get("drop_reasons"))
    programs = list(drop_reasons.paths(base(flow_id)).values()) if with_drop_reasons else []
    for path in list(files.values()) + programs:
        if os.path.lexists(path):
            existed = True
        hoststate.remove(path)
    return existed


def _unrecorded(flow_id, with_drop_reasons=True):
    """What a record would have said of a capture an arm left unrecorded: its reader (the PID in its ready file) and
    its drop reasons' program (the PID in its log), each only where that process holds open the file it writes -
    a PID alone may be another program's by now."""
    files, reasons = paths(flow_id), drop_reasons.paths(base(flow_id))
    found = {}
    pid = _listening(files["ready"])
    if pid and _holds(pid, files["lines"]):
        found.update(pid=pid, started=hoststate.start_time(pid))
    program = drop_reasons.pid_of(reasons) if with_drop_reasons else None
    if program and _holds(program, reasons["drops"]):
        found["drop_reasons"] = {"pid": program, "started": hoststate.start_time(program), "files": reasons}
    return found


def _holds(pid, path):
    """Whether the process has `path` open."""
    wanted = os.path.realpath(path)
    directory = "/proc/%d/fd" % pid
    try:
        names = os.listdir(directory)
    except OSError:
        return False
    for name in names:
        try:
            if os.readlink(os.path.join(directory, name)) == wanted:
                return True
        except OSError:
            continue
    return False
