# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each host's packet drawn on the netfilter hook diagram: inline SVG for report.html, nothing fetched."""

from html import escape

from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import finding


# Where each step of a path sits on the diagram (x, y), and the arrows between them.
NODES = {
    "prerouting": (20, 70), "routing decision": (190, 70), "forward": (360, 70), "postrouting": (530, 70),
    "input": (190, 160), "local delivery": (190, 240), "output": (360, 240), "re-route": (530, 160),
    "local process": (20, 240),
}
# A packet the host sends starts at a local process and its own routing decision, not at the arriving packets' one.
EDGES = [("prerouting", "routing decision"), ("routing decision", "forward"), ("forward", "postrouting"),
         ("local process", "output"),
         ("routing decision", "input"), ("input", "local delivery"), ("output", "re-route"),
         ("re-route", "postrouting"), ("output", "postrouting")]
WIDTH, HEIGHT = 150, 36


def _steps(path):
    steps = [step.split(" (")[0].strip() for step in (path or "").split("\u2192")]
    if steps[:2] == ["routing decision", "output"]:  # a packet this host sends: its own routing decision
        steps[0] = "local process"
    if steps and steps[-1].startswith("out "):  # it left the host: through postrouting, traced there or not
        steps[-1:] = [] if "postrouting" in steps else ["postrouting"]
    return steps


def svg(verdict):
    steps = _steps(verdict.get("path"))
    stopped = verdict.get("fate") not in finding.PASSED + (None,)
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="700" height="300" role="img" '
             'aria-label="netfilter path of %s">' % escape(verdict["host"])]
    for start, end in EDGES:
        (x1, y1), (x2, y2) = NODES[start], NODES[end]
        taken = start in steps and end in steps
        parts.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="%d"/>' % (
            x1 + WIDTH // 2, y1 + HEIGHT // 2, x2 + WIDTH // 2, y2 + HEIGHT // 2, "#2a7" if taken else "#bbb",
            4 if taken else 1))
    last = steps[-1] if steps else None
    for name, (x, y) in NODES.items():
        colour = "#fdd" if stopped and name == last else "#dfd" if name in steps else "#f4f4f4"
        parts.append('<rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="%s" stroke="#555"/>'
                     '<text x="%d" y="%d" font-size="13" text-anchor="middle" font-family="sans-serif">%s</text>' % (
                         x, y, WIDTH, HEIGHT, colour, x + WIDTH // 2, y + 23, escape(name)))
        if stopped and name == last:
            parts.append('<text x="%d" y="%d" font-size="26" fill="#c00" font-family="sans-serif">&#x2717;</text>'
                         % (x + WIDTH - 22, y + 27))
    for offset, rewrite in enumerate(verdict.get("evidence", {}).get("rewrites") or []):
        x, y = NODES.get("re-route" if rewrite["field"] == "out" else rewrite["hook"], (20, 60))
        parts.append('<text x="%d" y="%d" font-size="11" fill="#05a" font-family="sans-serif">%s %s &#x2192; %s</text>'
                     % (x, y - 6 - 12 * offset, escape(rewrite["field"]), escape(str(rewrite["before"])),
                        escape(str(rewrite["after"]))))
    parts.append('<text x="20" y="285" font-size="12" font-family="sans-serif">%s</text>'
                 % escape(verdict.get("words") or ""))
    parts.append("</svg>")
    return "".join(parts)
