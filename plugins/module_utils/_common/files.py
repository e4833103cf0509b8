# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reports on the controller: the same files written the same way for every report (diagnosis, audit)."""

import json
import os

from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import HostError


def as_json(report):
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


def write(directory, texts):
    """Write [(file name, text)] into `directory`, made if missing; return the paths."""
    paths = []
    try:
        os.makedirs(directory, exist_ok=True)
        for name, text in texts:
            path = os.path.join(directory, name)
            with open(path, "w") as handle:
                handle.write(text)
            paths.append(path)
    except OSError as exc:
        raise HostError("report_dir=%r: cannot write the report: %s" % (directory, exc))
    return paths
