"""docs/drop_reasons.md says, for every drop reason the kernel's tracepoint lists (Linux 6.18, as recorded) and every
reason the catalogue names, which causes explain it or why it stays kernel_drop: each once, and the first table is
the catalogue's."""

import os
import re

from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import causes
from recorded import fixture_path

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 5))


def tables():
    """(explained {reason: [cause ids]}, staying [reason]) as the doc's two tables write them."""
    with open(os.path.join(ROOT, "docs", "drop_reasons.md"), encoding="utf-8") as handle:
        text = handle.read()
    explained_part, staying_part = text.split("## Reasons that stay `kernel_drop`", 1)
    explained = {}
    for line in explained_part.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if line.startswith("| `") and len(cells) == 2:
            explained[cells[0].strip("`")] = re.findall(r"`([a-z0-9_]+)`", cells[1])
    staying = [reason for line in staying_part.splitlines() if line.startswith("| `")
               for reason in re.findall(r"`([A-Z0-9_]+)`", line.strip().strip("|").split(" | ")[0])]
    return explained, staying


def tracepoint_reasons():
    with open(fixture_path("drop_reasons", "kfree_skb-format-6.18.txt"), encoding="utf-8") as handle:
        return set(re.findall(r'"([A-Z0-9_]+)"', handle.read()))


def test_the_first_table_is_the_catalogue_s_reasons_and_the_causes_that_take_them():
    explained, _staying = tables()
    catalogue = {}
    for cause in causes.CATALOGUE.values():
        for reason in cause.drop_reasons:
            catalogue.setdefault(reason, []).append(cause.id)
    assert explained == catalogue


def test_every_reason_of_the_kernel_is_in_one_table_once():
    explained, staying = tables()
    assert len(staying) == len(set(staying)), [reason for reason in staying if staying.count(reason) > 1]
    plain = set(reason for reason in explained if ":" not in reason)  # REASON:function keeps the reason staying
    assert not plain & set(staying), plain & set(staying)
    assert tracepoint_reasons() <= plain | set(staying), tracepoint_reasons() - plain - set(staying)
