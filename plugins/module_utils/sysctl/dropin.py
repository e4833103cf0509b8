# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Our sysctl.d drop-in file: where it lives, and reading and rewriting only our lines in it."""

import os
import re

from ansible_collections.packetpath.linux.plugins.module_utils._common import files
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import HostError, OptionError
from ansible_collections.packetpath.linux.plugins.module_utils._common.inputs import check_paths

DEFAULT_FILE = "90-packetpath-interfaces.conf"


def sysctl_d(netns_name):
    """The sysctl.d directory of /etc a host's boot reads; for a named network namespace, the one `ip netns exec`
    binds over /etc/sysctl.d."""
    return os.path.join("/etc/netns", netns_name, "sysctl.d") if netns_name else "/etc/sysctl.d"


def persistent_path(file_name, netns_name):
    """Our file, in the sysctl.d directory of the host (or of the named network namespace)."""
    if "/" in file_name or file_name in (".", "..") or not file_name.endswith(".conf"):
        raise OptionError("persistent_file", file_name, "a file name ending in .conf, without a directory")
    if any(ord(char) < 32 or ord(char) == 127 for char in file_name):  # a line break in a name ls and logs show
        raise OptionError("persistent_file", file_name, "a file name cannot hold a control character")
    check_paths({"persistent_file": file_name}, ("persistent_file",))
    return os.path.join(sysctl_d(netns_name), file_name)


HEADER = ("# Managed by packetpath.linux.interface_sysctl: it changes only the keys it sets here.\n"
          "# Other lines are kept as they are.\n")
_LINE = re.compile(r"^\s*-?\s*([A-Za-z0-9_.*?/\[\]@:-]+)\s*=\s*(\S+)\s*$")


def read_file(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def file_values(text):
    """{sysctl key: value text} of a sysctl.d file."""
    values = {}
    for line in (text or "").splitlines():
        match = _LINE.match(line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def updated_file(text, wanted, removed):
    """The file's text with `wanted` {key: value} set and `removed` keys gone; other lines untouched."""
    lines = (text or HEADER).splitlines()
    pending = dict(wanted)
    out = []
    for line in lines:
        match = _LINE.match(line)
        key = match.group(1) if match else None
        if key in removed:
            continue
        if key in pending:
            out.append("%s = %s" % (key, pending.pop(key)))
            continue
        out.append(line)
    out.extend("%s = %s" % (key, value) for key, value in pending.items())
    return "\n".join(out) + "\n"


def check_not_linked(path):
    """Refuse a file of ours, or a directory on its way below /etc (sysctl.d; a namespace's /etc/netns and
    /etc/netns/NAME too), that is a symbolic link: writing would follow it (a directory) or copy its target's lines
    into ours (the file), both places we did not choose."""
    ways = [os.path.dirname(path), path]
    while ways[0].startswith("/etc/") and os.path.dirname(ways[0]) != "/etc":
        ways.insert(0, os.path.dirname(ways[0]))
    for each in ways:
        if os.path.islink(each):
            raise HostError("%s is a symbolic link (to %s): packetpath writes its sysctl.d file only as a plain file in a "
                            "plain directory; nothing was changed" % (each, os.readlink(each)))


def put_file(path, text):
    """The file as `text` says: written (atomically), or removed where text is None."""
    if text is None:
        os.unlink(path)
    else:
        write_file(path, text)


def write_file(path, text):
    """Atomically (files.write_text), in a directory made 0755 where missing."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    files.write_text(path, text)


def has_keys(text):
    return bool(file_values(text))
