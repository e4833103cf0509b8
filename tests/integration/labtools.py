"""Helpers for tests against the lab: real namespaces, real sshd, real ansible-playbook."""

import contextlib
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB_DIR = os.environ.get("PACKETPATH_LAB_DIR", "/var/lib/packetpath-lab")
INVENTORY = os.path.join(LAB_DIR, "inventory.yml")
BIN = os.path.dirname(sys.executable)
ENV = dict(
    os.environ,
    PYTHONPATH=os.path.join(ROOT, "tests", "lab"),
    PACKETPATH_LAB_DIR=LAB_DIR,
    ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "build", "collections"),
    ANSIBLE_HOST_KEY_CHECKING="false",
    ANSIBLE_NOCOLOR="1",
    # One SSH exchange per task instead of three to five: a diagnosis of a 3-host incident lab took 9.2 s here
    # against 12.0 s without. The README's quick start and the seed's diagnosis run with Ansible's default (off),
    # so both ways are proved.
    ANSIBLE_PIPELINING="true",
    LC_ALL="C.UTF-8",
)
DEFAULT_PIPELINING = ("-e", "ansible_pipelining=false")  # extra vars: a run with Ansible's default


def run(argv, check=True, timeout=300, stdin=None):
    proc = subprocess.run(argv, env=ENV, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError("%s failed (rc=%d)\nstdout:\n%s\nstderr:\n%s" % (argv, proc.returncode, proc.stdout, proc.stderr))
    return proc


def lab(*args, check=True):
    return run([sys.executable, "-m", "pplab"] + list(args), check=check)


def lab_up_in_background(*args):
    return subprocess.Popen([sys.executable, "-m", "pplab", "up"] + list(args), env=ENV,  # pylint: disable=consider-using-with
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def journal():
    try:
        with open(os.path.join(LAB_DIR, "state.json"), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def in_netns(netns, argv, check=True, timeout=30, stdin=None):
    return run(["ip", "netns", "exec", netns] + argv, check=check, timeout=timeout, stdin=stdin)


def ansible(*args, check=True):
    return run([os.path.join(BIN, "ansible"), "-i", INVENTORY] + list(args), check=check)


def ansible_playbook(*args, check=True):
    return run([os.path.join(BIN, "ansible-playbook"), "-i", INVENTORY] + list(args), check=check)


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return None


def machine_state():
    """What the lab could leave behind on this machine (the machine a shard of the suite sees: its processes are
    those of its own PID namespace, see shards.py)."""
    links = run(["ip", "-o", "link", "show"]).stdout
    processes = []
    own = os.stat("/proc/self/ns/pid").st_ino
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
            if os.stat("/proc/%s/ns/pid" % pid).st_ino != own:
                continue
        except OSError:
            continue
        if LAB_DIR in cmdline or "listener.py" in cmdline:
            processes.append(cmdline.strip())
    return {
        "netns": sorted(n for n in run(["ip", "netns", "list"]).stdout.split() if n.startswith("pp-")),
        "root_links": sorted(re.findall(r"^\d+: (pp[-m][^:@]*)", links, re.MULTILINE)),
        "etc_netns": sorted(os.listdir("/etc/netns")) if os.path.isdir("/etc/netns") else None,
        "processes": sorted(processes),
        # The machine's own switch, in the root network namespace only (a shard's namespace has none).
        "nf_log_all_netns": _read("/proc/sys/net/netfilter/nf_log_all_netns"),
        "nf_log_bindings": [run(["sysctl", "-n", "net.netfilter.nf_log.%d" % pf]).stdout.strip() for pf in (2, 10)],
        "lab_dir": _lab_dir(),
        # The collection's records of every namespace (an empty or missing /run/packetpath alike).
        "records": sorted(os.path.relpath(os.path.join(top, name), "/run/packetpath")
                          for top, dirs, names in os.walk("/run/packetpath") for name in dirs + names),
    }


def _lab_dir():
    """What the lab's state directory holds (None where it is not there), but for the release roots lab-down keeps as
    a cache (tests/lab/pplab/roots.py): a directory that holds only them counts as not there."""
    if not os.path.isdir(LAB_DIR):
        return None
    held = os.listdir(LAB_DIR)
    rest = sorted(set(held) - {"roots"})
    return None if held and not rest else rest


def connect(netns, address, port, timeout=2.0):
    """One bounded TCP connect from inside a namespace: the banner, or the error's name."""
    code = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)\n"
        "s.settimeout(%s)\n"
        "try:\n"
        "    s.connect((sys.argv[1], int(sys.argv[2]))); print(s.recv(200).decode().strip())\n"
        "except OSError as e:\n"
        "    print(type(e).__name__)\n" % timeout
    )
    return in_netns(netns, ["/usr/bin/python3", "-c", code, address, str(port)]).stdout.strip()


def wait_for_journal(minimum, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = journal()
        if state and len(state["resources"]) >= minimum:
            return len(state["resources"])
        if proc.poll() is not None:
            raise AssertionError("lab-up ended (rc=%s) before the journal had %d entries" % (proc.returncode, minimum))
        time.sleep(0.01)
    raise AssertionError("the journal never reached %d entries" % minimum)


def kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def module(host, name, args, check=False, diff=False):
    """Run one module on one lab host over SSH: its JSON result, plus `_status` (SUCCESS/CHANGED/FAILED), `_stdout`, `_stderr`."""
    return module_on([host], name, args, check=check, diff=diff)[host]


def module_on(hosts, name, args, check=False, diff=False):
    """Run one module on several lab hosts in one `ansible` run (one start of Ansible, where a run per host cost
    ~2.5 s of CPU each): {host: its result, as module() gives it}."""
    argv = [os.path.join(BIN, "ansible"), "-i", INVENTORY, ":".join(hosts), "-m", name]
    argv += ["-a", json.dumps(args)] if args else []  # `-a '{}'` reads as raw params, which a module refuses
    argv += (["--check"] if check else []) + (["--diff"] if diff else [])
    proc = run(argv, check=False)
    results = {}
    for host in hosts:
        found = re.search(r"^%s \| (\w+)!? => (\{.*?^\})" % re.escape(host), proc.stdout, re.M | re.S)
        if not found:
            raise AssertionError("no result for %s in:\n%s\n%s" % (host, proc.stdout, proc.stderr))
        results[host] = dict(json.loads(found.group(2)), _status=found.group(1), _stdout=proc.stdout,
                             _stderr=proc.stderr)  # warnings land in _stderr
    return results


class Monitor:
    """A live trace reader (`xtables-monitor --trace`, `nft monitor trace`) inside a namespace, bounded in time.

    It is ready once the reader listens: its netfilter netlink socket subscribed to a group, or, for a reader that
    says so itself, its `ready_file` there. A fixed sleep was not enough on a loaded machine (CI saw the legacy
    reader's Python start after the packet had passed)."""

    def __init__(self, netns, argv, seconds=10, ready_file=None):
        self.proc = subprocess.Popen(["ip", "netns", "exec", netns, "timeout", str(seconds)] + argv,  # pylint: disable=consider-using-with
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
        deadline = time.time() + seconds
        while not (os.path.exists(ready_file) if ready_file else _subscribed(self.proc.pid)):
            if time.time() > deadline or self.proc.poll() is not None:
                output = self.stop()
                raise AssertionError("%s never listened in %s:\n%s" % (" ".join(argv), netns, output))
            time.sleep(0.02)

    def stop(self):
        time.sleep(0.3)
        self.proc.terminate()
        return self.proc.communicate(timeout=10)[0]


def _subscribed(pid):
    """Whether a process below `pid` (timeout's child) has a NETLINK_NETFILTER socket subscribed to a group."""
    pids = [pid]
    while pids:
        pid = pids.pop()
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid), encoding="ascii") as handle:
                pids += [int(child) for child in handle.read().split()]
            inodes = {os.readlink("/proc/%d/fd/%s" % (pid, fd)) for fd in os.listdir("/proc/%d/fd" % pid)}
            with open("/proc/%d/net/netlink" % pid, encoding="ascii") as handle:
                rows = [line.split() for line in handle.readlines()[1:]]
        except OSError:  # gone, or not started yet
            continue
        # sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode; NETLINK_NETFILTER is protocol 12
        if any(row[1] == "12" and int(row[3], 16) and "socket:[%s]" % row[9] in inodes for row in rows):
            return True
    return False


def nflog_monitor(netns, seconds=10):
    """The legacy twin of a Monitor: this namespace's TRACE lines, read from NFLOG by the collection's reader (its
    ready file is there once group 0 is bound)."""
    script = os.path.join(ROOT, "tests", "integration", "nflog_monitor.py")
    ready = os.path.join(tempfile.mkdtemp(prefix="pp-nflog-"), "ready")
    monitor = Monitor(netns, ["/usr/bin/python3", script, os.path.join(ROOT, "build", "collections"), str(seconds),
                              ready], seconds=seconds + 2, ready_file=ready)
    shutil.rmtree(os.path.dirname(ready))  # the reader removes its file only at its end
    return monitor


def uptime():
    with open("/proc/uptime", encoding="utf-8") as handle:
        return float(handle.read().split()[0])


def kernel_trace_since(since, *needles):
    """TRACE lines of the kernel log (dmesg) newer than `since` (uptime) that contain every needle."""
    lines = []
    for line in run(["dmesg"]).stdout.splitlines():
        stamp = re.match(r"^\[\s*(\d+\.\d+)\]", line)
        if stamp and float(stamp.group(1)) > since and "TRACE:" in line and all(n in line for n in needles):
            lines.append(line)
    return lines


SEND = r"""
import socket, struct, sys
proto, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
family = socket.AF_INET6 if ":" in address else socket.AF_INET
if proto == "udp":
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.sendto(b"packetpath-lab probe", (address, port))
else:  # one ICMP / ICMPv6 echo request (the kernel fills in the ICMPv6 checksum)
    icmp6 = family == socket.AF_INET6
    sock = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_ICMPV6 if icmp6 else socket.IPPROTO_ICMP)
    header = struct.pack("!BBHHH", 128 if icmp6 else 8, 0, 0, 0x7070, 1) + b"packetpath-lab"
    if not icmp6:
        total = sum(struct.unpack("!%dH" % (len(header) // 2), header))
        total = (total >> 16) + (total & 0xFFFF)
        header = header[:2] + struct.pack("!H", ~(total + (total >> 16)) & 0xFFFF) + header[4:]
    sock.sendto(header, (address, 0))
print("sent")
"""


def send(netns, proto, address, port=0):
    """One UDP datagram or one ICMP(v6) echo request from inside a namespace."""
    return in_netns(netns, ["/usr/bin/python3", "-c", SEND, proto, address, str(port)]).stdout.strip()


def records_dir(netns):
    """Where the collection keeps a namespace's records: hoststate.namespace_dir() as the namespace sees it."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from ansible_collections.packetpath.linux.plugins."
            "module_utils._common.hoststate import namespace_dir; print(namespace_dir())")
    return in_netns(netns, [sys.executable, "-c", code, os.path.join(ROOT, "build", "collections")]).stdout.strip()


def traces_left(netns):
    """Anything of ours left: trace rules or our nft table in the host's rulesets, expiry records or sleepers, a
    capture's files."""
    text = "\n".join(in_netns(netns, [command], check=False).stdout
                     for command in ("iptables-legacy-save", "iptables-nft-save"))
    text += in_netns(netns, ["nft", "list", "ruleset"], check=False).stdout
    left = [line for line in text.splitlines() if "packetpath" in line or "nftrace" in line]
    namespace_dir = records_dir(netns)
    left += glob.glob(namespace_dir + "/expiry/*.json") + glob.glob(namespace_dir + "/nf_log_binding.json")
    left += glob.glob(namespace_dir + "/capture/*")  # a live capture's record and spool (trace_rule capture=true)
    left += [pid for pid in subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True,
                                           check=False).stdout.split()
             if "packetpath-expiry" in _cmdline(pid) or "bpftrace" in _cmdline(pid)]
    return left


