"""Debian release roots for lab hosts of another release (`userspace: debian11 | debian12 | debian13`).

A root is built once per machine with debootstrap and kept under the lab's state directory (`roots/`, which lab-down
leaves), keyed by a hash of what goes into it: the suite, the packages, the mirror. A later lab-up or test run
reuses it; a change of the package list builds a new one. Each host of that release then runs its sshd, and with it
every module, Python and tool Ansible starts there, in a mount namespace of its own whose `/` is an overlay over the
root (the host's changes go to its own upper layer, under the lab's state directory, gone with lab-down).
"""

import fcntl
import hashlib
import json
import os
import shutil

from . import system
from .state import path

# Each release the lab can give a host, by its Debian suite.
RELEASES = {"debian11": "bullseye", "debian12": "bookworm", "debian13": "trixie"}
# What the collection runs on a host (and preflight names where one is missing): the same packages
# tools/bootstrap.sh installs on this machine for the hosts that share its userspace.
PACKAGES = ("python3", "python3-pyroute2", "python3-jmespath", "iptables", "nftables", "iproute2", "procps",
            "openssh-server")
MIRROR = os.environ.get("PACKETPATH_DEBIAN_MIRROR", "http://deb.debian.org/debian")
ROOTS_DIR = os.environ.get("PACKETPATH_LAB_ROOTS") or path("roots")
BUILD_TIMEOUT = 900  # seconds: debootstrap of a minbase root took 65-72 s here


def machine_release():
    """debian12 for this machine's own userspace (from /etc/os-release), or None where it is none of RELEASES."""
    try:
        with open("/etc/os-release", encoding="utf-8") as handle:
            fields = dict(line.rstrip("\n").split("=", 1) for line in handle if "=" in line)
    except OSError:
        return None
    release = "%s%s" % (fields.get("ID", "").strip('"'), fields.get("VERSION_ID", "").strip('"'))
    return release if release in RELEASES else None


def needs_root(release):
    """Whether a host of `release` needs a root of its own: not where it is this machine's own userspace."""
    return release is not None and release != machine_release()


def key(release):
    recipe = {"suite": RELEASES[release], "packages": sorted(PACKAGES), "mirror": MIRROR, "variant": "minbase"}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def root_dir(release):
    return os.path.join(ROOTS_DIR, "%s-%s" % (release, key(release)))


def ensure(release, log=print):
    """The root of `release`, built first where this machine has none yet (under a lock: two shards building the same
    root wait for each other, and the second reuses the first's)."""
    done = root_dir(release)
    if os.path.exists(os.path.join(done, ".complete")):
        return done
    os.makedirs(ROOTS_DIR, exist_ok=True)
    with open(os.path.join(ROOTS_DIR, release + ".lock"), "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(done, ".complete")):
            return done
        building = done + ".building"
        shutil.rmtree(building, ignore_errors=True)  # a build killed half-way
        shutil.rmtree(done, ignore_errors=True)
        log("building the %s root (debootstrap %s, once per machine): %s" % (release, RELEASES[release], done))
        system.run(["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), RELEASES[release],
                    building, MIRROR], timeout=BUILD_TIMEOUT)
        for stale in os.listdir(ROOTS_DIR):  # roots of an older recipe of this release
            if stale.startswith(release + "-") and stale != os.path.basename(building):
                shutil.rmtree(os.path.join(ROOTS_DIR, stale), ignore_errors=True)
        os.rename(building, done)
        with open(os.path.join(done, ".complete"), "w", encoding="utf-8") as handle:
            handle.write(json.dumps({"release": release, "key": key(release), "packages": PACKAGES}) + "\n")
    return done


# Run in the host's network namespace by `unshare --mount`: its own mounts, then sshd with the root as `/`. The
# machine's /dev, a /proc and /sys of the host's namespace, a fresh /run, and the lab's state directory (keys, sshd
# configuration, pid file, logs) at its own path. Arguments: lower, upper, work, merged, state directory, then sshd's.
ENTER = r"""
set -eu
lower=$1 upper=$2 work=$3 merged=$4 state=$5
shift 5
mount -t overlay pp-root -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$merged"
mount -t proc proc "$merged/proc"
mount -t sysfs sysfs "$merged/sys"
mount --rbind /dev "$merged/dev"
mount -t tmpfs -o mode=0755 pp-run "$merged/run"
mkdir -p "$merged/run/sshd" "$merged$state"
mount --bind "$state" "$merged$state"
exec chroot "$merged" "$@"
"""


def prepare(host, lower, alternatives):
    """The host's layers (upper, work, merged) under the lab's state directory, with the files that make the host its
    own written into its upper layer: /etc/hosts, and /etc/alternatives for its iptables flavour. Returns the
    arguments of ENTER before sshd's."""
    top = path("hosts", host.name)
    upper, work, merged = (os.path.join(top, name) for name in ("upper", "work", "merged"))
    for folder in (upper, work, merged, os.path.join(upper, "etc", "alternatives")):
        os.makedirs(folder, exist_ok=True)
    shutil.copyfile("/etc/netns/%s/hosts" % host.netns, os.path.join(upper, "etc", "hosts"))
    for name, target in alternatives.items():
        link = os.path.join(upper, "etc", "alternatives", name)
        if os.path.lexists(os.path.join(lower, "etc", "alternatives", name)):
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(target, link)
    return [lower, upper, work, merged]
