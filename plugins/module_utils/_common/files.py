# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files written atomically: the reports on the controller (diagnosis, audit), the same way for each, and the
sysctl.d file on a host (sysctl.dropin)."""

import json
import os
import tempfile
import time

from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import HostError


def as_json(report):
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


def write_run(directory, texts, started):
    """Write a run's report into a directory of its own under `directory` (its UTC time, to the microsecond, so two
    runs never share one) and point `directory/latest` at it; nothing of an earlier run is overwritten. Returns
    the paths written (through `latest`'s target)."""
    name = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started)) + ".%06dZ" % int((started % 1) * 1e6)
    paths = write(os.path.join(directory, name), texts)
    link = os.path.join(directory, "latest")
    try:
        temporary = os.path.join(directory, ".latest.%d" % os.getpid())
        if os.path.lexists(temporary):
            os.unlink(temporary)
        os.symlink(name, temporary)
        os.replace(temporary, link)  # a reader sees the old run or the new one
    except OSError as exc:
        raise HostError("report_dir=%r: cannot point latest at the run: %s" % (directory, exc))
    return paths


RANDOM_PART = 8  # what mkstemp adds to a temporary name's prefix


def fits(name):
    """Whether a file `name`, and the temporary name write() writes it through first, fit in a directory entry."""
    return len(_temporary_prefix(name).encode("utf-8", "surrogateescape")) + RANDOM_PART <= 255


def _temporary_prefix(name):
    return ".%s." % name


def write_text(path, text, mode=0o644, temporary_prefix=None):
    """One file, atomically: written to a temp file of its own beside it (an unpredictable name: nothing can be
    planted in its place) and renamed over the old one, so a reader sees the old file or the new one, never half of
    one, and a symlink planted at its name is replaced, never written through. A failed write (a full disk) leaves
    no temp file. The one writer of the collection's files: the reports, the sysctl.d file, the host's records
    (hoststate; the expiry sleeper keeps a copy of its own, as it runs without the collection)."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path),
                               prefix=temporary_prefix or _temporary_prefix(os.path.basename(path)))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write(directory, texts):
    """Write [(file name, text)] into `directory`, made if missing, each with write_text; return the paths."""
    paths = []
    try:
        os.makedirs(directory, exist_ok=True)
        for name, text in texts:
            paths.append(os.path.join(directory, name))
            write_text(paths[-1], text)
    except OSError as exc:
        raise HostError("report_dir=%r: cannot write the report: %s" % (directory, exc))
    return paths
