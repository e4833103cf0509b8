"""`make bench`: trace_results' engine on a 500 MB kernel log in the seed's format, against grep in the same run.

1. Fetch one packet by its flow (proto, source port) and compare with the baseline
   `grep TRACE file | grep 'ID=<id> '`, each timed three times, best of three.
2. Parse every TRACE line into packets and hops (max_packets bounds what is kept): MB/s on one core.
Peak memory of each is the child's maximum resident set (ru_maxrss), Python itself included.
Targets: fetch <= 1.5x grep with peak < 100 MB (issue #4); parse >= 150 MB/s (issue #41), held against the last
release as its time in grep pipelines' (bench/figures.py).
"""

import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "build", "collections"))

import figures  # noqa: E402  pylint: disable=wrong-import-position
from make_kernel_log import packet_fields, write  # noqa: E402  pylint: disable=wrong-import-position

SIZE_MB = int(os.environ.get("BENCH_MB", "500"))
PACKET = 4242  # the packet fetched: an OUTPUT trace of the seed's shape, DNAT and re-route included

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.packetpath.linux.plugins.module_utils.flow import Flow
from ansible_collections.packetpath.linux.plugins.module_utils.capture.fetch import Fetch, TraceReader
from ansible_collections.packetpath.linux.plugins.module_utils.capture import sources

class NoHost:
    def which(self, name):
        return None

    def run(self, argv, data=None):
        return 1, "", ""

mode, path = sys.argv[2], sys.argv[3]
started = time.perf_counter()
if mode == "fetch":
    flow = Flow.from_params({"proto": "tcp", "sport": sys.argv[4]})
    result = Fetch(NoHost(), source="file", path=path, flow=flow, host_ruleset=False).run()
    summary = {"packets": [(p["id"], p["fate"], len(p["hops"])) for p in result["packets"]]}
else:
    reader = TraceReader("kernel_log", max_packets=int(sys.argv[4]))
    packets = reader.read(sources.read_file(path))
    summary = {"stats": reader.stats, "kept_hops": sum(len(p["hops"]) for p in packets)}
summary["seconds"] = time.perf_counter() - started
summary["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps(summary))
"""


def child(*args):
    out = subprocess.run([sys.executable, "-c", CHILD, os.path.join(ROOT, "build", "collections")] + list(args),
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def grep_pipeline(path, ip_id):
    started = time.perf_counter()
    first = subprocess.Popen(["grep", "TRACE", path], stdout=subprocess.PIPE)
    second = subprocess.run(["grep", "ID=%d " % ip_id], stdin=first.stdout, capture_output=True, check=False)
    first.stdout.close()
    first.wait()
    return time.perf_counter() - started, second.stdout.decode().count("\n")


def best(runs):
    return min(runs, key=lambda run: run["seconds"])


def main():
    directory = os.path.join(tempfile.gettempdir(), "packetpath-bench")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "kern-%dMB.log" % SIZE_MB)
    if not os.path.exists(path) or os.path.getsize(path) < SIZE_MB * 1024 * 1024:
        print("writing %s (%d MB, the seed's two traces with new IDs, ports and times)" % (path, SIZE_MB))
        write(path, SIZE_MB)
    size_mb = os.path.getsize(path) / 1e6
    fields = packet_fields(PACKET)
    subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)  # both read from the page cache

    grep_times = [grep_pipeline(path, fields["ip_id"]) for _attempt in range(3)]
    grep_seconds = min(seconds for seconds, _count in grep_times)
    fetch = best([child("fetch", path, str(fields["sport"])) for _attempt in range(3)])
    ratio = fetch["seconds"] / grep_seconds
    print("fetch one packet by flow (tcp sport %d) in %.0f MB" % (fields["sport"], size_mb))
    print("  grep TRACE | grep 'ID=%d ': %.3f s (%d lines)" % (fields["ip_id"], grep_seconds, grep_times[0][1]))
    print("  trace_results engine:       %.3f s, peak %.1f MB, packets %s" % (
        fetch["seconds"], fetch["max_rss_mb"], fetch["packets"]))
    print("  ratio to grep: %.2fx (target <= 1.5x: %s); peak memory target < 100 MB: %s" % (
        ratio, "met" if ratio <= 1.5 else "MISSED", "met" if fetch["max_rss_mb"] < 100 else "MISSED"))
    figures.add("trace_results.fetch_one_packet", ratio, "of grep", target=1.5)
    figures.add("trace_results.fetch_peak_memory", None, value=fetch["max_rss_mb"], unit="MB", at_most=100)

    parse = best([child("parse", path, "1000") for _attempt in range(2)])
    rate = size_mb / parse["seconds"]
    stats = parse["stats"]
    print("parse every TRACE line into packets and hops (max_packets 1000, best of 2)")
    print("  %d lines, %d packets, %d kept (%d hops): %.2f s, %.1f MB/s, peak %.1f MB; %.1fx grep's time" % (
        stats["trace_events"], stats["packets_seen"], stats["packets_kept"], parse["kept_hops"], parse["seconds"],
        rate, parse["max_rss_mb"], parse["seconds"] / grep_seconds))
    print("  target >= 150 MB/s: %s" % ("met" if rate >= 150 else "MISSED"))
    figures.add("trace_results.parse_every_line", parse["seconds"] / grep_seconds, "of grep's time", value=rate,
                unit="MB/s", at_least=150)
    return 0


if __name__ == "__main__":
    sys.exit(main())
