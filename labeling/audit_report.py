"""The technical-bias audit as files: a self-contained offline HTML report and a formula-safe CSV of the facts.

The HTML page needs no network and runs no script: its charts are inline SVG rendered by vl-convert (not
Vega-Lite specs for vega-embed, which would need JavaScript from somewhere), its style is inline, and a
Content-Security-Policy forbids scripts and outside loads anyway. Every text from outside (dataset names,
camera makes, generator strings, PNG text keys) goes through html.escape, after bidirectional controls are made
visible (labeling.plain_text).
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from labeling.plain_text import visible

if TYPE_CHECKING:
    import pandas as pd

    from labeling.audit import Audit

__all__ = ["DEFAULT_CHARTS", "facts_csv", "html_report"]

DEFAULT_CHARTS = 16  # charts in the report: the facts that separate the sides most (each takes ~0.1-0.2 s)
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_SEVERITY_COLORS = {
    "critical": "#B00020",
    "high": "#D55E00",
    "medium": "#E69F00",
    "low": "#0072B2",
    "info": "#666666",
}
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.finding { border-left: 6px solid #999; padding: 0.4em 0.8em; margin: 0.6em 0; background: #fafafa; }
.severity { font-weight: bold; text-transform: uppercase; font-size: 0.8em; }
.score { font-size: 1.2em; font-weight: bold; } .note { color: #555; font-size: 0.9em; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
"""
# SVG text vl-convert writes is escaped XML; an element outside this set means something unexpected got in.
_SVG_TAGS = {"svg", "g", "path", "rect", "line", "text", "title", "desc", "defs", "clippath", "tspan", "circle"}


