"""The capacity chart, drawn on the server as SVG: one bar per province, devices per 100,000 inhabitants."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from markupsafe import Markup

from adapters.http.portal.render import gettext

WIDTH = 640
BAR = 22
GAP = 8
LABEL = 150


def capacity_chart(rows: list[dict[str, Any]], modality: str) -> Markup:
    """Accessible SVG (a title, a description and a text per bar); provinces without a figure are left out."""
    shown = [row for row in rows if row.get("per_100k") is not None]
    top = max((float(row["per_100k"]) for row in shown), default=0.0) or 1.0
    height = GAP + len(shown) * (BAR + GAP) + 20
    title = gettext("%(modality)s devices per 100,000 inhabitants, by province", modality=modality)
    summary = ", ".join(f"{row['province']}: {row['per_100k']}" for row in shown)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="chart-title chart-desc" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<desc id="chart-desc">{escape(summary)}</desc>',
    ]
    span = WIDTH - LABEL - 70
    for index, row in enumerate(shown):
        y = GAP + index * (BAR + GAP)
        length = max(1.0, float(row["per_100k"]) / top * span)
        parts.append(
            f'<text x="{LABEL - 6}" y="{y + BAR * 0.7:.0f}" text-anchor="end" font-size="13" '
            f'fill="#1a1a1a">{escape(str(row["province"]))}</text>'
            f'<rect x="{LABEL}" y="{y}" width="{length:.1f}" height="{BAR}" fill="#1f4e79"/>'
            f'<text x="{LABEL + length + 6:.1f}" y="{y + BAR * 0.7:.0f}" font-size="13" '
            f'fill="#1a1a1a">{row["per_100k"]:.2f}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
