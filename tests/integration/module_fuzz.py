"""Every module of the collection run in this process on generated arguments, thousands of cases: each
option of each module's own argument spec given hostile values of its type (one at a time, then several at once),
on a few valid bases. Prints one JSON line per case that went wrong and a last line with the counts.

What goes wrong: a traceback (an exception out of the module, or a failure that carries one), a refusal that
names no option it was given, a refusal or a check-mode run that changed the namespace (rules, records, processes,
sysctls, files), a case that outlives its time bound, and an accepted case whose undoing leaves something behind.

Run only inside a scratch network namespace of its own, by tests/integration/lab/test_module_fuzz.py:

    ip netns exec <scratch> python module_fuzz.py <build/collections> <scratch> <work dir> <seed> <fixture trace> \
        [<claims dir>]

With a claims directory, several runners (each in a namespace of its own) share the modules: each takes the next
module no other has claimed (a file created exclusively there). Each module's cases come from a generator seeded
with the seed and the module's name, so they are the same whichever runner takes it.

It refuses to start unless /etc/sysctl.d here is the scratch namespace's (`ip netns exec` binds it), so that no
accepted case can write the machine's own files; netns values are only this namespace or ones that do not exist.
"""

import contextlib
import hashlib
import importlib
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

if __name__ == "__main__":  # started by itself: argv[1] is build/collections (the tests import it with it on the path)
    sys.path.insert(0, sys.argv[1])

# pylint: disable=wrong-import-position
from ansible.module_utils import basic
from ansible_collections.packetpath.linux.plugins.module_utils._common import hoststate

MODULES = ("trace_rule", "trace_results", "interface_sysctl", "route_lookup", "probe", "preflight", "host_audit",
           "diagnosis_report", "audit_report")
SECONDS_PER_CASE = 60
LONG = "x" * 300
COUNTERS = re.compile(r" \[\d+:\d+\]")


class Captured(Exception):
    """Raised in place of the module's AnsibleModule to read its argument spec."""


def hostile(kind, work):
    """Values a careless or hostile caller could give an option of this type."""
    text = ["", " ", "\t", "\n", "a\0b", LONG, "\u00e9\u20ac", "\x1b[31mred", "$(touch %s/pwned)" % work, "; touch pwned",
            "-h", "--", "*", "../..", "nan", "inf", "-1", "0", "65536", "1:65535", "0:0", "80-90", "80,443",
            "0.0.0.0/0", "::/0", "192.0.2.1/33", "fe80::1%eth1", "192.0.2.1", "2001:db8::1", "256.1.1.1", "lo",
            "eth1", "a" * 16, "{{ 1 }}", "true", "null", 5, -1, 1.5, [], {}, None,
            "\ud800", "eth\udc80"]  # lone surrogates: JSON carries them, no encoding writes them (issue #42)
    numbers = [-1, 0, 1, 65535, 65536, 2 ** 31, 2 ** 63, -2 ** 63, "abc", "1e3", 1.5, "0x10", True, None, [], {},
               float("nan"), float("inf"), "nan", LONG]
    return {
        "str": text,
        "int": numbers,
        "float": numbers + [1e308, -0.0, 1e-9, "-inf"],
        "bool": ["maybe", 2, -1, [], {}, "yes", "off", None, LONG],
        "list": ["abc", "a,b", "", [], [None], [""], [{}], [[]], [LONG], ["a\0b"], 5, {}, ["lo"] * 200, None],
        "dict": ["abc", "k=v", [], 5, {"": None}, {"a": {"b": [None]}}, {LONG: 1}, {"epoch": "abc"},
                 {"uptime": "nan"}, {"rp_filter": "x"}, {"rp_filter": [1, 2]}, None,
                 # A controller module's per-host results, their parts of another kind (issue #42).
                 {"node": {"packets": "x"}}, {"node": {"packets": [5]}}, {"node": {"finding": 5}},
                 {"node": {"capture": "x"}}, {"node": {"checks": "x"}}, {"node": {"checks": [{}]}},
                 {"trace_hosts": [5]}, {"\ud800": 1}],
        "raw": ["abc", "", [], {}, -1, 0, 1e308, float("nan"), float("inf"), {"epoch": "abc"}, {"epoch": None},
                {"uptime": -5}, {"epoch": 1e300}, "1970-01-01", "9999-12-31T23:59:59", LONG, None],
        "path": ["", " ", "a\0b", "%s/\ud800" % work, LONG, "%s/%s" % (work, LONG), "sub/dir/file", "../x", "/dev/null", "/dev/zero",
                 "/dev/full", "%s/fifo" % work, "%s/missing/deeper" % work, "~nobody/x", None],
    }[kind]


