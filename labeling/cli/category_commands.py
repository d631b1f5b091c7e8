"""`labeling categories ...` (the list, its history, suggestions, re-categorizing) and the seed's
`labeling extract-categories`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeling.cli import context
from labeling.vocabulary import CATEGORY_IMPORT_MODES, SUGGEST_PROPOSALS, SUGGEST_SAMPLE

if TYPE_CHECKING:
    import pandas as pd

    from labeling.categories import ListChange
    from labeling.store import Store


def register(subparsers: Any) -> None:

    extract = subparsers.add_parser(
        "extract-categories",
        help="the seed's command: unique categories of a categorized CSV",
        description="Reads the `Categories` column (comma-separated names) and writes its unique, trimmed "
        "values, sorted, to a one-column CSV with the header `Category` (unique_categories.csv).",
    )
    extract.add_argument("--input-csv", required=True, help="CSV with a Categories column (categorized_overview.csv)")
    extract.add_argument("--output-csv", required=True, help="where to write unique_categories.csv")
    extract.set_defaults(handler=run_extract)

    categories = subparsers.add_parser(
        "categories",
        help="the category list: list, import, export, edit, history, suggest, re-categorize",
        description="Every change makes a new list version. Renames and merges carry through to human labels "
        "(edit-logged) and to model labels (read through aliases; history is kept).",
    )
    verbs = categories.add_subparsers(dest="verb", metavar="VERB", required=True)

    listing = verbs.add_parser("list", help="the list in force with definitions")
    listing.add_argument("--all", action="store_true", help="include deactivated categories")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=run_list)

    importing = verbs.add_parser("import", help="adopt a Category[,Definition] CSV (unique_categories.csv)")
    importing.add_argument("--csv-file", required=True)
    importing.add_argument(
        "--mode",
        choices=CATEGORY_IMPORT_MODES,
        default="replace",
        help="replace: the file becomes the active list, others are deactivated (default); "
        "add: append the names not in the list yet",
    )
    importing.set_defaults(handler=run_import)

    exporting = verbs.add_parser("export", help="write the list as unique_categories.csv (header Category)")
    exporting.add_argument("--csv-file", required=True)
    exporting.add_argument("--definitions", action="store_true", help="add a Definition column")
    exporting.add_argument("--all", action="store_true", help="include deactivated categories")
    exporting.set_defaults(handler=run_export)

    add = verbs.add_parser("add", help="add a category")
    add.add_argument("name")
    add.add_argument("--definition", default="", help="what belongs in it (goes into the prompt)")
    add.set_defaults(handler=run_add)

    define = verbs.add_parser("define", help="change a category's definition")
    define.add_argument("name")
    define.add_argument("--definition", required=True)
    define.set_defaults(handler=run_define)

    rename = verbs.add_parser("rename", help="rename a category (labels follow)")
    rename.add_argument("old")
    rename.add_argument("new")
    rename.add_argument("--reviewer", help="name recorded in the edit log of rewritten human labels")
    rename.set_defaults(handler=run_rename)

    merge = verbs.add_parser("merge", help="fold categories into another (labels follow)")
    merge.add_argument("sources", nargs="+", metavar="SOURCE")
    merge.add_argument("--into", required=True, metavar="TARGET")
    merge.add_argument("--definition", help="new definition of the target")
    merge.add_argument("--reviewer", help="name recorded in the edit log of rewritten human labels")
    merge.set_defaults(handler=run_merge)

    for verb, active in (("deactivate", False), ("activate", True)):
        toggle = verbs.add_parser(
            verb, help=f"{verb} a category ({'left out of' if not active else 'back in'} the prompt, definition kept)"
        )
        toggle.add_argument("name")
        toggle.set_defaults(handler=run_toggle, active=active)

    delete = verbs.add_parser("delete", help="remove a category and its definition (labels carrying it stay)")
    delete.add_argument("name")
    delete.set_defaults(handler=run_delete)

    history = verbs.add_parser("history", help="list versions")
    history.add_argument("--show", type=int, metavar="VERSION", help="print the list as it was at VERSION")
    history.set_defaults(handler=run_history)

    suggest = verbs.add_parser(
        "suggest",
        help="suggest categories from the descriptions",
        description="Without --gemini: the most frequent objects, scene words, settings and genres in the stored "
        "descriptions (no API). With --gemini: Gemini proposes names and definitions from a sample of "
        "descriptions (one text-only request); edit the CSV, then `labeling categories import`.",
    )
    suggest.add_argument("--dataset", action="append", metavar="NAME", help="only these datasets (repeatable)")
    suggest.add_argument("--top", type=int, default=20, help="terms per field (counts; default 20)")
    suggest.add_argument("--gemini", action="store_true", help="ask Gemini for a list")
    suggest.add_argument("--sample", type=int, default=SUGGEST_SAMPLE, help="descriptions to send")
    suggest.add_argument("--proposals", type=int, default=SUGGEST_PROPOSALS, help="at most this many categories")
    suggest.add_argument("--model", help="Gemini model (default: caption_model)")
    suggest.add_argument("--output-csv", help="write Category,Definition (Gemini) or the counts here")
    suggest.set_defaults(handler=run_suggest)

    affected = verbs.add_parser("affected", help="which images the last list changes may affect, and why")
    affected.add_argument("--dataset", action="append", required=True, metavar="NAME")
    affected.add_argument("--all", action="store_true", help="every image not categorized against this list")
    affected.add_argument("--output-csv", help="write the images (name, dataset, categories, reason)")
    affected.set_defaults(handler=run_affected)

    redo = verbs.add_parser(
        "recategorize",
        help="re-categorize affected images from their descriptions (text only, resumable)",
        description="Only the images whose categories may change (see `affected`), or --all out-of-date ones; "
        "human labels are never touched. Prints the estimate first.",
    )
    redo.add_argument("--dataset", action="append", required=True, metavar="NAME")
    redo.add_argument("--all", action="store_true", help="every image not categorized against this list")
    redo.add_argument("--num-workers", type=int, metavar="N")
    redo.add_argument("--rpm", type=int, metavar="N", help="requests per minute (0: no limit)")
    redo.add_argument("--model", help="Gemini model (default: caption_model)")
    redo.add_argument("--yes", "-y", action="store_true", help="start without asking after the estimate")
    redo.set_defaults(handler=run_recategorize, retry_failed=False)


def _write(path: str, data: bytes) -> None:
    """Write atomically: an interrupted write leaves the old file."""
    from labeling.files import write_atomically

    write_atomically(path, data)


def _store(args: argparse.Namespace) -> Store:
    from labeling.taxonomy import ensure_categories

    store = context.store(args)
    ensure_categories(store)
    return store


def _reviewer(args: argparse.Namespace) -> str:
    return (getattr(args, "reviewer", None) or context.settings(args).reviewer or "").strip()


def _report(store: Store, change: ListChange) -> int:
    from labeling.categories import list_plan

    if change.note == "unchanged":
        print("Nothing changed.")
        return 0
    print(f"Version {change.version}: {change.note}.")
    if change.human_labels_changed:
        print(f"Rewrote {change.human_labels_changed:,} human labels (undo each from the edit log).")
    plan = list_plan(store.categories())
    if plan.message:
        print(f"Note: {plan.message}")
    print("Images categorized before may need it again: `labeling categories affected --dataset NAME`.")
    return 0


def run_extract(args: argparse.Namespace) -> int:
    from labeling.datasets import read_csv_file
    from labeling.taxonomy import extract_categories, unique_categories_csv

    names = extract_categories(read_csv_file(args.input_csv), args.input_csv)
    _write(args.output_csv, unique_categories_csv(names))
    print(f"Successfully created {args.output_csv} with {len(names)} unique categories.")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from labeling.categories import list_plan

    store = _store(args)
    items = store.categories(include_inactive=args.all)
    if args.json:
        print(
            json.dumps(
                [{"name": c.name, "definition": c.definition, "active": c.active} for c in items],
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    print(f"Category list version {store.category_list_version()}: {sum(c.active for c in items)} active.")
    width = max((len(c.name) for c in items), default=0)
    for c in items:
        flag = "" if c.active else " (deactivated)"
        print(f"  {c.name:<{width}}  {c.definition}{flag}")
    plan = list_plan(items)
    if plan.message:
        print(f"Note: {plan.message}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from labeling.datasets import read_csv_file
    from labeling.taxonomy import import_categories, parse_category_csv

    store = _store(args)
    items = parse_category_csv(read_csv_file(args.csv_file), args.csv_file)
    return _report(store, import_categories(store, items, mode=args.mode, source=Path(args.csv_file).name))


def run_export(args: argparse.Namespace) -> int:
    from labeling.taxonomy import category_csv

    store = _store(args)
    items = store.categories(include_inactive=args.all)
    _write(args.csv_file, category_csv(items, definitions=args.definitions))
    print(f"Wrote {len(items)} categories (list version {store.category_list_version()}) to {args.csv_file}.")
    return 0


def run_add(args: argparse.Namespace) -> int:
    store = _store(args)
    return _report(store, store.add_category(args.name, args.definition))


def run_define(args: argparse.Namespace) -> int:
    store = _store(args)
    return _report(store, store.set_category_definition(args.name, args.definition))


def run_rename(args: argparse.Namespace) -> int:
    store = _store(args)
    return _report(store, store.rename_category(args.old, args.new, reviewer=_reviewer(args)))


def run_merge(args: argparse.Namespace) -> int:
    store = _store(args)
    return _report(
        store, store.merge_categories(args.sources, args.into, reviewer=_reviewer(args), definition=args.definition)
    )


def run_toggle(args: argparse.Namespace) -> int:
    store = _store(args)
    return _report(store, store.set_category_active(args.name, args.active))


def run_delete(args: argparse.Namespace) -> int:
    store = _store(args)
    return _report(store, store.delete_category(args.name))


def run_history(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.show is not None:
        for c in store.category_list_at(args.show):
            print(f"  {c.name}: {c.definition}" + ("" if c.active else " (deactivated)"))
        return 0
    for row in store.category_versions().to_dict("records"):
        print(f"v{row['version']}  {row['created_at']:%Y-%m-%d %H:%M}  {row['active']:>3} active  {row['note']}")
    return 0


def _print_frame(frame: pd.DataFrame) -> None:
    print(frame.to_string(index=False))


def run_suggest(args: argparse.Namespace) -> int:
    from labeling import suggestions
    from labeling.spreadsheet import frame_csv
    from labeling.taxonomy import category_csv

    store = _store(args)
    if args.gemini:
        settings = context.settings(args, caption_model=args.model)
        result = suggestions.suggest_with_gemini(
            store, settings, args.dataset, sample_size=args.sample, proposals=args.proposals
        )
        print(
            f"Gemini ({result.model}) proposed {len(result.categories)} categories from {result.sample_size} "
            f"descriptions ({result.usage.prompt:,} input + {result.usage.output:,} output tokens, "
            f"${result.cost_usd:.4f}):"
        )
        for c in result.categories:
            print(f"  {c.name}: {c.definition}")
        for note in result.dropped:
            print(f"  (left out {note})")
        if args.output_csv:
            _write(args.output_csv, category_csv(result.categories, definitions=True))
            print(
                f"Wrote them to {args.output_csv}: edit it, then `labeling categories import --csv-file "
                f"{args.output_csv}` (--mode add keeps the current list)."
            )
        return 0
    frame = suggestions.term_counts(store, args.dataset, args.top)
    if frame.empty:
        print("No image has a description yet: describe some images first.")
        return 0
    if args.output_csv:
        _write(args.output_csv, frame_csv(frame))
        print(f"Wrote {len(frame)} terms to {args.output_csv}.")
        return 0
    shown = frame.assign(
        share=[f"{s:.0%}" for s in frame["share"]], in_list=["yes" if v else "" for v in frame["in_list"]]
    )
    _print_frame(shown)
    return 0


def run_affected(args: argparse.Namespace) -> int:
    from labeling import recategorize
    from labeling.spreadsheet import frame_csv

    store = _store(args)
    found = recategorize.affected_images(store, args.dataset, every=args.all)
    print(
        f"{len(found.images):,} of {found.described:,} described images may change with list version "
        f"{found.list_version}:"
    )
    for row in found.summary().to_dict("records"):
        print(f"  {row['images']:,}  {row['reason']}")
    if args.output_csv:
        frame = found.images.assign(
            categories=[", ".join(c) if c is not None and len(c) else "" for c in found.images["categories"]]
        )
        _write(args.output_csv, frame_csv(frame[["dataset", "name", "categories", "reason"]]))
        print(f"Wrote the list to {args.output_csv}.")
    return 0


def run_recategorize(args: argparse.Namespace) -> int:
    from labeling import recategorize
    from labeling.cli.caption_commands import run_job
    from labeling.planning import JobRequest

    store = _store(args)
    found = recategorize.affected_images(store, args.dataset, every=args.all)
    for row in found.summary().to_dict("records"):
        print(f"  {row['images']:,}  {row['reason']}")
    if found.images.empty:
        print("No image needs re-categorizing for this list.")
        return 0
    fields: dict[str, Any] = {
        "datasets": tuple(dict.fromkeys(args.dataset)),
        "mode": "categorize",
        "model": args.model,
        "num_workers": args.num_workers,
        "requests_per_minute": args.rpm,
    }
    if not args.all:
        fields["image_ids"] = tuple(found.image_ids)
    return run_job(args, JobRequest(**fields))