def html_report(result: Audit, *, title: str = "Technical-bias audit", charts: int | None = DEFAULT_CHARTS) -> str:
    """The audit as one HTML page (UTF-8 text): findings, shortcut score, tables and `charts` charts (None:
    every fact, 0: none), working offline and free of scripts."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        _datasets_section(result),
        _findings_section(result),
        _shortcut_section(result),
        _separation_section(result),
        _categorical_section(result),
        _numeric_section(result),
    ]
    if charts != 0:
        parts.append(_charts_section(result, charts))
    parts.append(f'<p class="note">Audit took {result.seconds:.1f} s. Significance level {result.alpha}.</p>')
    parts.append("</body></html>")
    return "\n".join(parts)


def facts_csv(facts: pd.DataFrame) -> bytes:
    """The per-image facts (an `image_facts` frame) as formula-safe UTF-8 CSV: lists joined with "; ",
    JSON details as JSON text, and every text cell neutralised against spreadsheet formulas."""
    from labeling.spreadsheet import frame_csv

    out = facts.copy()
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = out[column].map(_cell)
    return frame_csv(out)


# ------------------------------------------------------------------------------------------------ sections


def _datasets_section(result: Audit) -> str:
    side_names = {i: side.name for i, side in enumerate(result.sides)}
    rows = [
        [
            d.name,
            d.label,
            side_names.get(d.side, "") if d.side is not None else "",
            _int(d.rows),
            _int(d.errors),
            _int(d.audited),
        ]
        for d in result.datasets
    ]
    table = _table(["Dataset", "Label", "Side", "Scanned", "Unreadable (left out)", "Audited"], rows, numeric={3, 4, 5})
    sides = ""
    if result.side_names:
        first, second = result.sides
        sides = (
            f"<p>Compared: <b>{_e(first.name)}</b> ({_e(', '.join(first.datasets))}; {first.images:,} images) "
            f"against <b>{_e(second.name)}</b> ({_e(', '.join(second.datasets))}; {second.images:,} images).</p>"
        )
    return f"<h2>Datasets</h2>{table}{sides}"


def _findings_section(result: Audit) -> str:
    items = []
    for finding in result.findings:
        color = _SEVERITY_COLORS.get(finding.severity, "#999999")
        source = f" · {_e(finding.source)}" if finding.source != "audit" else ""
        items.append(
            f'<div class="finding" style="border-left-color:{color}">'
            f'<span class="severity" style="color:{color}">{_e(finding.severity)}</span>{source}<br>'
            f"{_e(finding.text)}<br><i>What to do:</i> {_e(finding.action)}</div>"
        )
    return "<h2>Findings</h2>" + ("".join(items) or "<p>No findings.</p>")


def _shortcut_section(result: Audit) -> str:
    score = result.shortcut
    if not score.computed:
        return f"<h2>Shortcut score</h2><p>{_e(score.reason)}</p>"
    models = _table(
        ["Model", "Cross-validated ROC AUC", "Per fold"],
        [[m.model, _f(m.auc, 3), ", ".join(_f(a, 3) for a in m.fold_aucs)] for m in score.models],
        numeric={1},
    )
    weights = _table(["Fact", "Share of the weight"], [[w.title, _pct(w.share)] for w in score.leans_on], numeric={1})
    note = (
        f"Stratified {score.folds}-fold cross-validation, seed {score.seed}, on {score.rows_per_side[0]:,} + "
        f"{score.rows_per_side[1]:,} images (at most {score.max_per_side:,} per side, sampled with the seed, of "
        f"{score.images_per_side[0]:,} + {score.images_per_side[1]:,}); {score.features} feature columns; "
        f"{score.seconds:.1f} s. Hashes, names and ids are not features. The weights are the logistic "
        "regression's standardized coefficients summed per fact."
    )
    return (
        f'<h2>Shortcut score</h2><p class="score">{_e(score.sentence)}</p>{models}'
        f'<h3>What the model leans on</h3>{weights}<p class="note">{_e(note)}</p>'
    )


def _separation_section(result: Audit) -> str:
    rows = [[s.title, s.kind, s.group, _f(s.auc, 3), s.direction] for s in result.separation]
    note = (
        "ROC AUC of each fact alone (0.5: no help, 1.0: tells the sides apart perfectly). Numeric facts: the "
        "Mann-Whitney AUC, folded; categorical facts: the AUC of each value's share of the second side, measured "
        "on the same images (optimistic for facts with many values)."
    )
    table = _table(["Fact", "Kind", "Group", "AUC alone", "Direction"], rows, numeric={3})
    return f'<h2>Each fact alone</h2><p class="note">{_e(note)}</p>{table}'


def _categorical_section(result: Audit) -> str:
    names = [d.name for d in result.datasets]
    header = ["Fact", "Value", *[f"{n}" for n in names], "Test", "p", "q (values)", "Fact p", "Fact q"]
    rows = []
    for fact in result.categorical:
        for i, value in enumerate(fact.values):
            shares = [f"{c.count:,} ({_pct(c.share)})" for c in value.counts]
            fact_cells = [_p(fact.p_value), _p(fact.q_value)] if i == 0 else ["", ""]
            rows.append(
                [
                    fact.title if i == 0 else "",
                    value.value,
                    *shares,
                    value.test,
                    _p(value.p_value),
                    _p(value.q_value),
                    *fact_cells,
                ]
            )
    note = (
        "Counts and shares per dataset. Per-value tests as in the category comparison (Fisher exact when an "
        "expected 2x2 cell is below 5, else the two-proportion z test; chi-square for three or more datasets); a "
        "fact with more than two values is also tested as a whole (chi-square homogeneity). q: Benjamini-Hochberg, "
        "over all values for the value column and over every fact-level test (categorical and numeric) for the "
        "fact column."
    )
    numeric = set(range(2, 2 + len(names))) | {len(names) + 3, len(names) + 4, len(names) + 5, len(names) + 6}
    return f'<h2>Categorical facts</h2><p class="note">{_e(note)}</p>{_table(header, rows, numeric=numeric)}'


def _numeric_section(result: Audit) -> str:
    names = [d.name for d in result.datasets]
    header = [
        "Fact",
        *[f"{n}: n, median [Q1-Q3]" for n in names],
        "KS D",
        "p",
        "q",
        "AUC",
        "Cliff's delta",
        "Direction",
    ]
    rows = []
    for fact in result.numeric:
        cells = [
            f"{s.n:,}, {_num(s.median)} [{_num(s.q1)}-{_num(s.q3)}]" if s.n else f"0 ({s.missing:,} without)"
            for s in fact.summaries
        ]
        rows.append(
            [
                fact.title,
                *cells,
                _f(fact.ks_statistic, 3),
                _p(fact.p_value),
                _p(fact.q_value),
                _f(fact.auc, 3),
                _f(fact.cliffs_delta, 3),
                fact.direction,
            ]
        )
    note = (
        "Two-sample Kolmogorov-Smirnov test between the two sides (scipy.stats.ks_2samp) over the images where the "
        "fact applies; effect size: the Mann-Whitney ROC AUC folded to >= 0.5 and Cliff's delta (second side "
        "against the first, -1..1)."
    )
    numeric = set(range(1, len(names) + 6))
    return f'<h2>Numeric facts</h2><p class="note">{_e(note)}</p>{_table(header, rows, numeric=numeric)}'


def _charts_section(result: Audit, limit: int | None) -> str:
    from labeling.audit_charts import audit_charts, chart_svg

    figures = []
    for _fact, chart in audit_charts(result, limit):
        svg = _inline_svg(chart_svg(chart))
        if svg:
            figures.append(f"<figure>{svg}</figure>")
    return "<h2>Charts</h2>" + "".join(figures)


# ------------------------------------------------------------------------------------------------ helpers


def _inline_svg(svg: str) -> str:
    """vl-convert's SVG for inlining: namespace declarations dropped (HTML needs none); "" if anything but
    plain drawing elements is in it (no script, no foreignObject, no links)."""
    tags = {tag.lower() for tag in re.findall(r"<\s*([A-Za-z][\w:-]*)", svg)}
    if not tags <= _SVG_TAGS or re.search(r"href|javascript:|url\((?!#)|@import", svg, re.IGNORECASE):
        return ""
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    return svg.split("?>", 1)[1] if svg.lstrip().startswith("<?xml") else svg


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{_e(c)}</td>' if i in numeric else f"<td>{_e(c)}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _e(text: Any) -> str:
    return html.escape(visible("" if text is None else text), quote=True)


def _cell(value: Any) -> Any:
    if isinstance(value, list | tuple) or (hasattr(value, "tolist") and not isinstance(value, str)):
        return "; ".join(map(str, list(value)))
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def _int(value: int) -> str:
    return f"{value:,}"


def _f(value: float, digits: int) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _num(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _p(value: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _pct(share: float) -> str:
    if math.isnan(share):
        return "n/a"
    value = 100 * share
    return f"{value:.0f}%" if value >= 10 or value == 0 else f"{value:.1f}%"
