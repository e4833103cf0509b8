# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Routing table names, as /etc/iproute2/rt_tables (and rt_tables.d) give them."""

import glob
import os

FILES = ("/usr/share/iproute2/rt_tables", "/usr/lib/iproute2/rt_tables", "/etc/iproute2/rt_tables")
DIRECTORIES = ("/usr/share/iproute2/rt_tables.d", "/etc/iproute2/rt_tables.d")
BUILT_IN = {0: "unspec", 253: "default", 254: "main", 255: "local"}


def parse(text):
    names = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2:
            try:
                names[int(words[0], 0)] = words[1]
            except ValueError:
                continue
    return names


class RtTables:
    def __init__(self, names=None):
        if names is None:
            names = dict(BUILT_IN)
            paths = list(FILES) + [p for d in DIRECTORIES for p in sorted(glob.glob(os.path.join(d, "*.conf")))]
            for path in paths:
                try:
                    with open(path) as handle:
                        names.update(parse(handle.read()))
                except OSError:
                    continue
        self.names = names

    def name(self, table_id):
        """The table's name where one is given, else its number (as `ip` prints it)."""
        return self.names.get(table_id, table_id)
