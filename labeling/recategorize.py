"""Re-categorize after a change of the category list: only the images whose categories may change, from their
stored descriptions (text only: no image is read or sent), human labels untouched.

Which images a change may affect. Each image's current annotation records the list version it was categorized
against (v); the list now is version V. Comparing the list at v (names read through the renames and merges made
since) with the list now:
- never categorized (a description without categories): affected;
- v = V: not affected;
- a category was added or reactivated, or a definition changed, since v: every image categorized against v
  (any of them may now fit it, or no longer fit);
- otherwise, images carrying a category deleted or deactivated since v, or renamed or merged since v (its name in
  the prompt changed, so the model may now choose differently): affected; the others keep their categories;
- v unknown (categories imported from the seed's CSVs): affected when a category is not in the list now.
Human labels are never touched by a run; the effective label keeps the reviewer's categories where set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from labeling.categories import UNKNOWN, Category
from labeling.errors import InputError
from labeling.jobs import Job, JobManager
from labeling.planning import Estimate, JobRequest, cost_of, per_request
from labeling.settings import Settings
from labeling.store import Store
from labeling.taxonomy import ensure_categories

NOT_CATEGORIZED = "not categorized yet"


@dataclass(frozen=True)
class Affected:
    """The images a re-categorization would send, and why."""

    images: pd.DataFrame  # image_id, dataset_id, dataset, name, categories, list_version, reason
    list_version: int
    described: int  # described images in the datasets

    @property
    def image_ids(self) -> list[int]:
        return [int(i) for i in self.images["image_id"]]

    def summary(self) -> pd.DataFrame:
        """reason, images: how many images each reason brings in."""
        if self.images.empty:
            return pd.DataFrame({"reason": pd.Series(dtype=str), "images": pd.Series(dtype="int64")})
        return (
            self.images.groupby("reason", sort=False)
            .size()
            .rename("images")
            .reset_index()
            .sort_values("images", ascending=False, kind="stable")
            .reset_index(drop=True)
        )


def _active(categories: Sequence[Category]) -> dict[str, str]:
    return {c.name: c.definition for c in categories if c.active}


def _aliases_after(aliases: pd.DataFrame, version: int) -> dict[str, str]:
    """old name -> new name for labels made against `version` (the earliest alias ahead of it wins)."""
    found: dict[str, str] = {}
    for row in aliases.sort_values("since_version").to_dict("records"):
        if int(row["since_version"]) > version and row["old_name"] not in found:
            found[str(row["old_name"])] = str(row["new_name"])
    return found


def _version_rule(
    then: Sequence[Category], now: dict[str, str], aliases: dict[str, str]
) -> tuple[bool, list[str], str]:
    """(every image, names that make an image affected, reason) for images categorized against `then`."""
    old = {aliases.get(name, name): definition for name, definition in _active(then).items()}
    added = [name for name in now if name not in old]
    redefined = [name for name in now if name in old and old[name] != now[name]]
    if added or redefined:
        parts = []
        if added:
            parts.append("added " + ", ".join(map(repr, added[:3])) + (" ..." if len(added) > 3 else ""))
        if redefined:
            parts.append(
                "new definition of " + ", ".join(map(repr, redefined[:3])) + (" ..." if len(redefined) > 3 else "")
            )
        return True, [], "list changed: " + "; ".join(parts)
    removed = [name for name in old if name not in now]
    renamed = [name for name in _active(then) if aliases.get(name, name) != name]
    names = [*removed, *renamed]
    parts = []
    if removed:
        parts.append("removed " + ", ".join(map(repr, removed)))
    if renamed:
        parts.append("renamed/merged " + ", ".join(f"{n!r} -> {aliases[n]!r}" for n in renamed))
    return False, names, "carries a category " + "; ".join(parts) if parts else ""


def affected_images(store: Store, datasets: Sequence[str], *, every: bool = False) -> Affected:
    """The described images of `datasets` whose categories may change with the list in force (module doc).

    `every`: all described images not categorized against the list in force, whatever changed.
    """
    if not datasets:
        raise InputError("Choose at least one dataset.")
    ensure_categories(store)
    names_by_id = {store.dataset(name).id: name for name in dict.fromkeys(datasets)}
    ids = list(names_by_id)
    version = store.category_list_version()
    now = _active(store.categories())
    aliases = store.category_aliases()
    state = store.categorization_state(ids)
    frames = []
    for row in state.to_dict("records"):
        then = None if pd.isna(row["list_version"]) else int(row["list_version"])
        if then == version:
            found = store.images_to_recategorize(ids, then)
            reason_all = ""
        elif then is None:
            found = store.images_to_recategorize(ids, None, every=every, outside_of=[*now, UNKNOWN])
            reason_all = "categorized outside the app" if every else "carries a category not in the list"
        elif every:
            found = store.images_to_recategorize(ids, then, every=True)
            reason_all = f"categorized against list version {then}"
        else:
            all_images, names, reason_all = _version_rule(
                store.category_list_at(then), now, _aliases_after(aliases, then)
            )
            if not all_images and not names:
                found = store.images_to_recategorize(ids, then)
            else:
                found = store.images_to_recategorize(ids, then, every=all_images, names=names)
            reason_all = f"v{then}: {reason_all}"
        if found.empty:
            continue
        found["list_version"] = then
        uncategorized = found["categories"].isna()
        found["reason"] = [NOT_CATEGORIZED if missing else reason_all for missing in uncategorized]
        frames.append(found)
    columns = ["image_id", "dataset_id", "dataset", "name", "categories", "list_version", "reason"]
    if frames:
        images = pd.concat(frames, ignore_index=True).sort_values("image_id", kind="stable").reset_index(drop=True)
    else:
        images = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    images["dataset"] = [names_by_id.get(int(i), "") for i in images["dataset_id"]]
    described = int(state["images"].sum()) if not state.empty else 0
    return Affected(images[columns], version, described)


def estimate(store: Store, settings: Settings, images: int, *, model: str | None = None) -> Estimate:
    """Cost of `images` categorize requests (text only): past averages of the model, else the prompt's size."""
    model = (model or settings.caption_model).strip()
    sample = [item["description"] for item in store.description_sample(None, 20)]
    figures = per_request(store, settings, model, "categorize", store.categories(), descriptions=sample)
    basis = "averages of past categorize requests" if figures.from_history else "typical sizes"
    tokens_in, tokens_out = round(images * figures.tokens_in), round(images * figures.tokens_out)
    cost = cost_of(settings, model, tokens_in, tokens_out)
    return Estimate(
        images,
        images,
        tokens_in,
        tokens_out,
        cost or 0.0,
        model,
        basis,
        price_known=cost is not None,
        service_tier=settings.service_tier,
        text_only=True,
    )


def start(
    manager: JobManager,
    datasets: Sequence[str],
    image_ids: Sequence[int] | None,
    *,
    model: str | None = None,
    simulated: bool = False,
    settings: Settings | None = None,
) -> Job:
    """Start a categorize run (text only, from stored descriptions) through the job runner.

    `image_ids` limits it to those images (from `affected_images`); None re-categorizes every described image
    not categorized against the list in force. Returns the runner's Job (progress as on the Run page).
    """
    if image_ids is not None and not image_ids:
        raise InputError("No image needs re-categorizing: nothing to run.")
    request = JobRequest(
        tuple(dict.fromkeys(datasets)),
        mode="categorize",
        model=model,
        image_ids=None if image_ids is None else tuple(int(i) for i in image_ids),
    )
    return manager.start(request, settings=settings, simulated=simulated)
