# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reports on the controller: the same files written the same way for every report (diagnosis, audit)."""

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


def write(directory, texts):
    """Write [(file name, text)] into `directory`, made if missing; return the paths. Each file is written to a
    temp file of its own and renamed over the old one: a reader sees the old report or the new one, and a symlink
    planted at a report's name is replaced, never written through."""
    paths = []
    try:
        os.makedirs(directory, exist_ok=True)
        for name, text in texts:
            path = os.path.join(directory, name)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=_temporary_prefix(name))
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
            paths.append(path)
    except OSError as exc:
        raise HostError("report_dir=%r: cannot write the report: %s" % (directory, exc))
    return paths
