# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reports on the controller: the same files written the same way for every report (diagnosis, audit)."""

import json
import os


def as_json(report):
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


def write(directory, texts):
    """Write [(file name, text)] into `directory`, made if missing; return the paths. Raises OSError."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    for name, text in texts:
        path = os.path.join(directory, name)
        with open(path, "w") as handle:
            handle.write(text)
        paths.append(path)
    return paths