def option_values(name, kind, netns, work):
    """Hostile values, minus those that would let an accepted case leave the scratch namespace or directory."""
    if name == "netns":  # this namespace, or names and paths that are no namespace at all
        return ["", " ", "x y", "a\0b", LONG, netns, netns + "-absent", "/proc/self/ns/net", "/proc/self/ns/mnt",
                "%s/fifo" % work, "0", "-1", ".", "..", "../" + netns, [], None]  # no PID: PIDs are namespaces too
    values = hostile(kind, work)
    if name == "query":  # JMESPath a careless or hostile caller could write (issue #42): depth, size, types, &
        values += ["(" * 3000 + "a" + ")" * 3000, "@|" * 5000 + "@", "merge(@, `1`)", "&foo", "a[%s]" % ("9" * 5000),
                   "packets[::0]", "length(`1`)"]
    # Absolute paths only into the work dir or devices: an accepted case writes where it is told.
    return [v for v in values if not (isinstance(v, str) and v.startswith("/") and not v.startswith(work + "/")
                                      and v not in ("/dev/null", "/dev/zero", "/dev/full"))]


def spec_of(module):
    """The argument spec the module gives its AnsibleModule (the collection's PacketpathModule)."""
    seen = {}

    def capture(*_args, **kwargs):
        seen.update(kwargs)
        raise Captured()

    real, module.PacketpathModule = module.PacketpathModule, capture
    try:
        module.main()
    except Captured:
        pass
    finally:
        module.PacketpathModule = real
    return seen["argument_spec"]


try:  # imported once here, not in every case's child (unittest.mock's import was 2% of the fuzz's time)
    from ansible.module_utils.testing import patch_module_args  # ansible-core 2.19+
except ImportError:
    patch_module_args = None


@contextlib.contextmanager
def module_args(args):
    if patch_module_args is not None:
        with patch_module_args(args):
            yield
        return
    saved = basic._ANSIBLE_ARGS  # pylint: disable=protected-access
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()  # pylint: disable=protected-access
    try:
        yield
    finally:
        basic._ANSIBLE_ARGS = saved  # pylint: disable=protected-access


