# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One bounded memo for the hot paths (trace parsing reads millions of lines that repeat a few thousand shapes)."""


class Memo(dict):
    """`memo[key]` is `make(key)`, computed once per key.

    A hit is a plain dict lookup (no Python call); a miss calls `make`.  Past `limit` keys the memo starts afresh,
    so memory stays bounded whatever the input.
    """

    __slots__ = ("make", "limit")

    def __init__(self, make, limit=4096):
        super().__init__()
        self.make = make
        self.limit = limit

    def __missing__(self, key):
        if len(self) >= self.limit:
            self.clear()
        value = self[key] = self.make(key)
        return value
