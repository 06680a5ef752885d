"""Bar charts as SVG, drawn on the server: no script, no style attribute (the CSP allows neither inline)."""

from collections.abc import Callable, Sequence
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 16, 40


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], show: Callable[[float], str],
              css_class: str = "bar") -> Markup:
    """One bar per label; the title and every value are in the SVG's text for screen readers."""
    top = max(values, default=0) or 1
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = inner_w / max(len(values), 1)
    bar_w = max(step * 0.7, 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="t-{css_class}"'
        f' xmlns="http://www.w3.org/2000/svg">',
        f'<title id="t-{css_class}">{escape(title)}</title>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP + inner_h}" x2="{WIDTH - RIGHT}" y2="{TOP + inner_h}"/>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{escape(show(top))}</text>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + inner_h}" text-anchor="end">0</text>',
    ]
    every = max(1, round(len(labels) / 7))
    for i, (label, value) in enumerate(zip(labels, values)):
        h = inner_h * (value / top)
        x = LEFT + i * step + (step - bar_w) / 2
        parts.append(f'<rect class="{css_class}" x="{x:.1f}" y="{TOP + inner_h - h:.1f}" width="{bar_w:.1f}"'
                     f' height="{h:.1f}"><title>{escape(label)}: {escape(show(value))}</title></rect>')
        if i % every == 0 or i == len(labels) - 1:
            parts.append(f'<text class="tick" x="{x + bar_w / 2:.1f}" y="{HEIGHT - BOTTOM + 16}"'
                         f' text-anchor="middle">{escape(label[5:])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
