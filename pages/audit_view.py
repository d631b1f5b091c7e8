"""The Audit page's results: the shortcut score, findings, per-fact tests and charts, exports, debiased subsets."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import streamlit as st

from labeling.audit import Audit
from labeling.audit_run import AuditRun, finding_line, run_audit
from labeling.comparison import format_p
from labeling.debias import STRATA, STRATUM_TITLES, before_after, debias, seed_csv
from labeling.store import Store
from pages import common

GROUPS_SHOWN = 8  # duplicate groups shown with thumbnails; the CSV has every one
PER_GROUP = 6  # thumbnails per group
_ALERTS = {"critical": st.error, "high": st.error, "medium": st.warning, "low": st.info, "info": st.info}


@st.cache_resource(show_spinner="Auditing ...", max_entries=4)
def _cached_audit(db_path: str, datasets: tuple[str, ...], distance: int, facts_mark: str) -> AuditRun:
    return run_audit(common.store(), list(datasets), distance)


def _audit(store: Store, datasets: list[str]) -> AuditRun:
    """The audit of these datasets, shared by every session, computed again when their facts change (a scan)."""
    distance = common.settings().near_duplicate_distance
    mark = store.facts_mark([store.dataset_id(name) for name in datasets])
    return _cached_audit(common.settings().db_path, tuple(datasets), distance, mark)


def _number(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _headline(result: Audit) -> None:
    score = result.shortcut
    left, right = st.columns([1, 4])
    left.metric("Shortcut score (ROC AUC)", _number(score.score) if score.computed else "n/a")
    right.text(common.visible(score.sentence if score.computed else score.reason))
    if score.computed:
        models = ", ".join(f"{m.model} {m.auc:.3f}" for m in score.models)
        leans = ", ".join(f"{w.title} ({w.share:.0%})" for w in score.leans_on[:5])
        right.caption(
            common.plain(
                f"Cross-validated ({score.folds} folds) on {score.rows_per_side[0]:,} + {score.rows_per_side[1]:,} "
                f"images: {models}. Leans on: {leans or 'nothing'}."
            )
        )


def _findings(result: Audit) -> None:
    st.markdown("**Findings**")
    if not result.findings:
        st.success("Nothing stands out: the technical facts do not tell these datasets apart.")
    for finding in result.findings:
        _ALERTS.get(finding.severity, st.info)(common.plain(finding_line(finding)))


def _separation(result: Audit) -> None:
    rows = [
        {"fact": s.title, "kind": s.kind, "AUC alone": s.auc, "how": common.visible(s.direction)}
        for s in result.separation
    ]
    st.markdown("**How well each fact alone separates the datasets** (0.5: not at all, 1.0: perfectly)")
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        height=common.table_height(len(rows)),
        column_config={"AUC alone": st.column_config.ProgressColumn(min_value=0.5, max_value=1.0, format="%.3f")},
    )


def _categorical(result: Audit) -> None:
    facts = {c.fact: c for c in result.categorical}
    if not facts:
        return
    st.markdown("**Categorical facts**")
    summary = [
        {
            "fact": c.title,
            "test": c.test,
            "p": format_p(c.p_value),
            "q (BH)": format_p(c.q_value),
            "differs most": common.visible(c.top_value),
            "gap (points)": round(100 * c.gap, 1),
        }
        for c in result.categorical
    ]
    st.dataframe(pd.DataFrame(summary), hide_index=True, width="stretch", height=common.table_height(len(summary)))
    chosen = st.selectbox(
        "Show the shares of", list(facts), format_func=lambda k: facts[k].title, key="audit_categorical"
    )
    fact = facts[chosen]
    table = [
        {
            "value": common.visible(v.value),
            **{f"{c.dataset} %": round(c.share * 100, 1) for c in v.counts},
            "p": format_p(v.p_value),
            "q (BH)": format_p(v.q_value),
        }
        for v in fact.values
    ]
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch", height=common.table_height(len(table)))
    chart = _chart("categorical", result, chosen)
    if chart is not None:
        st.altair_chart(chart, width="stretch")


def _numeric(result: Audit) -> None:
    facts = {n.fact: n for n in result.numeric}
    if not facts:
        return
    st.markdown("**Numeric facts** (two-sample Kolmogorov-Smirnov test; effect size as AUC and Cliff's delta)")
    summary = []
    for n in result.numeric:
        row: dict[str, Any] = {"fact": n.title}
        for s in n.sides or n.summaries:
            row[f"median {s.dataset}"] = _significant(s.median)
        row.update({"KS D": round(n.ks_statistic, 3), "p": format_p(n.p_value), "q (BH)": format_p(n.q_value)})
        row.update({"AUC": round(n.auc, 3), "Cliff's delta": round(n.cliffs_delta, 3), "direction": n.direction})
        summary.append(row)
    st.dataframe(pd.DataFrame(summary), hide_index=True, width="stretch", height=common.table_height(len(summary)))
    chosen = st.selectbox(
        "Show the distributions of", list(facts), format_func=lambda k: facts[k].title, key="audit_numeric"
    )
    chart = _chart("numeric", result, chosen)
    if chart is not None:
        st.altair_chart(chart, width="stretch")


def _significant(value: float) -> float:
    """Four significant digits: 106037.5 bytes reads as 106000, 127.3277 as 127.3."""
    return value if math.isnan(value) else float(f"{value:.4g}")


def _chart(kind: str, result: Audit, fact: str) -> Any:
    from labeling import audit_charts

    return (
        audit_charts.categorical_chart(result, fact)
        if kind == "categorical"
        else audit_charts.numeric_chart(result, fact)
    )


def _downloads(store: Store, result: Audit, datasets: list[str]) -> None:
    from labeling.audit_report import facts_csv, html_report

    st.markdown("**Export the report**")
    cols = st.columns(3)
    cols[0].download_button(
        "HTML report (with charts)",
        data=lambda: html_report(result).encode("utf-8"),
        file_name="audit.html",
        mime="text/html",
        on_click="ignore",
        key="audit_html",
    )
    cols[1].download_button(
        "JSON",
        data=lambda: json.dumps(result.to_json(), indent=2, ensure_ascii=False).encode("utf-8"),
        file_name="audit.json",
        mime="application/json",
        on_click="ignore",
        key="audit_json",
    )
    cols[2].download_button(
        "CSV of the facts",
        data=lambda: facts_csv(store.image_facts([store.dataset_id(name) for name in datasets])),
        file_name="image_facts.csv",
        mime="text/csv",
        on_click="ignore",
        key="audit_csv",
    )


def _debiased(store: Store, run: AuditRun, datasets: list[str]) -> None:
    st.subheader("3. Debiased subsets")
    if len(datasets) != 2:
        st.info("Choose exactly two datasets (REAL and GEN) to match them.")
        return
    st.caption(
        "Keeps, for every combination of category set and the chosen strata, as many images of each side as the "
        "smaller side has: the largest subsets those keys cannot tell apart. Duplicates and leaked images are left "
        "out."
    )
    left, right = st.columns([3, 1])
    strata = left.multiselect(
        "Match on", list(STRATA), default=list(STRATA), format_func=STRATUM_TITLES.__getitem__, key="audit_strata"
    )
    content = right.checkbox(
        "and on content (categories)", value=True, key="audit_content", help="Off: for datasets not categorized yet."
    )
    key = (tuple(datasets), tuple(strata), content)
    if st.button("Make debiased subsets", key="audit_debias"):
        with st.spinner("Matching ..."):
            left_out = run.duplicates.left_out() if run.duplicates else set()
            made = common.run_or_error(
                lambda: debias(store, datasets, strata=strata, exclude=left_out, content=content)
            )
            report = None if made is None else common.run_or_error(lambda: before_after(store, made))
        if made is None or report is None:
            return
        st.session_state["audit_debiased"] = (key, made, report)  # a download's rerun shows the same result
    saved = st.session_state.get("audit_debiased")
    if saved is None or saved[0] != key:
        return
    _, result, report = saved
    counts = result.counts()
    frame = pd.DataFrame(counts).T[["before", "kept", *result.reasons()]]
    frame.index = [common.visible(name) for name in frame.index]
    st.dataframe(frame, width="stretch")
    if not any(c["kept"] for c in counts.values()):
        advice = (
            "categorize the datasets first (Run page), or untick content to match the strata only"
            if content
            else "the sides share no combination of the chosen strata: match on fewer strata"
        )
        st.warning(common.plain(f"Nothing matched: {advice}."))
        return
    left, right = st.columns(2)
    left.metric(
        "Shortcut score of the subsets",
        _number(report.score_after),
        delta=_delta(report.score_before, report.score_after),
        delta_color="inverse",  # lower is better: the files tell the sides apart less
    )
    right.metric(
        "Category test p",
        format_p(report.category_p_after),
        help=common.plain("Before: " + format_p(report.category_p_before) + ". Higher: the contents match better."),
    )
    kept = min(c["kept"] for c in counts.values())
    st.text(
        common.visible(report.sentence_after)
        if not math.isnan(report.score_after)
        else f"No shortcut score for the subsets: {kept:,} images a side is too few to cross-validate (10 or more)."
    )
    cols = st.columns(4)
    for i, name in enumerate(datasets):
        csv = seed_csv(store, result, name)
        if csv.count(b"\n") > 1:
            cols[2 * i].download_button(
                common.plain(f"{name}: seed CSV"),
                data=csv,
                file_name=result.file_names(name)[0],
                mime="text/csv",
                on_click="ignore",
                key=f"audit_debiased_csv_{i}",
            )
        else:
            cols[2 * i].caption("No seed CSV: the kept images have no description or categories yet.")
        cols[2 * i + 1].download_button(
            common.plain(f"{name}: names"),
            data=result.names_text(name),
            file_name=result.file_names(name)[1],
            mime="text/plain",
            on_click="ignore",
            key=f"audit_debiased_names_{i}",
        )


def _duplicates(store: Store, run: AuditRun) -> None:
    st.markdown("**Duplicates and leakage**")
    report = run.duplicates
    if report is None:
        st.info(common.plain(run.note))
        return
    for line in report.summary_lines():
        st.text(common.visible(line))
    if not report.groups:
        return
    cols = st.columns(3)
    cols[0].download_button(
        "Every group as CSV", data=report.csv_bytes(), file_name="duplicates.csv", mime="text/csv", key="audit_dups"
    )
    for fact, label, place in (("leakage", "Review the leaked images", 1), ("duplicate", "Review every group", 2)):
        if cols[place].button(label, key=f"audit_review_{fact}"):
            st.session_state["rv_filter"] = {  # the Review gallery opens filtered to them
                **(st.session_state.get("rv_filter") or {}),
                "rv_fact": fact,
                "rv_dataset": report.groups[0].images[0].dataset,
            }
            st.session_state["rv_gallery_visit"] = int(st.session_state.get("rv_gallery_visit", 0)) + 1
            st.switch_page("pages/review.py")
    st.caption("Review shows one dataset at a time: switch its Dataset to see the copies on the other side.")
    shown = report.groups[:GROUPS_SHOWN]
    rows = store.gallery_rows([image.image_id for group in shown for image in group.images[:PER_GROUP]])
    by_id = {int(row["image_id"]): row for row in rows.to_dict("records")}
    for group in shown:
        flag = "LEAKAGE · " if group.leakage else ""
        how = (
            "same bytes"
            if group.kind == "exact"
            else f"pHash ≤ {group.max_phash_distance}, dHash ≤ {group.max_dhash_distance}"
        )
        st.caption(common.plain(f"{flag}group {group.group_id}: {len(group.images)} images, {how}"))
        images = [by_id[image.image_id] for image in group.images[:PER_GROUP] if image.image_id in by_id]
        pictures = common.pictures().thumbnails(images)
        columns = st.columns(PER_GROUP)
        for column, image, picture in zip(columns, images, pictures, strict=False):
            column.image(picture.data, width="stretch")
            column.caption(common.plain(f"{image['dataset']}: {image['name']}"))
    if len(report.groups) > GROUPS_SHOWN:
        st.caption(f"The first {GROUPS_SHOWN} of {len(report.groups):,} groups; the CSV lists them all.")


def _delta(before: float, after: float) -> str | None:
    if math.isnan(before) or math.isnan(after) or round(after - before, 2) == 0:
        return None
    return f"{after - before:+.2f} (was {before:.2f})"


def render(store: Store, datasets: list[str]) -> None:
    """The audit of `datasets`, below the Scan step."""
    run = _audit(store, datasets)
    result = run.audit
    if not any(d.audited for d in result.datasets):
        st.info("No facts yet: scan the datasets above first.")
        return
    unscanned = [d.name for d in result.datasets if d.audited == 0]
    if unscanned:
        st.warning(common.plain("No facts for " + ", ".join(unscanned) + " yet: scan them above."))
    _headline(result)
    _findings(result)
    _separation(result)
    _categorical(result)
    _numeric(result)
    _duplicates(store, run)
    _downloads(store, result, datasets)
    _debiased(store, run, datasets)