def running_in(netns, text):
    """PIDs of the processes in a namespace whose command line contains `text` (pgrep alone looks at every
    process of the machine, another namespace's monitor included)."""
    pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, check=False).stdout.split()
    return [pid for pid in pids if text in _cmdline(pid).replace("\0", " ")]


def _cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as handle:
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


class LiveCapture(threading.Thread):
    """trace_results with a live source, running while the test sends traffic.

    Entering waits for its ready_file; leaving writes its stop_file, so the capture ends as soon as the traffic is
    sent: `duration` is only an upper bound, however slow the machine is to start several captures."""

    def __init__(self, host, **args):
        super().__init__(daemon=True)
        folder = tempfile.mkdtemp(prefix="pp-ready-")
        self.ready, self.stop = os.path.join(folder, "ready"), os.path.join(folder, "stop")
        args.setdefault("duration", 60)
        self.host, self.args, self.result = host, dict(args, ready_file=self.ready, stop_file=self.stop), None

    def run(self):
        result = module(self.host, "packetpath.linux.trace_results", self.args)
        assert result["_status"] == "SUCCESS", result["_stdout"]
        self.result = result

    def wait_ready(self):
        deadline = time.time() + 60
        while not os.path.exists(self.ready):
            assert self.is_alive() or self.result, "the capture on %s ended before it was ready" % self.host
            assert time.time() < deadline, "the capture on %s never said it was ready" % self.host
            time.sleep(0.1)

    def __enter__(self):
        self.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc):
        with open(self.stop, "w") as handle:
            handle.write("done\n")
        self.join(90)
        os.unlink(self.stop)
        os.rmdir(os.path.dirname(self.ready))


