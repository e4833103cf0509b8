"""Write a large kernel log in the seed's format: its two real traces, repeated with new IDs, ports and times.

Every line is one of the seed's own lines with IP ID, TCP SEQ, source port and time stamps moved on,
so the parser meets exactly the shapes the original incident printed, at any size.
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TRACES = os.path.join(HERE, "..", "tests", "unit", "fixtures", "traces")
SEEDS = ("seed-ceph3-output-dnat-kern.log", "seed-ceph2-prerouting-rp-filter-kern.log")


def templates():
    """Each seed trace as a format string with the fields that differ per packet left open."""
    out = []
    for name in SEEDS:
        with open(os.path.join(TRACES, name), encoding="utf-8") as handle:
            text = handle.read()
        text = text.replace("%", "%%")
        text = re.sub(r"\[\d+\.\d+\]", "[%(uptime)s]", text)
        text = re.sub(r" ID=\d+ ", " ID=%(ip_id)d ", text)
        text = re.sub(r"SEQ=\d+ ", "SEQ=%(seq)d ", text)
        text = re.sub(r"SPT=\d+ ", "SPT=%(sport)d ", text)
        out.append(text)
    return out


def packet_fields(number):
    return {"uptime": "%d.%06d" % (300000 + number // 1000, number % 1000 * 997),
            "ip_id": number % 65536, "seq": (number * 2654435761) % 4294967296, "sport": 10000 + number % 50000}


def write(path, megabytes):
    forms = templates()
    target = megabytes * 1024 * 1024
    written = number = 0
    with open(path, "w", encoding="utf-8") as handle:
        while written < target:
            text = forms[number % 2] % packet_fields(number)
            handle.write(text)
            written += len(text)
            number += 1
    return number


if __name__ == "__main__":
    print(write(sys.argv[1], int(sys.argv[2])))
