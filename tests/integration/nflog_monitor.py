"""Print the legacy TRACE lines of this network namespace, read live from NFLOG group 0 by the collection's own
reader, for the seconds given: the legacy twin of `xtables-monitor --trace` in the lab tests.

    ip netns exec pp-node1 python3 nflog_monitor.py <build/collections> <seconds> <ready file>

The ready file is created once group 0 is bound, before any packet is read.
"""

import sys

sys.path.insert(0, sys.argv[1])

# pylint: disable-next=wrong-import-position
from ansible_collections.packetpath.linux.plugins.module_utils.capture.nflog_reader import NflogStream

for line in NflogStream(duration=float(sys.argv[2]), ready_file=sys.argv[3]).lines():
    sys.stdout.write(line)
    sys.stdout.flush()