@contextlib.contextmanager
def live_captures(hosts, **args):
    """One LiveCapture per host, started together (each module start takes seconds), all ready before the body."""
    captures = [LiveCapture(host, **args) for host in hosts]
    for capture in captures:
        capture.start()
    try:
        for capture in captures:
            capture.wait_ready()
        yield captures
    finally:
        for capture in captures:
            capture.__exit__()


class Footprint:
    """What a test makes on the machine outside its namespaces, removed afterwards, and only what it made: the
    lab's journal, for a test. The shared directories a test or the collection under test may create
    (/etc/netns, /run/packetpath) are noted as absent when the footprint starts and removed at its end if they are
    then empty (a leftover inside stays for the session's guard to see); directories made through makedirs() are
    recorded as they are made and removed whole."""

    SHARED = ("/etc/netns", "/run/packetpath")

    def __init__(self, shared=SHARED):
        self.absent = [path for path in shared if not os.path.lexists(path)]
        self.made = []

    def makedirs(self, path):
        """os.makedirs(path), each directory it creates recorded first (outermost first)."""
        missing, head = [], path
        while not os.path.lexists(head):
            missing.append(head)
            head = os.path.dirname(head)
        self.made += [folder for folder in reversed(missing) if folder not in self.absent]
        os.makedirs(path)
        return path

    def undo(self):
        for folder in reversed(self.made):
            shutil.rmtree(folder, ignore_errors=True)
        self.made = []
        for folder in reversed(self.absent):
            with contextlib.suppress(OSError):
                os.rmdir(folder)  # only when empty


