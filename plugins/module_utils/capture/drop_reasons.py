# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel's own word on every drop of the flow's packets: the drop reason `skb:kfree_skb` carries (Linux 5.17+),
read by a bpftrace program that runs beside the live capture, where bpftrace can run. Optional: a host without it
is diagnosed from the trace and the kernel's state alone.

The program keeps, in the kernel, only the skbs of this network namespace (the device's namespace, else the
socket's, by inode) whose protocol and ports are the flow's; it prints at most RATE drops a second and ends by itself
when the trace expires. It is started by a detached grandchild of the module (as the capture's reader is) that
mounts tracefs in a mount namespace of its own where none is mounted (nothing changes for the rest of the machine),
saves the tracepoint's format (the reason names differ between kernels: they are read there, never hard-coded) and
becomes bpftrace, so the PID recorded is bpftrace's own and only it is ever signalled.
"""

import ctypes
import ctypes.util
import ipaddress
import os
import platform
import re
import signal
import sys
import time

from ansible_collections.packetpath.linux.plugins.module_utils._common import hoststate
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import HostError
from ansible_collections.packetpath.linux.plugins.module_utils.capture.kernel_types import KernelTypes, KernelTypesError

TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
FORMAT = "events/skb/kfree_skb/format"
BTF = "/sys/kernel/btf/vmlinux"
FIRST_KERNEL = (5, 17)  # skb:kfree_skb gained its reason in 5.17
RATE = 50  # drops printed a second at most
READY_TIMEOUT = 20  # seconds for bpftrace to compile and attach (~0.15 s here, ~0.5 s reading members by name)
END_TIMEOUT = 5
AWAIT_TIMEOUT = 0.5  # seconds a drop that is due (a neighbour given up on) may take to be printed
PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "icmpv6": 58}
_PROTOCOL_NAMES = {number: name for name, number in PROTOCOL_NUMBERS.items()}
_SYMBOL = re.compile(r'\{\s*(\d+)\s*,\s*"([A-Za-z0-9_]+)"\s*\}')
_CLONE_NEWNS, _MS_REC, _MS_PRIVATE = 0x00020000, 0x4000, 1 << 18
# The kernel members the program reads: the packet's device and socket, their namespace, where its headers start.
MEMBERS = {
    "dev": ("sk_buff", ("dev",)), "sk": ("sk_buff", ("sk",)), "head": ("sk_buff", ("head",)),
    "network_header": ("sk_buff", ("network_header",)), "dev_net": ("net_device", ("nd_net", "net")),
    "ifindex": ("net_device", ("ifindex",)), "sk_net": ("sock", ("__sk_common", "skc_net", "net")),
    "net_inum": ("net", ("ns", "inum")),
}

PROGRAM = r"""
BEGIN { @budget = %(rate)d; printf("ready\n"); }
interval:s:1 { @budget = %(rate)d; }
interval:s:%(duration)d { exit(); }
END { clear(@budget); }
tracepoint:skb:kfree_skb
{
  $skb = (uint64)args->skbaddr;
  $dev = %(dev)s;
  $sk = %(sk)s;
  $ns = (uint32)0;
  if ($dev != 0) { $ns = %(dev_inum)s; }
  else if ($sk != 0) { $ns = %(sk_inum)s; }
  if ($ns == %(inum)d && @budget > 0) {
    $nh = %(head)s + %(network_header)s;
    $version = *(uint8 *)$nh >> 4;
    $proto = (uint8)0;
    $l4 = $nh + 40;
    $src = $nh + 8;
    $dst = $nh + 24;
    $ttl = *(uint8 *)($nh + 7);
    if ($version == 4) {
      $l4 = $nh + (*(uint8 *)$nh & 15) * 4; $proto = *(uint8 *)($nh + 9);
      $src = $nh + 12; $dst = $nh + 16; $ttl = *(uint8 *)($nh + 8);
    }
    if ($version == 6) { $proto = *(uint8 *)($nh + 6); }
    $sport = (uint16)((*(uint8 *)$l4 << 8) | *(uint8 *)($l4 + 1));
    $dport = (uint16)((*(uint8 *)($l4 + 2) << 8) | *(uint8 *)($l4 + 3));
    $ifindex = (uint32)0;
    if ($dev != 0) { $ifindex = %(ifindex)s; }
    if ((%(protocol)s) && (%(ports)s)) {
      @budget = @budget - 1;
      printf("D %%d %%s %%d %%d %%d %%x %%x %%x %%x %%x %%x %%x %%x %%d %%d %%d %%lld\n", args->reason,
             ksym(args->location), $ifindex, $version, $proto,
             *(uint32 *)$src, *(uint32 *)($src + 4), *(uint32 *)($src + 8), *(uint32 *)($src + 12),
             *(uint32 *)$dst, *(uint32 *)($dst + 4), *(uint32 *)($dst + 8), *(uint32 *)($dst + 12),
             $sport, $dport, $ttl, nsecs);
    }
  }
}
"""


def paths(base):
    """The program's files beside the capture's: what it printed, what it said on stderr, the reason names."""
    return {"drops": base + ".drops", "log": base + ".drops.log", "reasons": base + ".reasons"}


def reason_names(format_text):
    """{number: name} of the tracepoint's reason field, from its format's __print_symbolic list."""
    text = format_text.partition("__print_symbolic")[2]
    return {int(number): name for number, name in _SYMBOL.findall(text)}


def _tracefs():
    return next((root for root in TRACEFS if os.path.exists(os.path.join(root, FORMAT))), None)


def availability(runner):
    """(bpftrace's path or None, why the kernel's drop reasons cannot be read here, or None)."""
    bpftrace = runner.which("bpftrace")
    release = tuple(int(part) for part in re.findall(r"\d+", platform.release())[:2])
    for failed, why in (
            (os.geteuid() != 0, "not root (bpftrace loads a BPF program)"),
            (bpftrace is None, "bpftrace is not installed"),
            (not os.path.exists(BTF), "the kernel has no BTF (%s)" % BTF),
            (_tracefs() is None and not _tracefs_mountable(), "no tracefs (mounted or known to the kernel)"),
            (release < FIRST_KERNEL, "the kernel (%s) gives no drop reasons (5.17 and newer do)" % platform.release())):
        if failed:
            return None, why
    return bpftrace, None


def _tracefs_mountable():
    try:
        with open("/proc/filesystems") as handle:
            return any(line.split()[-1:] == ["tracefs"] for line in handle)
    except OSError:
        return False


def member_offsets(types):
    """{member: (offset, size)} of the members the program reads, in the kernel `types` describe."""
    return {key: types.member(struct_name, path) for key, (struct_name, path) in MEMBERS.items()}


def _reader(offsets):
    """How the program reads a member at an address: by its offset in this kernel where known (`offsets`), else by
    name, which bpftrace resolves from the kernel's types (the same value; it compiles 0.4 s slower)."""
    def read(address, key):
        if offsets:
            offset, size = offsets[key]
            return "*(uint%d *)(%s + %d)" % (size * 8, address, offset)
        struct_name, path = MEMBERS[key]
        return "((struct %s *)%s)->%s" % (struct_name, address, ".".join(path))
    return read


def program(flow, inum, duration, rate=RATE, offsets=None):
    """The bpftrace program for a flow (its protocol and ports; addresses are checked when read) in the namespace
    with inode `inum`, for at most `duration` seconds; `offsets` from member_offsets(), or None to read by name."""
    protocols = [PROTOCOL_NUMBERS[flow.proto]] if flow.proto in PROTOCOL_NUMBERS else []
    conditions = []
    for ports, sides in ((flow.port, ("$sport", "$dport")), (flow.sport, ("$sport",)), (flow.dport, ("$dport",))):
        if ports:
            either = ["(%s >= %d && %s <= %d)" % (side, ports[0], side, ports[1]) for side in sides]
            conditions.append("(%s)" % " || ".join(either))
    read = _reader(offsets)
    return PROGRAM % {"rate": rate, "duration": max(1, int(duration)), "inum": inum,
                      "dev": read("$skb", "dev"), "sk": read("$skb", "sk"),
                      "dev_inum": read(read("$dev", "dev_net"), "net_inum"),
                      "sk_inum": read(read("$sk", "sk_net"), "net_inum"),
                      "head": read("$skb", "head"), "network_header": read("$skb", "network_header"),
                      "ifindex": read("$dev", "ifindex"),
                      "protocol": " || ".join("$proto == %d" % number for number in protocols) or "1",
                      "ports": " && ".join(conditions) or "1"}


def _private_tracefs():
    """In the grandchild: a mount namespace of its own with tracefs mounted, where the machine has none mounted.
    Returns the tracefs root."""
    root = _tracefs()
    if root is not None:
        return root
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.unshare(_CLONE_NEWNS) != 0 or libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0 or \
            libc.mount(b"tracefs", TRACEFS[0].encode(), b"tracefs", 0, None) != 0:
        raise OSError(ctypes.get_errno(), "cannot mount tracefs in a mount namespace of its own")
    return TRACEFS[0]


def _become_bpftrace(bpftrace, text, files):
    """The grandchild: tracefs, the reason names saved, then bpftrace itself (exec: same PID)."""
    log = os.open(files["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(log, ("pid %d\n" % os.getpid()).encode())  # exec keeps the PID: the module reads it here
        os.dup2(log, 2)
        root = _private_tracefs()
        with open(os.path.join(root, FORMAT)) as source:
            names = source.read()
        hoststate.write(files["reasons"], reason_names(names))
        out = os.open(files["drops"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        os.dup2(out, 1)
        os.execv(bpftrace, [bpftrace, "-e", text])
    except BaseException as exc:  # pylint: disable=broad-except  # the grandchild says why in its log, and ends
        os.write(2, ("cannot start bpftrace: %s\n" % exc).encode())
    finally:
        os._exit(1)  # pylint: disable=protected-access  # only reached where exec failed


def start(bpftrace, flow, duration, base, by_name=False):
    """Start the program for the flow in this network namespace, for at most `duration` seconds; return its record
    ({pid, started, files}) once it is attached. It reads the kernel's members by offset, found in the kernel's
    types, or by name (bpftrace finds them) where asked or where the types cannot be read here."""
    files = paths(base)
    for path in files.values():
        hoststate.remove(path)
    hoststate.make_dirs(os.path.dirname(base))
    offsets = None
    if not by_name:
        try:
            offsets = member_offsets(KernelTypes.of_running_kernel(BTF))
        except KernelTypesError:
            pass
    text = program(flow, os.stat("/proc/self/ns/net").st_ino, duration, offsets=offsets)
    child = os.fork()
    if not child:
        try:
            os.setsid()
            grandchild = os.fork()
            if grandchild:
                os._exit(0)  # pylint: disable=protected-access
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            os.closerange(3, 65536)
            _become_bpftrace(bpftrace, text, files)
        finally:
            os._exit(1)  # pylint: disable=protected-access
    os.waitpid(child, 0)
    deadline = time.time() + READY_TIMEOUT
    while not _said_ready(files["drops"]):
        if time.time() > deadline or _gave_up(files["log"]):
            pid = pid_of(files)  # with its start time: without it, stop() would take it for another's and leave it
            stop({"pid": pid, "started": hoststate.start_time(pid), "files": files})
            raise HostError("bpftrace did not start: %s" % (_read(files["log"]).strip()[-400:] or "no word from it"))
        time.sleep(0.05)
    pid = pid_of(files)
    return {"pid": pid, "started": hoststate.start_time(pid), "files": files}


def _said_ready(path):
    return "ready" in _read(path).splitlines()


def _gave_up(path):
    text = _read(path)
    return "cannot start bpftrace" in text or "ERROR: Error" in text or "error:" in text


def pid_of(files):
    """The PID the grandchild wrote before it became bpftrace (the first line of its log)."""
    first = _read(files["log"]).partition("\n")[0]
    return int(first[4:]) if first.startswith("pid ") and first[4:].isdigit() else None


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def printed_on(found, ifindexes, timeout=AWAIT_TIMEOUT):
    """Wait until the program has printed a drop on one of `ifindexes` (the device of a neighbour the kernel has just
    given up on: the packets queued on it are being dropped), at most `timeout` seconds; True once it has. The
    program prints from its buffer a moment after the kernel's drop, and ending it first would lose the line."""
    wanted = set(str(index) for index in ifindexes)
    deadline = time.time() + timeout
    while hoststate.ours(found):
        if any(line.split()[3:4] and line.split()[3] in wanted for line in _read(found["files"]["drops"]).splitlines()
               if line.startswith("D ")):
            return True
        if time.time() > deadline:
            return False
        time.sleep(0.01)
    return False


def stop(found):
    """End the program (SIGINT: it detaches and exits) if it is still the process we started."""
    hoststate.end(found, signal.SIGINT, END_TIMEOUT)


def discard(found):
    stop(found)
    for path in (found or {}).get("files", {}).values():
        hoststate.remove(path)


def read(found, flow, names_of_links):
    """The flow's drops as the kernel gave them: [{reason, location, dev, family, proto, src, dst, sport, dport,
    ttl, time}], oldest first. A reason this kernel numbers but no name was found for is kept as its number."""
    files = found["files"]
    reasons = {int(number): name for number, name in (hoststate.read(files["reasons"]) or {}).items()}
    offset = time.time() - time.monotonic()  # bpftrace's nsecs is the monotonic clock
    drops = []
    for line in _read(files["drops"]).splitlines():
        drop = parse_line(line, reasons, names_of_links, offset)
        if drop is not None and flow.matches(drop):
            drops.append(drop)
    return drops


def parse_line(line, reasons, names_of_links, clock_offset, byteorder=sys.byteorder):
    """One drop the program printed, or None for any other line. Addresses come as the four 32-bit words the
    header holds, as this machine's CPU read them (its byte order); an IPv4 address is the first."""
    words = line.split()
    if len(words) != 18 or words[0] != "D":
        return None
    number, version = int(words[1]), words[4]
    address_bytes = [b"".join(int(word, 16).to_bytes(4, byteorder) for word in words[start:start + 4])
                     for start in (6, 10)]
    src, dst = [str(ipaddress.IPv4Address(raw[:4]) if version == "4" else ipaddress.IPv6Address(raw))
                for raw in address_bytes]
    return {"reason": reasons.get(number, str(number)), "reason_code": number, "location": words[2],
            "dev": names_of_links.get(int(words[3])), "family": "ipv%s" % version,
            "proto": _PROTOCOL_NAMES.get(int(words[5]), words[5]), "src": src, "dst": dst,
            "sport": int(words[14]), "dport": int(words[15]), "ttl": int(words[16]),
            "time": round(int(words[17]) / 1e9 + clock_offset, 6)}
