# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pyroute2 releases the route engine supports: 0.7 (Debian 12's and 13's) to 0.9. An older one imports, but its
rtnetlink messages are not the ones the engine decodes (0.5.14, Debian 11's, gives attributes as plain strings), so
a host that has one looks its routes up through `ip -j`, and the result says why. (The NFLOG reader uses only the
message base classes, alike from 0.5.14 on: it takes any.)"""

OLDEST = (0, 7)


def _release(text):
    numbers = []
    for part in str(text).split("."):
        digits = "".join(char for char in part if char.isdigit()) if part[:1].isdigit() else ""
        if not digits:
            break
        numbers.append(int(digits))
    return tuple(numbers)


def too_old(version):
    """Why pyroute2 `version` (its text) is not used, or None where it is in the supported range (or not a version)."""
    if not _release(version or "") or _release(version)[:2] >= OLDEST:
        return None
    return "pyroute2 %s is older than %s, the oldest this collection supports" % (version, ".".join(map(str, OLDEST)))


def installed():
    """The installed pyroute2's version by its package metadata, or None; without importing it (which is slow)."""
    from importlib import metadata  # pylint: disable=import-outside-toplevel  # only where __version__ says nothing
    try:
        return metadata.version("pyroute2")
    except metadata.PackageNotFoundError:
        return None


def unsupported(pyroute2):
    """Why this imported pyroute2 package is not used, or None where it is in the supported range (or its version
    cannot be told)."""
    version = getattr(pyroute2, "__version__", None)
    if not _release(version or ""):  # Debian's 0.7.2 says "unknown": its package metadata knows
        version = installed()
    return too_old(version)
