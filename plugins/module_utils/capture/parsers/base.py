# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the three trace parsers share: counting what they cannot read, and the header cache."""

from ansible_collections.packetpath.linux.plugins.module_utils._common.memo import Memo
from ansible_collections.packetpath.linux.plugins.module_utils.capture.event import Run

SAMPLES = 5


class LineParser:
    """`parse(line, line_no)` returns a TraceEvent, or None for a line that is not a hop.

    A line that should have been one and is not (cut short, garbled) is counted in
    `unparsable`, and the first few are kept in `samples`: never an exception.
    """

    fmt = None
    parse_header = None  # header text -> packet dict, or None where the text is not one

    def __init__(self):
        self.unparsable = 0
        self.samples = []
        self.other_lines = 0
        self.lines_read = 0
        # A packet's header is parsed once, then shared by every hop that printed it.
        self.header = Memo(self.parse_header)

    def parse(self, line, line_no=0):
        raise NotImplementedError

    def runs(self, lines, line_no=0):
        """One Run per hop; the kernel-log parser makes longer ones."""
        for line_no, line in enumerate(lines, line_no + 1):
            event = self.parse(line, line_no)
            if event is not None:
                yield Run.of_event(event)
        self.lines_read = line_no

    def bad(self, line):
        self.unparsable += 1
        if len(self.samples) < SAMPLES:
            self.samples.append(line.rstrip("\n")[:300])

    def resolve(self, event):
        """Fill in what the parser left for later (the kernel log's wall time); nothing for most formats."""

    def headers_of(self, text):
        raise NotImplementedError
