"""Hostile strings from the security probe, and a database where every outside text holds them.

Outside text is anything the product did not write itself: model answers, server messages, file, dataset and
category names, reviewer names, settings values such as the model. Each must reach the browser as plain text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from labeling.datasets import import_dataset
from labeling.store import Store
from labeling.taxonomy import ensure_categories

OUTSIDE_HOST = "evil.test"
# Each construct Streamlit's Markdown knows; a page that renders one of them raw makes the browser fetch, link,
# style or reorder something the product did not write.
IMAGE = f"![e](http://{OUTSIDE_HOST}/leak.png)"
LINK = f"[click](http://{OUTSIDE_HOST}/link)"
AUTOLINK = f"http://{OUTSIDE_HOST}/auto"
HTML = f'<img src="http://{OUTSIDE_HOST}/html.png"><b class="injected">b</b>'
DIRECTIVES = ":red[styled] :material/bolt: :smile:"
LATEX = "$x^2$"
BIDI = "\u202e"
TEXT = " ".join([IMAGE, LINK, AUTOLINK, HTML, DIRECTIVES, LATEX, BIDI + "reversed"])
# A file or category name cannot hold every character (no "/" in a file name, no "," in a category).
NAME = f"![e](x.png) [click](x) <b class=injected>b :red[styled] :smile: $x^2$ {BIDI}gpj"
# Raw fragments that must never appear in text the browser renders as Markdown.
MARKERS = (
    "![e](",
    "[click](",
    f"http://{OUTSIDE_HOST}",
    "<img",
    "<b class",
    ":red[styled]",
    ":material/bolt:",
    ":smile:",
    "$x^2$",
    BIDI,
)

DATASET = f"GEN {IMAGE} :red[styled] {BIDI}"
CATEGORY = f"cat :red[styled] <b class=injected>b [click](x) $x^2$ {BIDI}"
REVIEWER = f"rev {LINK} :red[styled] {BIDI}"
MODEL = f"gemini {IMAGE} :red[styled]"
ERROR = f"Server said: {TEXT}"


def seed(store: Store, folder: Path, make_image: Callable[..., Path]) -> dict[str, int]:
    """A dataset with a hostile name of images with hostile file names, descriptions, categories, a reviewer's
    label, a failed run with a hostile model and error; returns the image ids by name."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{NAME} {index}.png" for index in range(3)]
    for index, name in enumerate(names):
        make_image(folder / name, size=(40 + index, 30))
    ensure_categories(store)
    store.add_category(CATEGORY, f"definition {TEXT}")
    import_dataset(store, DATASET, label="GEN", images_dir=folder)
    import_dataset(store, "REAL", label="REAL", csv_data=f"image_name\n{NAME}.jpg\n".encode(), csv_name="real.csv")
    dataset_id = store.dataset_id(DATASET)
    ids = store.image_ids_by_name(dataset_id).set_index("name")["image_id"].to_dict()
    run_id = store.create_run("fused", [dataset_id], {"caption_model": MODEL, "base_url": AUTOLINK})
    description = {
        "summary": TEXT,
        "objects": [{"name": TEXT, "attributes": [TEXT]}],
        "scene": {"indoor_outdoor": "indoor", "environment": TEXT},
        "style": {"genre": TEXT, "lighting": TEXT, "colors": [TEXT]},
        "camera": {"shot": TEXT, "fov": TEXT, "lens": TEXT},
        "text": TEXT,
        "quality": {"aesthetic": TEXT, "issues": [TEXT]},
    }
    annotations = pd.DataFrame(
        [
            {
                "image_id": int(ids[name]),
                "run_id": run_id,
                "kind": "fused",
                "model": MODEL,
                "prompt_version": "t",
                "category_list_version": store.category_list_version(),
                "description": json.dumps(description),
                "summary": TEXT,
                "categories": [CATEGORY],
                "tokens_in": 100,
                "tokens_out": 10,
            }
            for name in names[:2]
        ]
    )
    annotations["categories"] = annotations["categories"].astype("object")
    store.insert_annotations(annotations)
    store.insert_failures(
        pd.DataFrame(
            [
                {
                    "image_id": int(ids[names[2]]),
                    "run_id": run_id,
                    "stage": "describe",
                    "kind": "invalid_argument",
                    "message": ERROR,
                }
            ]
        )
    )
    store.set_run_status(run_id, "failed", ERROR)
    record = store.review_record(int(ids[names[0]]))
    store.save_label(
        int(ids[names[0]]), expected_version=record.version, reviewer=REVIEWER, categories=[CATEGORY], reviewed=True
    )
    from labeling.scan import FACTS_VERSION
    from labeling.store.facts import FactRow

    # Technical facts read from the files are outside text too: camera, software, generator, ICC, C2PA, keys.
    store.record_facts(
        [
            FactRow(
                int(ids[name]),
                FACTS_VERSION,
                format="PNG",
                width=40 + index,
                height=30,
                exif=True,
                exif_make=TEXT,
                exif_model=TEXT,
                exif_software=TEXT,
                icc=True,
                icc_description=TEXT,
                text_keys=[TEXT, "parameters"],
                generator=TEXT,
                c2pa=True,
                c2pa_generator=TEXT,
                sha256="ab" * 32,
            )
            for index, name in enumerate(names)
        ]
    )
    return {str(name): int(image_id) for name, image_id in ids.items()}
