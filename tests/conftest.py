"""Make the checkout importable as ansible_collections.packetpath.linux (make collection links it)."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, "build", "collections")
if not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "packetpath", "linux")):
    raise RuntimeError("build/collections is missing: run the tests through make (make unit / make integration)")
for path in (COLLECTIONS, os.path.join(ROOT, "tests", "lab"), os.path.join(ROOT, "tests", "integration"),
             os.path.join(ROOT, "tests", "unit")):
    if path not in sys.path:
        sys.path.insert(0, path)
