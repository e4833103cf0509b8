# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the rest of a module inside another network namespace.

The module process itself enters the namespace (setns), so everything after it,
commands it starts, /proc/sys/net and netlink sockets alike, sees that
namespace.  Mount and PID namespaces are not changed.
"""

import ctypes
import ctypes.util
import errno
import os
import re

from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/run/netns"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

NETNS_ARGUMENT_SPEC = {"netns": {"type": "str"}}


def resolve(value):
    """A named namespace, a /proc/<pid>/ns/net-like path, or a PID -> the path to open. The one check of every
    module's netns option: what passes here names a network namespace file, exactly as given."""
    text = str(value)
    if not text.strip():
        raise OptionError("netns", value, "empty: leave netns out for the host's own namespace")
    if text != text.strip():
        raise OptionError("netns", value, "has spaces around it")
    if text.isdigit():
        path = "/proc/%s/ns/net" % text
    elif text.startswith("/"):
        path = text
    elif _NAME.fullmatch(text) and text not in (".", ".."):
        path = os.path.join(NETNS_RUN_DIR, text)
    else:
        raise OptionError("netns", value, "not a namespace name, a path or a PID")
    try:
        found = os.stat(path)
    except OSError as exc:
        raise OptionError("netns", value, "%s does not exist" % path if exc.errno == errno.ENOENT
                          else "%s: %s" % (path, exc.strerror))
    # A FIFO or a plain file would hang or fail in setns: namespace files live on nsfs, as our own does.
    if found.st_dev != os.stat("/proc/self/ns/net").st_dev:
        raise OptionError("netns", value, "%s is not a namespace file" % path)
    return path


def named(value):
    """The name under /run/netns (and /etc/netns) for a named namespace; None for this one, a path or a PID."""
    if value is None:
        return None
    resolve(value)
    return None if str(value).isdigit() or str(value).startswith("/") else str(value)


def _setns(fd):
    """os.setns where Python has it (3.12+); the C library's setns(2) on the older Pythons targets may run."""
    if hasattr(os, "setns"):
        os.setns(fd, CLONE_NEWNET)
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def enter(value):
    """Move this process into the namespace named by `value`; a no-op for None (an empty string is refused)."""
    if value is None:
        return None
    path = resolve(value)
    fd = os.open(path, os.O_RDONLY)
    try:
        _setns(fd)
    except OSError as exc:
        raise OptionError("netns", value, "cannot enter %s: %s" % (path, exc.strerror))
    finally:
        os.close(fd)
    return path
