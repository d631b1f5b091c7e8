"""Categories: the list with definitions (edit, add, rename, merge, deactivate, delete), its versions, the seed's
CSV formats, suggestions from the data, and re-categorizing the affected images from their descriptions.

The views are stateful tabs (a key and on_change="rerun"): the one chosen stays through the rerun after every
action (plain tabs fall back to the first as soon as a message above them appears), and only its content runs.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from labeling import demo, recategorize, suggestions, wording
from labeling.categories import Category, ListChange, list_plan
from labeling.jobs import Job
from labeling.planning import price_unknown
from labeling.settings import Settings
from labeling.store.categories import TERMS_SAMPLE
from labeling.taxonomy import (
    apply_table_edit,
    category_csv,
    ensure_categories,
    extract_categories,
    import_categories,
    parse_category_csv,
    unique_categories_csv,
)
from labeling.vocabulary import CATEGORY_IMPORT_MODES, SUGGEST_PROPOSALS, SUGGEST_SAMPLE
from pages import common

FLASH = "categories_flash"
SUGGESTED = "categories_suggested"
VIEW = "categories_view"
VIEWS = ("List", "Add · rename · merge · delete", "History", "Import / export", "Suggestions", "Re-categorize")
# Up to this many choices show as pills, every one on screen; a dropdown shows only the rows that fit (a
# handful) until one scrolls or types. Longer lists keep the searchable dropdown.
PILLS_UP_TO = 40
MODE_HELP = {
    "replace": "Replace: these become the active list; the others are deactivated (definitions kept).",
    "add": "Add: append the names not in the list yet.",
}

st.title("Categories")
store = common.store()
settings = common.settings()
ensure_categories(store)


# Label-wide queries take seconds on a million images: cached until labels or the list change (fingerprint).
@st.cache_data(show_spinner=False, max_entries=8)
def _usage(db_path: str, fingerprint: tuple[int, int, int, str]) -> pd.DataFrame:
    return store.category_usage()


@st.cache_data(show_spinner=False, max_entries=16)
def _terms(db_path: str, fingerprint: tuple[int, int, int, str], datasets: tuple[str, ...], top: int) -> pd.DataFrame:
    return suggestions.term_counts(store, list(datasets) or None, top)


@st.cache_data(show_spinner=False, max_entries=16)
def _affected(
    db_path: str, fingerprint: tuple[int, int, int, str], datasets: tuple[str, ...], every: bool
) -> recategorize.Affected:
    return recategorize.affected_images(store, list(datasets), every=every)


def _flash(change: ListChange | None) -> None:
    """Remember what a change did, to show it after the rerun that redraws the list."""
    if change is None:
        return
    if change.note == "unchanged":
        st.session_state[FLASH] = ("info", "Nothing changed.")
        return
    message = f"Version {change.version}: {change.note}."
    if change.human_labels_changed:
        message += f" {change.human_labels_changed:,} human labels now use the new name (each edit can be undone)."
    message += " The Re-categorize view lists the images whose model categories this may change."
    st.session_state[FLASH] = ("success", message)


def _apply(action: Callable[[], ListChange], clear: tuple[str, ...] = ()) -> None:
    """Run a list change; on success show it and empty the `clear` fields (a refused change keeps what was typed)."""
    change = common.run_or_error(action)
    if change is not None:
        _flash(change)
        for key in clear:
            st.session_state.pop(key, None)
        st.rerun()


def _pick_one(label: str, names: list[str], key: str) -> str | None:
    """One category of `names`, every one on show (module note on PILLS_UP_TO)."""
    if len(names) > PILLS_UP_TO:
        return st.selectbox(label, names, format_func=common.visible, key=key)
    default = names[0] if names else None
    # Pill labels are Markdown: the names go as plain text.
    return st.pills(label, names, default=default, required=True, format_func=common.plain, key=key)


def _pick_many(label: str, names: list[str], key: str) -> list[str]:
    """Some of `names`, every one on show (module note on PILLS_UP_TO)."""
    if len(names) > PILLS_UP_TO:
        return st.multiselect(label, names, format_func=common.visible, key=key)
    return st.pills(label, names, selection_mode="multi", format_func=common.plain, key=key)


def _header() -> None:
    everything = store.categories(include_inactive=True)
    active = [c for c in everything if c.active]
    st.caption(
        f"List version {store.category_list_version()} · {len(active)} active · "
        f"{len(everything) - len(active)} deactivated. Definitions go into the prompt; the model answers "
        "`unknown` when nothing fits."
    )
    flash = st.session_state.pop(FLASH, None)
    if flash is not None:
        kind, message = flash
        (st.success if kind == "success" else st.info)(common.plain(message))  # notes quote names
    plan = list_plan(active)
    if plan.message:
        st.warning(common.plain(plan.message))


def _list_tab() -> None:
    everything = store.categories(include_inactive=True)
    usage = _usage(settings.db_path, store.labels_fingerprint()).set_index("name")
    frame = pd.DataFrame(
        {
            "name": [c.name for c in everything],
            "definition": [c.definition for c in everything],
            "active": [c.active for c in everything],
            "model images": [int(usage["model_images"].get(c.name, 0)) for c in everything],
            "human images": [int(usage["human_images"].get(c.name, 0)) for c in everything],
        }
    )
    st.caption(
        "Edit definitions and the active flag here, then save (one new version). Rename, merge, add and "
        "delete in the next tab, so that labels follow."
    )
    edited = st.data_editor(
        frame,
        key="category_table",
        hide_index=True,
        num_rows="fixed",
        disabled=["name", "model images", "human images"],
        column_config={
            "definition": st.column_config.TextColumn("definition", width="large"),
            "active": st.column_config.CheckboxColumn("active"),
        },
    )
    if st.button("Save changes", key="save_table", type="primary"):
        rows = [
            Category(str(r["name"]), str(r["definition"] or ""), bool(r["active"])) for r in edited.to_dict("records")
        ]
        _apply(lambda: apply_table_edit(store, rows))
    stale = usage[~usage.index.isin([c.name for c in everything if c.active])]
    if not stale.empty:
        st.caption("Labels that carry a category not in the active list (re-categorize to replace them):")
        st.dataframe(stale.reset_index(), hide_index=True)


def _change_tab() -> None:
    names = [c.name for c in store.categories(include_inactive=True)]
    reviewer = common.reviewer()
    left, right = st.columns(2)
    with left.form("add_category"):
        st.markdown("**Add**")
        name = st.text_input("Name", key="add_name")
        definition = st.text_area("Definition (optional)", key="add_definition", height=80)
        if st.form_submit_button("Add category"):
            _apply(lambda: store.add_category(name, definition), clear=("add_name", "add_definition"))
    with right.form("rename_category"):
        st.markdown("**Rename** (human labels and model labels follow)")
        old = _pick_one("Category", names, "rename_old")
        new = st.text_input("New name", key="rename_new")
        if st.form_submit_button("Rename"):
            _apply(lambda: store.rename_category(str(old), new, reviewer=reviewer), clear=("rename_new",))
    left, right = st.columns(2)
    with left.form("merge_categories"):
        st.markdown("**Merge** (the sources leave the list; their labels become the target)")
        sources = _pick_many("Merge these", names, "merge_sources")
        target = _pick_one("into", names, "merge_target")
        if st.form_submit_button("Merge"):
            _apply(lambda: store.merge_categories(sources, str(target), reviewer=reviewer))
    with right.form("toggle_delete"):
        st.markdown("**Deactivate, activate or delete**")
        chosen = _pick_one("Category", names, "toggle_name")
        action = st.radio(
            "Action",
            ["deactivate", "activate", "delete"],
            horizontal=True,
            key="toggle_action",
            help="Deactivate: left out of the prompt, definition kept. Delete: removed with its "
            "definition (older versions keep it). Labels carrying it stay until re-categorized.",
        )
        if st.form_submit_button("Apply"):
            if action == "delete":
                _apply(lambda: store.delete_category(str(chosen)))
            else:
                _apply(lambda: store.set_category_active(str(chosen), action == "activate"))
    if reviewer:
        st.caption(f"Human labels rewritten by a rename or merge are logged as edits by {common.plain(reviewer)}.")


def _history_tab() -> None:
    versions = store.category_versions()
    st.dataframe(
        versions,
        hide_index=True,
        column_config={"names": st.column_config.TextColumn("active categories", width="large")},
    )
    chosen = st.selectbox("Show version", versions["version"].tolist(), key="history_version")
    if chosen is not None:
        listed = store.category_list_at(int(chosen))
        st.dataframe(
            pd.DataFrame([{"name": c.name, "definition": c.definition, "active": c.active} for c in listed]),
            hide_index=True,
        )
        if int(chosen) != store.category_list_version() and st.button("Restore this version", key="restore"):
            _apply(
                lambda: ListChange(
                    store.save_category_list(listed, f"restore version {chosen}"), f"restore version {chosen}"
                )
            )
    aliases = store.category_aliases()
    if not aliases.empty:
        st.caption("Renames and merges: model labels made before `since_version` read the new name.")
        st.dataframe(aliases, hide_index=True)


def _import_export_tab() -> None:
    active = store.categories()
    left, right = st.columns(2)
    with left:
        st.markdown("**Export**")
        st.download_button(
            "unique_categories.csv (Category)",
            category_csv(active),
            "unique_categories.csv",
            "text/csv",
            key="export_plain",
        )
        st.download_button(
            "categories with definitions (Category,Definition)",
            category_csv(active, definitions=True),
            "categories.csv",
            "text/csv",
            key="export_definitions",
        )
    with right:
        st.markdown("**Import** a `Category[,Definition]` CSV")
        upload = st.file_uploader("Category CSV", type=["csv"], key="import_file")
        mode = st.radio("Mode", CATEGORY_IMPORT_MODES, format_func=MODE_HELP.__getitem__, key="import_mode")
        if st.button("Import", key="import_button", disabled=upload is None) and upload is not None:
            data, name = upload.getvalue(), upload.name
            _apply(lambda: import_categories(store, parse_category_csv(data, name), mode=str(mode), source=name))
    st.divider()
    st.markdown(
        "**Extract** the categories used in a categorized CSV (the seed's `extract-categories`: the "
        "`Categories` column)"
    )
    overview = st.file_uploader("categorized_overview.csv", type=["csv"], key="extract_file")
    if overview is not None:
        found = common.run_or_error(lambda: extract_categories(overview.getvalue(), overview.name))
        if found is not None:
            st.text(common.visible(f"{len(found)} unique categories: " + ", ".join(found)))
            st.download_button(
                "unique_categories.csv",
                unique_categories_csv(found),
                "unique_categories.csv",
                "text/csv",
                key="extract_download",
            )
            if st.button("Add them to the list", key="extract_adopt"):
                _apply(lambda: import_categories(store, [Category(n) for n in found], mode="add", source=overview.name))


def _suggestion_settings(datasets: list[str]) -> tuple[Settings, bool]:
    """The settings for a Gemini call: simulated (the built-in fake) when only example datasets are chosen."""
    if datasets and all(name in demo.EXAMPLE_DATASETS for name in datasets):
        return demo.simulated_settings(settings), True
    return settings, False


def _suggestions_tab() -> None:
    names = store.dataset_names()
    datasets = st.multiselect("Datasets", names, default=names, format_func=common.visible, key="suggest_datasets")
    st.markdown("**What the descriptions mention** (counted in the database, no API)")
    described = store.described_count([store.dataset_id(n) for n in datasets] if datasets else None)
    if described > TERMS_SAMPLE:
        st.caption(f"Counted over a sample of {TERMS_SAMPLE:,} of {described:,} described images.")
    top = int(st.number_input("Terms per field", min_value=5, max_value=200, value=20, key="suggest_top"))
    terms = common.run_or_error(lambda: _terms(settings.db_path, store.labels_fingerprint(), tuple(datasets), top))
    if terms is not None and terms.empty:
        st.info("No image has a description yet: describe some images on the Run page first.")
    elif terms is not None:
        st.dataframe(
            terms,
            hide_index=True,
            column_config={
                "share": st.column_config.ProgressColumn("share", format="percent", min_value=0.0, max_value=1.0)
            },
        )
        new_terms = sorted({str(t) for t in terms[~terms["in_list"]]["term"]})
        picked = _pick_many("Add terms as categories", new_terms, "suggest_terms")
        if st.button("Add", key="suggest_terms_add", disabled=not picked):
            _apply(
                lambda: import_categories(store, [Category(t) for t in picked], mode="add", source="description terms")
            )
    st.divider()
    st.markdown("**Ask Gemini** for a list from a sample of descriptions (one text-only request)")
    chosen_settings, simulated = _suggestion_settings(datasets)
    left, right = st.columns(2)
    sample = int(
        left.number_input(
            "Descriptions to send", min_value=5, max_value=500, value=SUGGEST_SAMPLE, key="suggest_sample"
        )
    )
    proposals = int(
        right.number_input(
            "At most this many categories",
            min_value=3,
            max_value=suggestions.MAX_PROPOSALS,
            value=SUGGEST_PROPOSALS,
            key="suggest_proposals",
        )
    )
    if simulated:
        st.caption("Only example datasets are chosen: the built-in fake Gemini answers (simulated).")
    elif not common.has_key(settings):
        st.caption("No Gemini API key is set (GEMINI_API_KEY or config.yaml): use the counts above.")
    if st.button("Ask Gemini", key="suggest_ask", disabled=not (simulated or common.has_key(settings))):
        with st.spinner("Asking Gemini ..."):
            result = common.run_or_error(
                lambda: suggestions.suggest_with_gemini(
                    store, chosen_settings, datasets or None, sample_size=sample, proposals=proposals
                )
            )
        if result is not None:
            st.session_state[SUGGESTED] = (
                result.frame(),
                result.sample_size,
                result.model,
                result.cost_usd if result.price_known else None,
                simulated,
                result.dropped,
            )
    suggested = st.session_state.get(SUGGESTED)
    if suggested is None:
        return
    frame, size, model, cost, was_simulated, dropped = suggested
    price = f"${cost:.4f}" if cost is not None else price_unknown(model)
    st.caption(
        common.plain(f"{model} proposed {len(frame)} categories from {size} descriptions ({price})")
        + (" · simulated" if was_simulated else "")
        + ". Edit names and definitions, untick what you "
        "do not want, then adopt."
    )
    for note in dropped:
        st.caption(f"Left out {common.plain(note)}")
    edited = st.data_editor(
        frame,
        key="suggest_editor",
        hide_index=True,
        num_rows="dynamic",
        column_config={"definition": st.column_config.TextColumn("definition", width="large")},
    )
    mode = st.radio("Adopt as", CATEGORY_IMPORT_MODES, format_func=MODE_HELP.__getitem__, key="suggest_mode")
    if st.button("Adopt", key="suggest_adopt", type="primary"):
        rows = [
            Category(str(r["name"] or ""), str(r["definition"] or ""))
            for r in edited.to_dict("records")
            if r.get("adopt") and str(r.get("name") or "").strip()
        ]
        st.session_state.pop(SUGGESTED, None)
        _apply(lambda: import_categories(store, rows, mode=str(mode), source="Gemini suggestions"))


def _categorize_jobs() -> list[Job]:
    """The newest categorize runs of this process (started here or on the Run page)."""
    return [job for job in common.job_manager().jobs() if job.request.mode == "categorize"][:3]


def _recategorize_progress() -> None:
    """The runs' progress, polled while one is going; once they ended, the newest one's result."""
    jobs = _categorize_jobs()
    if any(not job.finished for job in jobs):
        _poll_progress()
        return
    for job in jobs:
        common.progress_card(job, job.progress())
    if jobs:
        _run_result(jobs[0])


@st.fragment(run_every=1)
def _poll_progress() -> None:
    jobs = _categorize_jobs()
    for job in jobs:
        common.progress_card(job, job.progress())
    if all(job.finished for job in jobs):
        st.rerun(scope="app")  # the run ended: redraw the view, whose counts it changed, with its result


def _run_result(job: Job) -> None:
    counts = store.run_category_counts(job.run_id)
    if counts.empty:
        return
    st.caption(
        f"Run #{job.run_id} gave {wording.count(len(counts), 'category', 'categories')} "
        f"to {wording.count(job.progress().done, 'image')}:"
    )
    st.dataframe(counts, hide_index=True)


def _recategorize_tab() -> None:
    # Progress first: a run that ends while the view draws is then drawn ended, with the counts below it fresh.
    _recategorize_progress()
    names = store.dataset_names()
    if not names:
        st.info("No datasets yet: import one on the Datasets page.")
        return
    datasets = st.multiselect("Datasets", names, default=names, format_func=common.visible, key="recat_datasets")
    every = st.checkbox("Every image not categorized against this list (not only the affected ones)", key="recat_every")
    if not datasets:
        st.info("Choose one or more datasets.")
        return
    found = common.run_or_error(lambda: _affected(settings.db_path, store.labels_fingerprint(), tuple(datasets), every))
    if found is None:
        return
    st.caption(
        "Affected: images never categorized; every image when a category was added or a definition "
        "changed; otherwise images carrying a category deleted, deactivated, renamed or merged since they "
        "were categorized. Human labels are never changed by a run."
    )
    st.text(
        f"{len(found.images):,} of {found.described:,} described images may change with list version "
        f"{found.list_version}."
    )
    if found.images.empty:
        st.success("Nothing to re-categorize for this list.")
    else:
        st.dataframe(found.summary(), hide_index=True)
        with st.expander("Images"):
            st.dataframe(found.images[["dataset", "name", "categories", "reason"]].head(1000), hide_index=True)
        plan = recategorize.estimate(store, settings, len(found.images))
        columns = st.columns(3)
        columns[0].metric("Requests (text only)", f"{plan.requests:,}")
        columns[1].metric("Expected tokens", f"{plan.tokens_in + plan.tokens_out:,}")
        columns[2].metric("Expected cost", f"${plan.cost_usd:,.4f}" if plan.price_known else "unknown")
        st.caption(common.plain(f"Estimate: {plan.line()}"))
        simulated = all(name in demo.EXAMPLE_DATASETS for name in datasets)
        can_start = simulated or common.has_key(settings)
        if not (simulated or common.has_key(settings)):
            st.caption("No Gemini API key is set (GEMINI_API_KEY or config.yaml).")
        if st.button("Re-categorize", key="recat_start", type="primary", disabled=not can_start):
            run_settings = demo.simulated_settings(settings) if simulated else settings
            job = common.run_or_error(
                lambda: recategorize.start(
                    common.job_manager(),
                    datasets,
                    None if every else found.image_ids,
                    simulated=simulated,
                    settings=run_settings,
                )
            )
            if job is not None:
                st.session_state[FLASH] = ("info", f"Run #{job.run_id} started: its progress shows below.")
                st.rerun()  # its progress shows at the top of this view


_header()
DRAWN = (_list_tab, _change_tab, _history_tab, _import_export_tab, _suggestions_tab, _recategorize_tab)
for view, draw in zip(st.tabs(VIEWS, key=VIEW, on_change="rerun"), DRAWN, strict=True):
    if view.open:
        with view:
            draw()
