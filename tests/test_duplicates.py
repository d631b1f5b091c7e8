"""Duplicates and leakage: real images hashed with imagehash, a real DuckDB file, the `labeling duplicates` CLI."""

from __future__ import annotations

import csv
import hashlib
import io
import random
from collections.abc import Callable
from pathlib import Path

import imagehash
import pandas as pd
import pytest
from PIL import Image, ImageChops, ImageDraw

from labeling.duplicates import find_duplicates
from labeling.errors import InputError
from labeling.store import Store
from labeling.store.facts import FactRow
from tests.conftest import CliResult


def _photo(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    """Gradients, shapes and noise: hashes like a photo, unlike a flat test card (whose pHashes all agree)."""
    rng = random.Random(seed)
    width, height = size
    bands = [Image.linear_gradient("L").rotate(rng.randrange(360)).resize(size) for _ in range(2)]
    img = Image.merge("RGB", [*bands, Image.radial_gradient("L").resize(size)])
    draw = ImageDraw.Draw(img)
    for _ in range(30):
        x, y = rng.randrange(width), rng.randrange(height)
        box = (x, y, x + rng.randrange(width // 10, width // 2), y + rng.randrange(height // 10, height // 2))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    noise = Image.merge("RGB", [Image.effect_noise(size, 12) for _ in range(3)])
    return ImageChops.add(img, noise, scale=1.0, offset=-128)


def _encode(img: Image.Image, fmt: str = "JPEG", **options: int) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _as_int(value: imagehash.ImageHash) -> int:
    return int("".join("1" if bit else "0" for bit in value.hash.flatten()), 2)


def _hashes(data: bytes) -> tuple[str, int, int]:
    img = Image.open(io.BytesIO(data))
    return hashlib.sha256(data).hexdigest(), _as_int(imagehash.phash(img)), _as_int(imagehash.dhash(img))


def _distances(a: bytes, b: bytes) -> tuple[int, int]:
    (_, pa, da), (_, pb, db) = _hashes(a), _hashes(b)
    return (pa ^ pb).bit_count(), (da ^ db).bit_count()


def _add_dataset(store: Store, folder: Path, name: str, label: str, files: dict[str, bytes]) -> dict[str, int]:
    """A dataset of these files on disk, with the facts the scan would record (sha256, pHash, dHash)."""
    for file_name, data in files.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        (folder / name / file_name).write_bytes(data)
    dataset_id = store.save_dataset(name, label=label, source_kind="local", source_uri=str(folder / name))
    frame = pd.DataFrame({"name": list(files), "location": list(files), "status": "found", "detail": None})
    store.upsert_images(dataset_id, frame)
    ids = dict(zip(*[store.image_ids_by_name(dataset_id)[c] for c in ("name", "image_id")], strict=True))
    rows = []
    for file_name, data in files.items():
        sha, phash, dhash = _hashes(data)
        rows.append(FactRow(int(ids[file_name]), "test", sha256=sha, phash=phash, dhash=dhash))
    store.record_facts(rows)
    return {str(k): int(v) for k, v in ids.items()}


def _names(report_groups: object) -> list[set[str]]:
    return [{f"{image.dataset}/{image.name}" for image in group.images} for group in report_groups]  # type: ignore[attr-defined]


def _unrelated(first_seed: int, count: int) -> dict[str, bytes]:
    return {f"other_{seed}.jpg": _encode(_photo(seed), quality=90) for seed in range(first_seed, first_seed + count)}


def test_exact_duplicates_within_and_across_datasets_are_grouped_and_saved(store: Store, tmp_path: Path) -> None:
    shared, twin = _encode(_photo(1), quality=90), _encode(_photo(2), quality=90)
    real = _add_dataset(
        store, tmp_path, "REAL", "REAL", {"a.jpg": shared, "b.jpg": twin, "b_again.jpg": twin, **_unrelated(10, 3)}
    )
    gen = _add_dataset(store, tmp_path, "GEN", "GEN", {"copy_of_a.jpg": shared, **_unrelated(20, 3)})

    report = find_duplicates(store, ["REAL", "GEN"], 6)

    assert _names(report.groups) == [{"REAL/a.jpg", "GEN/copy_of_a.jpg"}, {"REAL/b.jpg", "REAL/b_again.jpg"}]
    leak, within = report.groups
    assert (leak.kind, leak.leakage, leak.across_datasets) == ("exact", True, True)
    assert (within.kind, within.leakage, within.across_datasets) == ("exact", False, False)
    assert (report.exact_within, report.near_within, report.across, report.leaked_real_images) == (1, 0, 1, 1)
    assert report.summary_lines()[0].startswith("LEAKAGE: 1 group holds the same picture under different labels")
    saved = store.fetch_all("SELECT image_id, group_id, kind, leakage FROM duplicate_groups ORDER BY image_id")
    first, second = min(real["a.jpg"], gen["copy_of_a.jpg"]), min(real["b.jpg"], real["b_again.jpg"])
    assert saved == sorted(
        [
            (real["a.jpg"], first, "exact", True),
            (gen["copy_of_a.jpg"], first, "exact", True),
            (real["b.jpg"], second, "exact", False),
            (real["b_again.jpg"], second, "exact", False),
        ]
    )


def test_reencoded_and_resized_copies_in_gen_are_near_duplicates_and_leakage(store: Store, tmp_path: Path) -> None:
    photo = _photo(3, (640, 480))
    original = _encode(photo, quality=92)
    reencoded = _encode(Image.open(io.BytesIO(original)), quality=55)
    resized = _encode(photo.resize((320, 240), Image.Resampling.BICUBIC), "PNG")
    _add_dataset(store, tmp_path, "REAL", "REAL", {"photo.jpg": original, **_unrelated(30, 5)})
    _add_dataset(
        store, tmp_path, "GEN", "GEN", {"photo_q55.jpg": reencoded, "photo_half.png": resized, **_unrelated(40, 5)}
    )

    report = find_duplicates(store, ["REAL", "GEN"], 6)

    assert _names(report.groups) == [{"REAL/photo.jpg", "GEN/photo_q55.jpg", "GEN/photo_half.png"}]
    (group,) = report.groups
    assert (group.kind, group.leakage, group.labels) == ("near", True, ("GEN", "REAL"))
    assert [image.name for image in group.leaked_real] == ["photo.jpg"]
    assert (report.near_within, report.across, report.leakage_groups, report.leaked_real_images) == (0, 1, 1, 1)
    assert report.hashed_images == report.found_images == 13  # the 10 unrelated photos were searched, not grouped


def test_a_copy_is_grouped_only_within_the_configured_distance(store: Store, tmp_path: Path) -> None:
    photo = _photo(4)
    original = _encode(photo, quality=90)
    cropped = _encode(photo.crop((12, 9, 480, 360)), quality=90)  # a 2.5% crop: a few bits apart
    distance = max(_distances(original, cropped))
    assert 1 <= distance <= 12
    _add_dataset(store, tmp_path, "GEN", "GEN", {"photo.jpg": original, "photo_crop.jpg": cropped, **_unrelated(50, 4)})

    assert find_duplicates(store, ["GEN"], distance - 1).groups == ()
    report = find_duplicates(store, ["GEN"], distance)
    assert _names(report.groups) == [{"GEN/photo.jpg", "GEN/photo_crop.jpg"}]
    assert (report.groups[0].kind, report.near_within, report.leakage_groups) == ("near", 1, 0)
    assert report.summary_lines()[0] == "No leakage: no picture appears under two labels."
    with pytest.raises(InputError, match=r"0\.\.12 bits"):
        find_duplicates(store, ["GEN"], 13)


def test_band_search_finds_every_pair_at_the_distance_and_none_beyond(store: Store) -> None:
    rng = random.Random(7)
    dataset_id = store.save_dataset("GEN", label="GEN", source_kind="none")
    names = [f"{i}.png" for i in range(400)]
    store.upsert_images(dataset_id, pd.DataFrame({"name": names, "location": names, "status": "found", "detail": None}))
    ids = store.image_ids_by_name(dataset_id).sort_values("image_id")["image_id"].tolist()

    def flip(value: int, bits: int) -> int:
        for bit in rng.sample(range(64), bits):
            value ^= 1 << bit
        return value

    hashes = {int(i): (rng.getrandbits(64), rng.getrandbits(64)) for i in ids}
    planted, beyond = [], []
    for distance in (0, 3, 6):
        for index in range(0, 60, 2):
            a, b = int(ids[distance * 20 + index]), int(ids[distance * 20 + index + 1])
            hashes[b] = (flip(hashes[a][0], distance), flip(hashes[a][1], distance))
            planted.append((distance, a, b))
    for index in range(200, 240, 2):  # one hash one bit too far: not a near duplicate at 6
        a, b = int(ids[index]), int(ids[index + 1])
        hashes[b] = (
            (flip(hashes[a][0], 7), flip(hashes[a][1], 1)) if index % 4 else (hashes[a][0], flip(hashes[a][1], 7))
        )
        beyond.append((a, b))
    store.record_facts([FactRow(i, "test", sha256=f"{i:064x}", phash=p, dhash=d) for i, (p, d) in hashes.items()])

    for distance in (0, 3, 6):
        exact, near = store.duplicate_pairs([dataset_id], distance)
        assert exact == []
        found = {(a, b) for a, b, _, _ in near}
        assert {(a, b) for d, a, b in planted if d <= distance} <= found
        assert not {(a, b) for d, a, b in planted if d > distance} & found
        assert not set(beyond) & found
        assert all(pd_ <= distance and dd <= distance for _, _, pd_, dd in near)


def _scanned(run_cli: Callable[..., CliResult], tmp_path: Path, name: str, label: str, files: dict[str, bytes]) -> None:
    folder = tmp_path / "images" / name
    folder.mkdir(parents=True)
    for file_name, data in files.items():
        (folder / file_name).write_bytes(data)
    assert run_cli("import", "--dataset", name, "--label", label, "--images-dir", str(folder)).code == 0
    scan = run_cli("scan", "--dataset", name, "--num-workers", "1")
    assert scan.code == 0, scan.err


def test_cli_prints_leakage_first_writes_a_formula_safe_csv_and_reads_the_setting(
    run_cli: Callable[..., CliResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = _photo(5, (640, 480))
    original = _encode(photo, quality=92)
    _scanned(run_cli, tmp_path, "REAL", "REAL", {"=HYPERLINK(1).jpg": original, **_unrelated(60, 3)})
    _scanned(run_cli, tmp_path, "GEN", "GEN", {"from_real.jpg": _encode(photo, quality=60), **_unrelated(70, 3)})
    target = tmp_path / "out" / "dups.csv"

    done = run_cli("duplicates", "--datasets", "REAL", "GEN", "--csv", str(target))

    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert lines[0] == (
        "LEAKAGE: 1 group holds the same picture under different labels (GEN, REAL); "
        "1 REAL image has a copy under another label."
    )
    assert "Duplicates across datasets: 1 group (2 images)" in lines
    assert any("LEAKAGE group" in line and "REAL/=HYPERLINK(1).jpg" in line for line in lines)
    assert "Searched 8 of 8 found images of REAL, GEN; near means pHash and dHash both within 6 bits." in lines
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert sorted(row["image_name"] for row in rows) == ["'=HYPERLINK(1).jpg", "from_real.jpg"]
    assert {row["leakage"] for row in rows} == {"True"}

    monkeypatch.setenv("LABELING_NEAR_DUPLICATE_DISTANCE", "0")
    strict = run_cli("duplicates", "--datasets", "REAL", "GEN")
    assert strict.code == 0
    assert "near means pHash and dHash both within 0 bits." in strict.out  # the setting, no --distance
    monkeypatch.setenv("LABELING_NEAR_DUPLICATE_DISTANCE", "40")
    bad = run_cli("duplicates", "--datasets", "REAL", "GEN")
    assert bad.code == 1 and "near_duplicate_distance" in bad.err


def test_cli_says_what_to_do_without_hashes_or_with_an_unknown_dataset(
    run_cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    folder = tmp_path / "images" / "REAL"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(_encode(_photo(8), quality=90))
    assert run_cli("import", "--dataset", "REAL", "--label", "REAL", "--images-dir", str(folder)).code == 0

    unscanned = run_cli("duplicates", "--datasets", "REAL")
    assert unscanned.code == 1
    assert "None of the 1 found images of REAL has hashes yet: run `labeling scan --dataset REAL`" in unscanned.err
    unknown = run_cli("duplicates", "--datasets", "REAL", "NOPE")
    assert unknown.code == 1 and "There is no dataset named 'NOPE'" in unknown.err
