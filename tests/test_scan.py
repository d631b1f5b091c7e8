"""The scan pass: technical facts per image into image_facts, resumable, one bad file failing alone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
from PIL import Image, PngImagePlugin

from labeling.datasets import import_dataset
from labeling.store import Store
from tests.conftest import CliResult


def _folder(root: Path) -> Path:
    root.mkdir(parents=True)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "EOS 5D"
    Image.new("RGB", (64, 48), (10, 90, 200)).save(root / "camera.jpg", quality=90, exif=exif)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cat, Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1")
    Image.new("RGBA", (512, 512), (200, 30, 30, 255)).save(root / "generated.png", pnginfo=info)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    return root


def _facts(db_path: Path) -> dict[str, tuple[object, ...]]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        rows = con.execute(
            "SELECT i.name, f.format, f.width, f.height, f.mode, f.exif_make, f.text_keys, "
            "f.error IS NOT NULL FROM image_facts f JOIN images i ON i.id = f.image_id"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def _audit_facts(db_path: Path) -> dict[str, tuple[object, ...]]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        rows = con.execute(
            "SELECT i.name, f.jpeg_quality, f.jpeg_table, f.jpeg_subsampling, f.height / f.width, f.generator, "
            "f.luma_mean, f.phash, f.sha256 FROM image_facts f JOIN images i ON i.id = f.image_id"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def test_scan_records_facts_and_a_rerun_reads_only_new_images(
    run_cli: Callable[..., CliResult], db_path: Path, tmp_path: Path, make_image: Callable[..., Path]
) -> None:
    folder = _folder(tmp_path / "GEN")
    with Store(db_path) as store:
        import_dataset(store, "GEN", label="GEN", images_dir=folder)
    first = run_cli("scan", "--dataset", "GEN")
    assert first.code == 0, first.err
    assert "Scanned 3 of 3 images of GEN" in first.out and "(1 without facts; 0 already scanned)" in first.out
    facts = _facts(db_path)
    assert facts["camera.jpg"][:5] == ("JPEG", 64, 48, "RGB", "Canon")
    assert facts["generated.png"][:4] == ("PNG", 512, 512, "RGBA") and facts["generated.png"][5] == ["parameters"]
    assert facts["broken.jpg"][-1] is True  # one bad file records why, and fails alone
    audit = _audit_facts(db_path)
    assert audit["camera.jpg"][:4] == (90, "standard", "4:2:0", 48 / 64)
    assert audit["generated.png"][4] == "Stable Diffusion WebUI" and audit["broken.jpg"][4] is None
    for name in ("camera.jpg", "generated.png"):
        luma, phash, sha256 = audit[name][5:]
        assert luma is not None and 0 <= phash < 2**64 and len(sha256) == 64

    make_image(folder / "new.png", size=(30, 20))
    with Store(db_path) as store:
        import_dataset(store, "GEN", label="GEN", images_dir=folder)
    again = run_cli("scan", "--dataset", "GEN")
    assert "Scanned 1 of 1 image of GEN" in again.out and "3 already scanned" in again.out
    assert _facts(db_path)["new.png"][:3] == ("PNG", 30, 20)


def test_scanning_a_dataset_without_files_says_what_to_do(run_cli: Callable[..., CliResult], db_path: Path) -> None:
    with Store(db_path) as store:
        import_dataset(store, "NAMES", csv_data=b"image_name\na.jpg\n", csv_name="names.csv")
    result = run_cli("scan", "--dataset", "NAMES")
    assert result.code == 1 and "has no image folder or bucket" in result.err
    assert "Traceback" not in result.err
