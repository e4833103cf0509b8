"""Where the recorded output lives: real output from the lab or the seed, never invented lines."""

import os

from ansible_collections.packetpath.linux.plugins.module_utils.capture import sources
from ansible_collections.packetpath.linux.plugins.module_utils.capture.fetch import TraceReader, detect_format

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout: schemas/


def fixture_path(*parts):
    return os.path.join(FIXTURES, *parts)


def packets_of(name):
    """The packets trace_results groups a recorded trace (under fixtures/traces/) into, its format told from its
    first lines as the module tells it."""
    lines = list(sources.read_file(fixture_path("traces", name)))
    fmt, _head = detect_format(iter(lines))
    return TraceReader(fmt).read(lines)