def scratch_down(netns):
    """Whatever a test left in a scratch namespace of its own: its processes (killed by PID, inside it only), the
    namespace with its rules, its records under /run/packetpath and its /etc/netns directory."""
    try:
        inode = os.stat("/run/netns/" + netns).st_ino
    except OSError:
        inode = None
    for pid in subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, check=False).stdout.split():
        subprocess.run(["kill", "-9", pid], check=False)
    subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
    shutil.rmtree("/etc/netns/" + netns, ignore_errors=True)
    for name in os.listdir("/run/packetpath") if inode and os.path.isdir("/run/packetpath") else ():
        if name.startswith("net-%d-" % inode):
            shutil.rmtree(os.path.join("/run/packetpath", name))


@contextlib.contextmanager
def scratch(netns, sysctl_d=False):
    """A namespace of the test's own (name it outside "pp-", lab-down's and the guard's) with loopback and eth1 (a
    veth whose peer is eth2) up, and with sysctl_d its own /etc/sysctl.d (`ip netns exec` binds
    /etc/netns/<ns>/sysctl.d over it); gone afterwards with whatever was left in it and whatever it made on the
    machine (its Footprint), also when the test fails."""
    scratch_down(netns)
    footprint = Footprint()
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        in_netns(netns, ["ip", "link", "set", "lo", "up"])
        in_netns(netns, ["ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth2"])
        in_netns(netns, ["ip", "link", "set", "eth1", "up"])
        if sysctl_d:
            footprint.makedirs("/etc/netns/%s/sysctl.d" % netns)
        yield netns
    finally:
        scratch_down(netns)
        footprint.undo()
