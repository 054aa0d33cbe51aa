"""``report.html``: the report's tables and three plots in one self-contained page.

The plots are inline SVG written here (no plotting library, no script, no external file, font or
stylesheet): success by environment (grouped bars, one colour per run), the pass^k curve
(k = 1..K, one line per run) and the reward histogram (ten bins, grouped bars). Every bar and
point carries a ``<title>`` with its exact number, shown as a tooltip by browsers.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from envfarm.agents.report import ALL, HISTOGRAM_BINS, PASS_HAT_NOTE, RunReport, environments, reward_histogram, tables

# Okabe-Ito: tells runs apart for colour-blind readers too.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
FONT = 'font-family="system-ui, sans-serif" font-size="11"'

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 80rem; }
h1 { margin-bottom: 0.2rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; text-align: left; }
.plots { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
figure { margin: 0; }
figcaption { font-weight: 600; margin-bottom: 0.3rem; }
.legend span.swatch { display: inline-block; width: 0.9rem; height: 0.9rem; margin: 0 0.3rem 0 1rem;
  vertical-align: middle; border-radius: 2px; }
.note { color: #555; font-size: 0.9rem; max-width: 60rem; }
.warnings { color: #8a5300; }
"""


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _svg(plot_id: str, title: str, width: float, height: float, body: list[str]) -> str:
    return (
        f'<svg id="{plot_id}" class="plot" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{escape(title)}" {FONT}>'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def _y_axis(left: float, top: float, plot_w: float, plot_h: float, ticks: Sequence[tuple[float, str]]) -> list[str]:
    """Horizontal grid lines with labels; each tick is (fraction of the height, label)."""
    out = []
    for frac, label in ticks:
        y = top + plot_h * (1 - frac)
        out.append(f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{left + plot_w:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end">{escape(label)}</text>')
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#888"/>')
    out.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#888"/>')
    return out


def _bar(x: float, y: float, w: float, h: float, fill: str, tip: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{max(h, 0):.1f}" fill="{fill}">'
        f"<title>{escape(tip)}</title></rect>"
    )


def success_plot(reports: Sequence[RunReport]) -> str:
    """Grouped bars: each environment's success rate (and all environments'), one bar per run."""
    groups = [*environments(reports), ALL]
    bar_w, left, top, plot_h, bottom = 16.0, 48.0, 16.0, 200.0, 110.0
    group_w = max(bar_w * len(reports) + 18.0, 360.0 / len(groups))
    plot_w = group_w * len(groups)
    body = _y_axis(left, top, plot_w, plot_h, [(f, f"{100 * f:.0f}%") for f in (0, 0.25, 0.5, 0.75, 1)])
    for gi, env in enumerate(groups):
        x0 = left + gi * group_w + (group_w - bar_w * len(reports)) / 2
        for ri, r in enumerate(reports):
            m = r.overall if env == ALL else r.by_env.get(env)
            if m is None:
                continue
            h = plot_h * m.success_rate
            tip = f"{env} - {r.label}: success {100 * m.success_rate:.1f}% ({m.successes}/{m.episodes})"
            body.append(_bar(x0 + ri * bar_w, top + plot_h - h, bar_w - 2, h, colour(ri), tip))
            body.append(
                f'<text x="{x0 + ri * bar_w + (bar_w - 2) / 2:.1f}" y="{top + plot_h - h - 3:.1f}" '
                f'text-anchor="middle" font-size="8">{100 * m.success_rate:.0f}</text>'
            )
        cx, cy = x0 + bar_w * len(reports) / 2, top + plot_h + 12
        body.append(
            f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="end" transform="rotate(-35 {cx:.1f} {cy:.1f})">'
            f"{escape(env)}</text>"
        )
    return _svg(
        "plot-success-by-env", "Success rate by environment (%)", left + plot_w + 16, top + plot_h + bottom, body
    )


def pass_hat_plot(reports: Sequence[RunReport]) -> str:
    """One line per run: pass^k against k, for k = 1..K."""
    k_max = max(len(r.overall.pass_hat) for r in reports)
    left, top, plot_w, plot_h = 48.0, 12.0, max(300.0, 60.0 * k_max), 200.0
    body = _y_axis(left, top, plot_w, plot_h, [(f, f"{f:.2f}") for f in (0, 0.25, 0.5, 0.75, 1)])

    def x(k: int) -> float:
        return left + plot_w / 2 if k_max == 1 else left + 20 + (plot_w - 40) * (k - 1) / (k_max - 1)

    for k in range(1, k_max + 1):
        body.append(f'<text x="{x(k):.1f}" y="{top + plot_h + 16:.1f}" text-anchor="middle">{k}</text>')
    body.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 34:.1f}" text-anchor="middle">k</text>')
    for ri, r in enumerate(reports):
        points = [(x(k), top + plot_h * (1 - v)) for k, v in sorted(r.overall.pass_hat.items())]
        if len(points) > 1:
            coords = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            body.append(f'<polyline points="{coords}" fill="none" stroke="{colour(ri)}" stroke-width="2"/>')
        for (px, py), (k, v) in zip(points, sorted(r.overall.pass_hat.items()), strict=True):
            body.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{colour(ri)}">'
                f"<title>{escape(r.label)}: pass^{k} = {v:.3f}</title></circle>"
            )
    return _svg("plot-pass-hat-k", "pass^k by k", left + plot_w + 12, top + plot_h + 44, body)


def reward_plot(reports: Sequence[RunReport]) -> str:
    """Grouped bars: episodes per reward bin, one bar per run."""
    hists = [reward_histogram(r.overall.rewards) for r in reports]
    top_count = max(max(h) for h in hists) or 1
    step = max(1, -(-top_count // 4))
    y_max = step * 4
    bar_w, gap, left, top, plot_h = max(6.0, 28.0 / len(reports)), 8.0, 48.0, 12.0, 200.0
    group_w = bar_w * len(reports) + gap
    plot_w = group_w * HISTOGRAM_BINS
    body = _y_axis(left, top, plot_w, plot_h, [(i / 4, str(i * step)) for i in range(5)])
    for b in range(HISTOGRAM_BINS):
        x0 = left + b * group_w + gap / 2
        lo, hi = b / HISTOGRAM_BINS, (b + 1) / HISTOGRAM_BINS
        span = f"[{lo:.1f}, {hi:.1f}]" if b == HISTOGRAM_BINS - 1 else f"[{lo:.1f}, {hi:.1f})"
        for ri, r in enumerate(reports):
            n = hists[ri][b]
            h = plot_h * n / y_max
            tip = f"{r.label}: reward {span}: {n} episode{'s' if n != 1 else ''}"
            body.append(_bar(x0 + ri * bar_w, top + plot_h - h, bar_w - 1, h, colour(ri), tip))
    for b in range(HISTOGRAM_BINS + 1):
        bx = left + b * group_w
        body.append(
            f'<text x="{bx:.1f}" y="{top + plot_h + 16:.1f}" text-anchor="middle">{b / HISTOGRAM_BINS:.1f}</text>'
        )
    body.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 34:.1f}" text-anchor="middle">reward</text>')
    return _svg("plot-reward-histogram", "Reward histogram (episodes)", left + plot_w + 24, top + plot_h + 44, body)


def _table_html(title: str, header: list[str], rows: list[list[str]], numeric: bool) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    cls = ' class="n"' if numeric else ""
    body = "".join(
        "<tr>" + f"<th>{escape(row[0])}</th>" + "".join(f"<td{cls}>{escape(c)}</td>" for c in row[1:]) + "</tr>"
        for row in rows
    )
    return f"<h2>{escape(title)}</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_page(reports: Sequence[RunReport]) -> str:
    """The whole page: legend, the three plots, then every table of the report."""
    legend = "".join(
        f'<span class="swatch" style="background:{colour(i)}"></span>{escape(r.label)}' for i, r in enumerate(reports)
    )
    figures = [
        ("Success by environment", success_plot(reports)),
        ("pass^k", pass_hat_plot(reports)),
        ("Reward histogram", reward_plot(reports)),
    ]
    plots = "".join(f"<figure><figcaption>{escape(c)}</figcaption>{svg}</figure>" for c, svg in figures)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>envfarm report: {escape(', '.join(r.label for r in reports))}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>envfarm report</h1>",
        f'<p class="note">{escape(PASS_HAT_NOTE)}</p>',
        f'<p class="legend">{legend}</p>',
        f'<div class="plots">{plots}</div>',
    ]
    parts += [_table_html(t.title, t.header, t.rows, t.numeric) for t in tables(reports)]
    warnings = [w for r in reports for w in r.warnings]
    if warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
        parts.append(f'<h2>Warnings</h2><ul class="warnings">{items}</ul>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
