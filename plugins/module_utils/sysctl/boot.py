# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The values the sysctl.d configuration gives at boot: every file, in the order the boot applies them.

Drift is the difference between what runs now and what the next boot (or
`sysctl --system`) will write, whichever file writes it.  The rules are
systemd-sysctl's (sysctl.d(5)), which procps follows for these keys:

- a file name in /etc/sysctl.d hides the same name in /run, /usr/local/lib,
  /usr/lib and /lib; a file linked to /dev/null is masked;
- all files are applied in the order of their names, so a later file wins;
- /etc/sysctl.conf comes last (Debian links it as 99-sysctl.conf: read once);
- a key written plainly wins over a glob line that matches it; a line
  `-key` (no value) takes the key out of the globs.
"""

import fnmatch
import os

from ansible_collections.packetpath.linux.plugins.module_utils.sysctl import conf, dropin

DIRECTORIES = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d")
SYSCTL_CONF = "/etc/sysctl.conf"


def normalize(key):
    """The dotted form, where a dot inside a name is a slash: `net/ipv4/conf/eth0.100/x` -> `net.ipv4.conf.eth0/100.x`."""
    for char in key:
        if char in "./":
            return key.translate(str.maketrans("./", "/.")) if char == "/" else key
    return key


def config_files(etc_directory=DIRECTORIES[0]):
    """The files the boot applies, in order.  `etc_directory` stands for /etc/sysctl.d (a named namespace's own)."""
    chosen = {}
    for directory in (etc_directory,) + DIRECTORIES[1:]:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            if name.endswith(".conf") and name not in chosen:
                chosen[name] = os.path.join(directory, name)
    files = [chosen[name] for name in sorted(chosen) if os.path.realpath(chosen[name]) != os.devnull]
    seen = set(os.path.realpath(path) for path in files)
    if os.path.isfile(SYSCTL_CONF) and os.path.realpath(SYSCTL_CONF) not in seen:
        files.append(SYSCTL_CONF)
    return files


class BootConfig:
    """Which value, from which file, the boot writes to a key."""

    def __init__(self, texts):
        """`texts`: [(path, file text)] in the order the boot applies them."""
        self.exact = {}
        self.globs = []
        self.excluded = set()
        for path, text in texts:
            for line in (text or "").splitlines():
                self._add(path, line.strip())

    @classmethod
    def from_files(cls, paths):
        return cls((path, dropin.read_file(path)) for path in paths)

    def _add(self, path, line):
        if not line or line[0] in "#;":
            return
        if "=" not in line:
            if line.startswith("-"):
                self.excluded.add(normalize(line[1:].strip()))
            return
        key, value = (part.strip() for part in line.split("=", 1))
        key = normalize(key.lstrip("-").strip())
        if conf.is_glob(key):
            self.globs.append((key, value, path))
        else:
            self.exact[key] = (value, path)

    def lookup(self, key):
        """(value text, path) the boot writes to `key` (dotted form), or None when no line touches it."""
        if key in self.exact:
            return self.exact[key]
        if key in self.excluded:
            return None
        for pattern, value, path in reversed(self.globs):
            if fnmatch.fnmatchcase(key, pattern):
                return value, path
        return None

    def value(self, family, interface, name):
        return self.lookup(conf.sysctl_key(family, interface, name))
