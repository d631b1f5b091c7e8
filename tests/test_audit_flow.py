"""The technical-bias audit end to end, as a user runs it: scan two folders, audit them, export, debias.

REAL holds camera-like JPEGs at quality 96 in several sizes with EXIF; GEN holds 512x512 PNGs with Stable
Diffusion parameters, one of them a re-encoded copy of a REAL photo (leakage).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin
from streamlit.testing.v1 import AppTest

from labeling.datasets import import_dataset
from labeling.store import Store
from tests.conftest import CliResult, as_shown

PER_SIDE = 24


def _photo(seed: int, size: tuple[int, int]) -> Image.Image:
    """A smooth, varied picture: unrelated seeds give unrelated perceptual hashes."""
    small = Image.effect_noise((8, 6), 60 + seed % 40).convert("RGB")
    small = Image.merge(
        "RGB", [band.point(lambda v, s=seed, k=k: (v * (k + 2) + s * 37) % 256) for k, band in enumerate(small.split())]
    )
    return small.resize(size, Image.Resampling.BICUBIC)


def make_sides(root: Path) -> tuple[Path, Path]:
    real, gen = root / "REAL", root / "GEN"
    real.mkdir(parents=True)
    gen.mkdir(parents=True)
    for i in range(PER_SIDE):
        exif = Image.Exif()
        exif[0x010F], exif[0x0110] = "Canon", "EOS R5"
        size = [(640, 480), (800, 600), (1024, 768)][i % 3]
        _photo(i, size).save(real / f"r{i:02d}.jpg", quality=96, exif=exif)
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", f"a photo, Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: {i}")
        _photo(1000 + i, (512, 512)).save(gen / f"g{i:02d}.png", pnginfo=info)
    # Leakage: a REAL photo re-encoded into GEN.
    Image.open(real / "r00.jpg").save(gen / "leaked.jpg", quality=80)
    return real, gen


@pytest.fixture
def scanned(db_path: Path, tmp_path: Path, run_cli: Callable[..., CliResult]) -> Path:
    real, gen = make_sides(tmp_path / "images")
    with Store(db_path) as store:
        import_dataset(store, "REAL", label="REAL", images_dir=real)
        import_dataset(store, "GEN", label="GEN", images_dir=gen)
    for name in ("REAL", "GEN"):
        result = run_cli("scan", "--dataset", name)
        assert result.code == 0, result.err
    return db_path


def test_the_audit_finds_the_shortcut_and_exports_the_report(
    scanned: Path, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    out = tmp_path / "out"
    result = run_cli(
        "audit",
        "--datasets",
        "REAL",
        "GEN",
        "--json",
        str(out / "a.json"),
        "--html",
        str(out / "a.html"),
        "--csv",
        str(out / "facts.csv"),
    )
    assert result.code == 0, result.err
    assert "REAL: 24 images with facts" in result.out and "GEN: 25 images with facts" in result.out
    score_line = next(line for line in result.out.splitlines() if line.startswith("Shortcut score:"))
    assert float(score_line.split()[2].rstrip(".")) > 0.95
    assert "PNG" in result.out and "parameters" in result.out.lower()
    findings = result.out.split("Findings:")[1]
    assert findings.lstrip().startswith("[critical] Leakage: 1 picture appears under both GEN and REAL")
    assert "LEAKAGE: 1 group holds the same picture" in result.out
    data = json.loads((out / "a.json").read_text())
    assert data["shortcut"]["score"] > 0.95
    html = (out / "a.html").read_text()
    assert "<svg" in html and "Shortcut" in html
    assert (out / "facts.csv").read_text().splitlines()[0].startswith("dataset,name,")


def test_debias_writes_matched_subsets(scanned: Path, tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    folder = tmp_path / "d"
    result = run_cli(
        "debias", "--datasets", "REAL", "GEN", "--strata", "size", "--no-content", "--output-dir", str(folder)
    )
    assert result.code == 0, result.err
    # 640 px REAL photos and 512 px GEN images share the 512-767 px bucket (the leaked r00 left out).
    assert "REAL: kept 7 of 24" in result.out and "1 duplicate or leaked" in result.out
    assert "GEN: kept 7 of 25" in result.out
    real = (folder / "REAL_debiased_names.txt").read_text().split()
    assert len(real) == 7 and "r00.jpg" not in real  # the leaked photo is left out
    assert (folder / "GEN_debiased_categorized.csv").read_text().startswith("image_name,description,categories")


def test_the_audit_page_scans_and_shows_the_score(scanned: Path, app: AppTest) -> None:
    app.run()
    app.switch_page("pages/audit.py")
    app.run(timeout=120)
    assert not app.exception, app.exception
    assert [m.label for m in app.metric] == ["Shortcut score (ROC AUC)"]
    assert float(app.metric[0].value) > 0.95
    assert any(as_shown(e.value).startswith("Leakage: 1 picture appears") for e in app.error), app.error


def test_the_scan_step_scans_new_images_from_the_page(db_path: Path, tmp_path: Path, app: AppTest) -> None:
    real, gen = make_sides(tmp_path / "images")
    with Store(db_path) as store:
        import_dataset(store, "REAL", label="REAL", images_dir=real)
        import_dataset(store, "GEN", label="GEN", images_dir=gen)
    app.run()
    app.switch_page("pages/audit.py")
    app.run(timeout=60)
    assert not app.exception, app.exception
    assert [i.value for i in app.info][-1] == "No facts yet: scan the datasets above first."
    app.button(key="audit_scan").click().run(timeout=120)
    assert not app.exception, app.exception
    shown = [as_shown(s.value) for s in app.success]
    assert any(line.startswith("Scanned 24 of 24 images of REAL") for line in shown), shown
    assert any(line.startswith("Scanned 25 of 25 images of GEN") for line in shown), shown
    assert [b.key for b in app.button if b.key == "audit_scan"] == []  # nothing left to scan
    assert [m.label for m in app.metric] == ["Shortcut score (ROC AUC)"]
