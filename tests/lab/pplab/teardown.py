"""lab-down: undo what the journal says lab-up created, newest first.

Every step is harmless when its resource is already gone, so lab-down can run
twice, and after a lab-up that was killed half-way.
"""

import glob
import os
import shutil
import sys

from . import system
from .roots import ROOTS_DIR
from .state import RUN_DIR, Journal

# SO_NETNS_COOKIE (71) of the namespace it runs in, as the collection's hoststate names its records; "" before 5.14.
NETNS_COOKIE = ("import socket, struct\n"
                "try:\n"
                "    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
                "    print(struct.unpack('=Q', s.getsockopt(socket.SOL_SOCKET, 71, 8))[0])\n"
                "except OSError:\n"
                "    print('')\n")


def _close_control_masters(entry):
    # Ansible's ControlPersist masters live in the root namespace and keep an
    # `sshd: root@notty` child inside the host's namespace: close them politely.
    for socket_path in glob.glob(os.path.join(entry["path"], "*")):
        system.run(["ssh", "-o", "ControlPath=" + socket_path, "-O", "exit", "packetpath-lab"], check=False)


def _end_process(entry):
    system.end_process(entry["pid"], entry.get("started"))


def _delete_netns(entry):
    name = entry["name"]
    if name not in system.run(["ip", "netns", "list"]).split():
        return
    # Whatever runs inside a namespace we created was started from it (sshd sessions):
    # it holds the namespace, and with it the veth peers, until it ends.
    for pid in system.netns_pids(name):
        system.end_process(pid, system.start_time(pid))
    # The collection keeps per-namespace records (expiry sleepers, log bindings) under
    # /run/packetpath/net-<inode>-<cookie> (net-<inode> before Linux 5.14); the sleepers just ended with the
    # namespace's processes. The cookie is asked inside: another namespace's records under the same inode stay.
    try:
        records = "/run/packetpath/net-%d" % os.stat(os.path.join("/run/netns", name)).st_ino
        cookie = system.run([sys.executable, "-c", NETNS_COOKIE], netns=name).strip()
    except (OSError, system.CommandError):
        records, cookie = None, ""
    system.run(["ip", "netns", "del", name])
    if records:
        shutil.rmtree("%s-%s" % (records, cookie) if cookie else records, ignore_errors=True)


def _delete_root_link(entry):
    if os.path.exists("/sys/class/net/" + entry["name"]):
        system.run(["ip", "link", "del", entry["name"]], check=False)


def _remove_etc_netns(entry):
    if entry["path"].startswith("/etc/netns/pp-"):
        shutil.rmtree(entry["path"], ignore_errors=True)


def _remove_dir(entry):
    try:
        os.rmdir(entry["path"])
    except OSError:
        pass


def _restore_root_sysctl(entry):
    """Journals of labs built before the lab stopped setting nf_log_all_netns may still name it."""
    system.run(["sysctl", "-qw", "%s=%s" % (entry["key"], entry["old"])], check=False)


UNDO = {
    "control_dir": _close_control_masters,
    "process": _end_process,
    "netns": _delete_netns,
    "root_link": _delete_root_link,
    "etc_netns": _remove_etc_netns,
    "dir": _remove_dir,
    "root_sysctl": _restore_root_sysctl,
}


def down():
    journal = Journal()
    undone = 0
    # Processes first (they hold namespaces), then the rest newest first.
    ordered = sorted(reversed(journal.resources), key=lambda r: r["kind"] not in ("control_dir", "process"))
    for entry in ordered:
        UNDO[entry["kind"]](entry)
        undone += 1
    journal.forget()
    # Everything but the release roots, a cache that outlives the lab (roots.py): reused by the next lab-up.
    for name in os.listdir(RUN_DIR) if os.path.isdir(RUN_DIR) else []:
        target = os.path.join(RUN_DIR, name)
        if target == ROOTS_DIR:
            continue
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target, ignore_errors=True)
        else:
            os.unlink(target)
    if os.path.isdir(RUN_DIR) and not os.listdir(RUN_DIR):
        os.rmdir(RUN_DIR)
    print("lab down: %d resources removed or already gone" % undone)
