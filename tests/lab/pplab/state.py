"""The lab's one state file: a write-ahead journal of what lab-up created.

Each resource is written to the journal *before* it is created, so a lab-up
killed at any point leaves a journal that names everything that may exist.
Lab-down walks it backwards and removes each entry in a way that is harmless
when the thing is already gone.
"""

import fcntl
import json
import os

RUN_DIR = os.environ.get("PACKETPATH_LAB_DIR", "/var/lib/packetpath-lab")


def path(*parts):
    return os.path.join(RUN_DIR, *parts)


class Journal:
    def __init__(self):
        self.file = path("state.json")
        self.data = {"topology": None, "resources": []}
        if os.path.exists(self.file):
            with open(self.file, encoding="utf-8") as handle:
                self.data = json.load(handle)

    @property
    def resources(self):
        return self.data["resources"]

    @property
    def topology(self):
        return self.data.get("topology")

    def set(self, **values):
        self.data.update(values)
        self.save()

    def record(self, kind, **details):
        entry = dict(kind=kind, **details)
        self.resources.append(entry)
        self.save()
        return entry

    def has(self, kind, **details):
        return any(r["kind"] == kind and all(r.get(k) == v for k, v in details.items()) for r in self.resources)

    def save(self):
        os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
        tmp = self.file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(self.data, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.file)

    def forget(self):
        if os.path.exists(self.file):
            os.unlink(self.file)
        self.data = {"topology": None, "resources": []}


class Lock:
    """One lab operation at a time on this machine."""

    def __init__(self):
        os.makedirs(os.path.dirname(RUN_DIR) or "/", exist_ok=True)
        self.handle = None

    def __enter__(self):
        self.handle = open(RUN_DIR + ".lock", "w", encoding="utf-8")  # pylint: disable=consider-using-with
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()