def run(module, args, check, work):
    """(result dict or None, what escaped or None). The module runs in a child process of its own: whatever it does
    to its process (a namespace entered, a signal handler, a global) ends with the case, and a case that hangs is
    ended by its PID. The result's `_past_argument_check` says whether ansible-core's argument check passed."""
    full = dict(args, _ansible_check_mode=check, _ansible_remote_tmp=work, _ansible_keep_remote_files=False)
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the module's JSON line, or what escaped it, into the pipe
        os.close(reader)
        out, passed = io.StringIO(), []

        class Checked(module.PacketpathModule):  # notes that ansible-core's argument check let the case through
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                passed.append(True)

        module.PacketpathModule = Checked
        try:
            with module_args(full), contextlib.redirect_stdout(out):
                module.main()
            escaped = None
        except SystemExit:
            escaped = None
        except BaseException as exc:  # pylint: disable=broad-except
            escaped = "%s: %s" % (type(exc).__name__, exc)
        with os.fdopen(writer, "w") as pipe:
            json.dump({"out": out.getvalue(), "escaped": escaped, "passed": bool(passed)}, pipe)
        os._exit(0)  # pylint: disable=protected-access
    os.close(writer)
    deadline = time.monotonic() + SECONDS_PER_CASE
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(reader)
            return None, "no answer in %d s" % SECONDS_PER_CASE
        time.sleep(0.002)
    with os.fdopen(reader) as pipe:
        text = pipe.read()
    try:
        answer = json.loads(text)
    except ValueError:
        return None, "the case's process died: %r" % text[-300:]
    if answer["escaped"]:
        return None, answer["escaped"]
    try:
        result = json.loads(answer["out"].strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None, "no JSON result: %r" % answer["out"][-300:]
    result["_past_argument_check"] = answer["passed"]
    return result, None


def _tree(top):
    found = []
    for base, dirs, names in os.walk(top):
        dirs.sort()
        for name in sorted(dirs + names):
            path = os.path.join(base, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as handle:
                    found.append((path, hashlib.sha256(handle.read()).hexdigest()))
            else:
                found.append((path, os.path.islink(path) and os.readlink(path)))
    return found


def _sysctls():
    values = {}
    for top in ("/proc/sys/net/ipv4/conf", "/proc/sys/net/ipv6/conf", "/proc/sys/net/netfilter/nf_log"):
        for base, _dirs, names in os.walk(top):
            for name in names:
                path = os.path.join(base, name)
                try:
                    with open(path) as handle:
                        values[path] = handle.read()
                except OSError:
                    continue
    return values


def _processes():
    """The command lines of the processes running in this namespace (a zombie has ended: it waits for its reaper)."""
    own = os.stat("/proc/self/ns/net").st_ino
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            if os.stat("/proc/%s/ns/net" % pid).st_ino != own or hoststate.start_time(int(pid)) is None:
                continue
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                found.append(handle.read().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return sorted(found)


def state(netns, work):
    """What a case could change in this namespace and in the files given to it."""
    rules = [subprocess.run(argv, capture_output=True, text=True, check=False).stdout
             for argv in (["nft", "list", "ruleset"], ["iptables-legacy-save"], ["ip6tables-legacy-save"])]
    # Without comments and packet counters: a probe's packets move the counters, not the rules.
    rules = [COUNTERS.sub("", "\n".join(line for line in text.splitlines() if not line.startswith("#")))
             for text in rules]
    return {"rules": rules, "records": _tree(hoststate.namespace_dir()), "etc": _tree("/etc/netns/" + netns),
            "work": _tree(os.path.join(work, "cwd")), "sysctls": _sysctls(), "processes": _processes()}


def prime_raw_tables():
    """The raw tables as on a host where iptables was used before: listing a legacy table creates it, and
    iptables-nft creates its table at the first rule and leaves it (empty, accepting) after the last. Neither is
    packetpath's to delete (docs/safety.md), so they are made here before the first state is taken."""
    for command in ("iptables", "ip6tables"):
        subprocess.run([command + "-legacy", "-w", "5", "-t", "raw", "-S"], capture_output=True, check=True)
        for chain in ("PREROUTING", "OUTPUT"):
            rule = [chain, "-m", "comment", "--comment", "fuzz-prime", "-j", "RETURN"]
            subprocess.run([command + "-nft", "-t", "raw", "-I"] + rule, capture_output=True, check=True)
            subprocess.run([command + "-nft", "-t", "raw", "-D"] + rule, capture_output=True, check=True)


def differences(before, after):
    return sorted(key for key in before if before[key] != after[key])


class Fuzz:
    def __init__(self, netns, work, seed, trace_file, claims=None):
        self.netns, self.work, self.seed, self.claims = netns, work, seed, claims
        self.random = random.Random(seed)
        self.trace_file = trace_file
        self.modules = {name: importlib.import_module("ansible_collections.packetpath.linux.plugins.modules." + name)
                        for name in MODULES}
        self.counts = {"cases": 0, "accepted": 0, "refused": 0, "check_mode": 0, "defects": 0}
        self.baseline = None
        self.own_namespace = os.stat("/proc/self/ns/net").st_ino

    def bases(self):
        """Valid arguments of each module, from which the cases mutate (the reports' from real results)."""
        trace = self.call("trace_results", {"source": "file", "path": self.trace_file})
        audit = self.call("host_audit", {"expect": {"rp_filter": [1, 2]}})
        report_dir = os.path.join(self.work, "cwd", "reports")
        return {
            "trace_rule": [{"proto": "tcp", "dport": "8080", "expires": 5, "drop_reasons": "never"},
                           {"proto": "udp", "dst": "192.0.2.80", "port": "53", "backend": "iptables_legacy",
                            "expires": 5},
                           {"state": "absent", "all": True}],
            "trace_results": [{"source": "file", "path": self.trace_file, "query": "packets[0].verdict"},
                              {"source": "dmesg", "proto": "tcp", "dport": "8080", "max_packets": 5}],
            "interface_sysctl": [{"interfaces": ["eth1"], "settings": {"rp_filter": 2}},
                                 {"interfaces": ["all", "eth1"], "settings": {"log_martians": 1},
                                  "persistent": "present"},
                                 {"interfaces": ["all"], "state": "audit", "expect": {"rp_filter": [1, 2]},
                                  "martians_since": {"uptime": 0}}],
            "route_lookup": [{"dst": "127.0.0.1", "proto": "tcp", "dport": "80"},
                             {"lookups": [{"dst": "192.0.2.1"}, {"dst": "2001:db8::1"}], "engine": "ip"}],
            "probe": [{"proto": "tcp", "dst": "127.0.0.1", "dport": 9, "count": 1, "timeout": 0.2},
                      {"proto": "udp", "dst": "127.0.0.1", "dport": 9, "count": 2, "timeout": 0.2,
                       "parallel": True}],
            "preflight": [{}],
            "host_audit": [{"expect": {"rp_filter": [1, 2]}}, {"checks": ["trace_leftovers", "sysctl_expected"], "expect": {"rp_filter": [1, 2]}}],
            "diagnosis_report": [{"hosts": {"h1": trace}, "report_dir": report_dir,
                                  "request": {"proto": "tcp", "dport": 8080, "trace_hosts": ["h1", "h2"]}}],
            "audit_report": [{"hosts": {"h1": audit}, "checks": ["sysctl_expected", "trace_leftovers"],
                              "report_dir": report_dir}],
        }

    def claim(self, name):
        """Whether this runner takes the module: always alone, else where no other runner claimed it first."""
        if self.claims is None:
            return True
        try:
            os.close(os.open(os.path.join(self.claims, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def call(self, name, args):
        result, escaped = run(self.modules[name], args, False, self.work)
        if escaped or result.get("failed"):
            raise SystemExit("the base %s %r does not run: %s" % (name, args, escaped or result.get("msg")))
        return result

    def cases(self, name, bases, spec):
        """(args, mutated options): each option alone over its hostile values, then random mixes."""
        options = sorted(spec)
        for base in bases:
            for option in options:
                for value in option_values(option, spec[option].get("type", "str"), self.netns, self.work):
                    yield dict(base, **{option: value}), [option]
        for _unused in range(60):
            base = self.random.choice(bases)
            chosen = self.random.sample(options, min(len(options), self.random.randint(2, 4)))
            args = dict(base)
            for option in chosen:
                kind = spec[option].get("type", "str")
                pool = option_values(option, kind, self.netns, self.work) + list(spec[option].get("choices") or [])
                args[option] = self.random.choice(pool)
            yield args, chosen

    def defect(self, name, args, check, what, detail):
        self.counts["defects"] += 1
        print(json.dumps({"module": name, "args": args, "check_mode": check, "defect": what, "detail": detail},
                         default=repr), flush=True)

    def undo(self):
        """Undo an accepted case: our traces off (trace_rule's own absent), sysctls and files as they were."""
        run(self.modules["trace_rule"], {"state": "absent", "all": True}, False, self.work)
        for path, value in self.baseline["sysctls"].items():
            try:
                with open(path) as handle:
                    if handle.read() == value:
                        continue
                with open(path, "w") as handle:
                    handle.write(value)
            except OSError:
                continue
        for top in ("/etc/netns/%s/sysctl.d" % self.netns, os.path.join(self.work, "cwd")):
            for base, dirs, names in os.walk(top, topdown=False):
                for entry in names:
                    os.unlink(os.path.join(base, entry))
                for entry in dirs:
                    path = os.path.join(base, entry)
                    (os.unlink if os.path.islink(path) else os.rmdir)(path)
        self.prepare_work()

    def prepare_work(self):
        cwd = os.path.join(self.work, "cwd", "a", "b")
        os.makedirs(cwd, exist_ok=True)
        os.chdir(cwd)  # relative paths of the cases land in the work dir
        fifo = os.path.join(self.work, "fifo")
        if not os.path.exists(fifo):
            os.mkfifo(fifo)

    def one(self, name, args, mutated, check):
        if os.stat("/proc/self/ns/net").st_ino != self.own_namespace:
            raise SystemExit("the fuzz left its namespace: stopping")
        self.counts["cases"] += 1
        self.counts["check_mode"] += check
        started = time.monotonic()
        result, escaped = run(self.modules[name], args, check, self.work)
        if escaped:
            self.defect(name, args, check, "traceback", escaped)
            result = {"failed": True}
        elif result.get("exception"):
            self.defect(name, args, check, "traceback", result["exception"][-500:])
        refused = bool(result.get("failed"))
        self.counts["refused" if refused else "accepted"] += 1
        if refused and not escaped and not any(option in result.get("msg", "") for option in list(args) + mutated):
            self.defect(name, args, check, "refusal names no option given", result.get("msg"))
        if refused and not escaped and not result["_past_argument_check"]:
            pass  # ansible-core refused it before any code of ours ran: nothing of ours can have changed
        elif refused or check:
            changed = differences(self.baseline, state(self.netns, self.work))
            if changed:
                self.defect(name, args, check, "changed on refusal" if refused else "changed in check mode", changed)
                self.undo()
        elif differences(self.baseline, state(self.netns, self.work)):
            # Only a case that changed what state() sees has anything to undo: trace_rule's absent all=true, the
            # undo's first step, was 40% of the fuzz's time when it ran after every accepted case.
            self.undo()
            left = differences(self.baseline, state(self.netns, self.work))
            if left:
                self.defect(name, args, check, "left behind after undo", left)
                self.baseline = state(self.netns, self.work)
        if os.path.exists(os.path.join(self.work, "pwned")) or os.path.exists("pwned"):
            self.defect(name, args, check, "ran a shell command from its input", "")
        return time.monotonic() - started

    def go(self):
        self.prepare_work()
        prime_raw_tables()
        self.baseline = state(self.netns, self.work)
        bases = self.bases()
        slowest, seconds = {}, {}
        for name in MODULES:
            if not self.claim(name):
                continue
            self.random = random.Random("%d:%s" % (self.seed, name))
            self.counts.setdefault("modules", []).append(name)
            spec = spec_of(self.modules[name])
            for args, mutated in self.cases(name, bases[name], spec):
                took = self.one(name, args, mutated, check=self.random.random() < 0.2)
                seconds[name] = seconds.get(name, 0) + took
                if took > slowest.get(name, (0,))[0]:
                    slowest[name] = (round(took, 2), args)
        self.counts["slowest"] = slowest
        self.counts["seconds"] = {name: round(took, 1) for name, took in seconds.items()}
        print(json.dumps(self.counts, default=repr), flush=True)


def main():
    collections, netns, work, seed, trace_file = sys.argv[1:6]
    claims = sys.argv[6] if len(sys.argv) > 6 else None
    here, scratch = os.stat("/etc/sysctl.d"), os.stat("/etc/netns/%s/sysctl.d" % netns)
    if (here.st_dev, here.st_ino) != (scratch.st_dev, scratch.st_ino) or collections not in sys.path:
        raise SystemExit("not inside `ip netns exec %s` with its own /etc/sysctl.d: refusing to run" % netns)
    Fuzz(netns, work, int(seed), trace_file, claims).go()


if __name__ == "__main__":
    main()
