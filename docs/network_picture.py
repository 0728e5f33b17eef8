"""Draw an agreement network answer (JSON) as an SVG: the picture in the README.

    .venv/bin/python docs/network_picture.py docs/founding-network.json docs/founding-network.svg

Neither matplotlib nor numpy (which networkx's layouts need) is a dependency, so the SVG
is written by hand, the nodes evenly on a circle in id order (what networkx's
``circular_layout`` does), an edge per listed pair (green when the actors agree more
than they disagree, red when less, grey when even; its width grows with congruence +
conflict), labelled congruence / conflict. The first window is drawn.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

WIDTH, HEIGHT, RADIUS = 800, 600, 200
HALO = ' stroke="white" stroke-width="4" paint-order="stroke"'


def svg(answer: dict[str, Any]) -> str:
    window = answer["windows"][0]
    ids = [n["id"] for n in window["nodes"]]
    turn = 2 * math.pi / len(ids)
    place = {node: (math.cos(i * turn), math.sin(i * turn)) for i, node in enumerate(ids)}

    def at(node: str) -> tuple[float, float]:
        x, y = place[node]
        return WIDTH / 2 + x * RADIUS, HEIGHT / 2 - y * RADIUS

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="13">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="16" y="24" font-size="14">{escape(window["start"][:10])} to '
        f"{escape(window['stop'][:10])}: {window['statements']} statements, polarization "
        f"{window['polarization']:.2f}</text>",
    ]
    labels = []
    for edge in window["edges"]:
        (x1, y1), (x2, y2) = at(edge["source"]), at(edge["target"])
        congruence, conflict = edge["congruence"], edge["conflict"]
        colour = (
            "#2e7d32" if congruence > conflict else "#c62828" if conflict > congruence else "#777"
        )
        width = 1.5 + 2.5 * (congruence + conflict)
        parts.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{colour}" stroke-width="{width:.1f}" stroke-opacity="0.8"/>'
        )
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2
        labels.append(
            f'<text x="{mx:.1f}" y="{my + 4:.1f}" text-anchor="middle" fill="{colour}"{HALO}>'
            f"{congruence:g} / {conflict:g}</text>"
        )
    parts.extend(labels)  # over every line
    for node in window["nodes"]:
        x, y = at(node["id"])
        dx, dy = place[node["id"]]
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="9" fill="#1f3b73"/>')
        # The label outside the circle, along the line from its centre.
        anchor = "start" if dx > 0.3 else "end" if dx < -0.3 else "middle"
        lx, ly = x + 16 * dx, y - 18 * dy + 5
        parts.append(
            f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}"{HALO}>'
            f"{escape(node['name'])} ({escape(node['id'])})</text>"
        )
    parts.append(
        f'<text x="16" y="{HEIGHT - 16}" fill="#555">edge labels: congruence / conflict; '
        "green: more agreement, red: more conflict</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main(argv: list[str]) -> int:
    source, target = Path(argv[1]), Path(argv[2])
    target.write_text(svg(json.loads(source.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
