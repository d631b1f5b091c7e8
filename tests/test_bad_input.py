"""One bad file fails that file, never the run: undecodable formats, named pipes, unexpected errors, and the
permissions of what a run writes. Each bad input is made here, for real."""

from __future__ import annotations

import io
import os
import stat
import struct
import threading
from pathlib import Path

import pytest
from PIL import Image

from labeling import images
from labeling.annotators.gemini import GeminiAnnotator
from labeling.datasets import import_dataset
from labeling.errors import ImageError, SourceError
from labeling.fake_gemini import FakeGemini
from labeling.jobs import JobManager
from labeling.planning import JobRequest
from labeling.settings import Settings
from labeling.sources import LocalFolderSource
from labeling.store import Store
from tests.caption_support import fake_settings, make_folder


def dds_with_unimplemented_format() -> bytes:
    """A DDS header whose pixel format Pillow does not implement: NotImplementedError inside Image.open."""
    header = b"DDS " + struct.pack("<7I", 124, 0x1007, 4, 4, 0, 0, 0) + b"\0" * 44
    return header + struct.pack("<2I", 32, 0x4) + b"ZZZZ" + b"\0" * 40 + b"\0" * 64


def truncated_avif() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, "AVIF")
    data = buffer.getvalue()
    return data[: len(data) - 10]


@pytest.mark.parametrize(
    ("data", "kind", "calls"),
    [
        (dds_with_unimplemented_format(), "unsupported", (images.prepare, images.make_thumbnail, images.read_facts)),
        (truncated_avif(), "corrupt", (images.prepare, images.make_thumbnail)),  # facts read the header only
    ],
    ids=["dds", "avif"],
)
def test_every_decoder_failure_is_an_image_error(data: bytes, kind: str, calls) -> None:  # type: ignore[no-untyped-def]
    for call in calls:
        with pytest.raises(ImageError) as caught:
            call(data)
        assert caught.value.kind == kind, call.__name__


def _mkfifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def test_a_named_pipe_called_like_an_image_is_refused_at_import_with_a_reason(store: Store, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "REAL", 3)
    _mkfifo(folder / "pipe.jpg")
    report = import_dataset(store, "REAL", label="REAL", images_dir=folder)
    assert (report.found, report.rejected) == (3, 1)
    rejected = store.fetch_all("SELECT name, detail FROM images WHERE status = 'rejected'")
    assert rejected == [("pipe.jpg", "is a named pipe (FIFO), not an image file")]
    listed = tmp_path / "list.csv"
    listed.write_text("img000.jpg\npipe.jpg\n")
    report = import_dataset(
        store, "LISTED", label="REAL", csv_data=listed.read_bytes(), csv_name="list.csv", images_dir=folder
    )
    assert (report.found, report.missing, report.rejected) == (1, 0, 1)


def test_reading_a_pipe_fails_at_once_instead_of_blocking(tmp_path: Path) -> None:
    _mkfifo(tmp_path / "x.jpg")
    result: list[BaseException] = []
    reader = threading.Thread(target=lambda: _catch(lambda: LocalFolderSource(tmp_path).read("x.jpg"), result))
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "the read blocked on the pipe"
    assert isinstance(result[0], SourceError) and "is a named pipe (FIFO)" in str(result[0])


def _catch(call, found: list[BaseException]) -> None:  # type: ignore[no-untyped-def]
    try:
        call()
    except BaseException as exc:
        found.append(exc)


def test_a_run_over_bad_files_completes_with_each_one_failed(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "REAL", 4)
    (folder / "bad_dds.jpg").write_bytes(dds_with_unimplemented_format())
    (folder / "bad_avif.avif").write_bytes(truncated_avif())
    (folder / "swapped.jpg").write_bytes(b"")
    import_dataset(store, "REAL", label="REAL", images_dir=folder)
    (folder / "swapped.jpg").unlink()
    _mkfifo(folder / "swapped.jpg")  # became a pipe after the import: the read refuses it
    settings = fake_settings(fake, tmp_path, num_workers=2)
    job = JobManager(store, settings).start(JobRequest(("REAL",)))
    assert job.wait(60), "the run hung"
    progress = job.progress()
    assert (progress.status, progress.done, progress.failed) == ("completed", 4, 3)
    assert progress.failures_by_kind == {"unsupported": 1, "corrupt": 1, "unreadable": 1}
    assert fake.request_count == 4  # no bad file reached the model


class _Exploding:
    """A real annotator with a bug that shows on one image size: an unexpected exception inside a worker."""

    def __init__(self, settings: Settings, model: str, workers: int) -> None:
        self._inner = GeminiAnnotator(settings, model=model, max_workers=workers)
        self.model, self.prompt_version, self.simulated = model, self._inner.prompt_version, False
        self.price_known = self._inner.price_known

    def describe_and_categorize(self, image: bytes, mime_type: str, categories, max_categories):  # type: ignore[no-untyped-def]
        if Image.open(io.BytesIO(image)).size[0] == 101:
            raise KeyError("a bug that only this image shows")
        return self._inner.describe_and_categorize(image, mime_type, categories, max_categories)

    def notices(self) -> list[str]:
        return self._inner.notices()

    def drain_extra(self):  # type: ignore[no-untyped-def]
        return self._inner.drain_extra()

    def close(self) -> None:
        self._inner.close()


def test_an_unexpected_error_fails_that_image_and_the_run_goes_on(
    store: Store, fake: FakeGemini, tmp_path: Path
) -> None:
    folder = make_folder(tmp_path / "REAL", 5)
    import_dataset(store, "REAL", label="REAL", images_dir=folder)
    manager = JobManager(store, fake_settings(fake, tmp_path, num_workers=2))
    for _ in range(2):  # the same error again on resume: still one failure, never a stopped run
        job = manager.start(JobRequest(("REAL",)), annotator_factory=_Exploding)  # type: ignore[arg-type]
        assert job.wait(30)
        progress = job.progress()
        assert progress.status == "completed" and progress.failures_by_kind == {"internal": 1}
    failures = store.run_failures(progress.run_id)
    assert "KeyError" in failures.iloc[0]["example"] and "please report it" in failures.iloc[0]["example"]
    assert store.dataset_summary("REAL").described == 4


def test_outputs_get_the_normal_permissions(
    run_cli, fake: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in fake.env("perm-key").items():
        monkeypatch.setenv(name, value)
    old = os.umask(0o022)
    try:
        folder = make_folder(tmp_path / "REAL", 2)
        out = tmp_path / "out" / "descriptions.csv"
        result = run_cli("generate-descriptions", "--images-dir", str(folder), "--output-csv", str(out), "--yes")
        assert result.code == 0, result.err
        categories = tmp_path / "out" / "unique_categories.csv"
        assert run_cli("categories", "export", "--csv-file", str(categories)).code == 0
    finally:
        os.umask(old)
    for path in (out, categories):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_a_case_only_match_is_found_and_reported(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "REAL"
    folder.mkdir()
    Image.new("RGB", (40, 30)).save(folder / "IMG_0001.JPG")
    Image.new("RGB", (40, 30)).save(folder / "photo.png")
    report = import_dataset(
        store, "REAL", label="REAL", csv_data=b"img_0001.jpg\nphoto.jpg\n", csv_name="l.csv", images_dir=folder
    )
    assert (report.found, report.case_matches, report.stem_matches) == (2, 1, 1)
    rows = dict(store.fetch_all("SELECT name, detail FROM images WHERE status = 'found'"))
    assert rows == {"img_0001.jpg": "matched ignoring case", "photo.jpg": "matched by stem (another extension)"}


def test_heic_and_mpo_photos_are_imported_and_prepared(store: Store, tmp_path: Path) -> None:
    from pillow_heif import register_heif_opener

    register_heif_opener()  # to write the test file; the product registers it for reading on its own
    folder = tmp_path / "REAL"
    folder.mkdir()
    Image.new("RGB", (80, 60), (10, 120, 200)).save(folder / "phone.heic", "HEIF")
    frames = [Image.new("RGB", (80, 60), (200, 20, 20)), Image.new("RGB", (80, 60), (20, 200, 20))]
    frames[0].save(folder / "stereo.mpo", "MPO", save_all=True, append_images=frames[1:])
    report = import_dataset(store, "REAL", label="REAL", images_dir=folder)
    assert report.found == 2
    for name in ("phone.heic", "stereo.mpo"):
        prepared = images.prepare((folder / name).read_bytes())
        assert prepared.mime_type == "image/jpeg" and (prepared.width, prepared.height) == (80, 60), name


def test_the_decode_budget_holds_a_decode_back_until_there_is_room() -> None:
    budget = images.DecodeBudget(1.0)  # one megapixel at once
    first_in, second_in, release = threading.Event(), threading.Event(), threading.Event()

    def decode(pixels: int, inside: threading.Event, hold: threading.Event | None) -> None:
        with budget.reserve(pixels):
            inside.set()
            if hold is not None:
                hold.wait(10)

    first = threading.Thread(target=decode, args=(700_000, first_in, release))
    first.start()
    assert first_in.wait(10)
    second = threading.Thread(target=decode, args=(700_000, second_in, None))
    second.start()
    assert not second_in.wait(0.3)  # 1.4 MP would not fit: it waits
    release.set()
    assert second_in.wait(10)  # and goes as soon as the first is done
    first.join(10)
    second.join(10)
    lone = threading.Event()
    decode(5_000_000, lone, None)  # bigger than the whole budget: goes alone rather than never
    assert lone.is_set()


def jpeg_with_corrupt_exif() -> bytes:
    """A JPEG whose EXIF directory points past its end: Pillow warns (UserWarning) and reads on."""
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(buffer, "JPEG")
    data = buffer.getvalue()
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 5) + struct.pack("<HHII", 0x010F, 2, 50, 100)
    app1 = b"Exif\x00\x00" + tiff
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]


def test_decoder_warnings_go_to_the_log_file_not_the_terminal(fake: FakeGemini, tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    folder = make_folder(tmp_path / "REAL", 2)
    (folder / "odd_exif.jpg").write_bytes(jpeg_with_corrupt_exif())
    db = tmp_path / "db" / "labeling.duckdb"
    env = {**os.environ, **fake.env("log-key"), "LABELING_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("GOOGLE_API_KEY", None)
    for args in (
        ["import", "--dataset", "REAL", "--images-dir", str(folder)],
        ["describe", "--dataset", "REAL", "--yes"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "labeling", "--db", str(db), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr and "EXIF" not in done.stderr, done.stderr
    logged = (tmp_path / "db" / "logs" / "labeling.log").read_text()
    assert "Corrupt EXIF data" in logged and "py.warnings" in logged
    assert "Run #1 completed: 3 done" in done.stdout


def test_an_unsupported_compression_is_not_called_corrupt() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "BMP")
    data = bytearray(buffer.getvalue())
    data[30:34] = struct.pack("<I", 7)  # a BMP compression Pillow has no decoder for
    with pytest.raises(ImageError) as caught:
        images.prepare(bytes(data))
    assert caught.value.kind == "unsupported" and "Unsupported BMP compression" in str(caught.value)


def tiff_with_a_damaged_second_frame() -> bytes:
    """A TIFF whose second directory has no dimensions: Pillow's n_frames raises TypeError."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buffer, "TIFF")
    data = bytearray(buffer.getvalue())
    first = struct.unpack("<I", data[4:8])[0]
    next_pointer = first + 2 + 12 * struct.unpack("<H", data[first : first + 2])[0]
    second = len(data)
    data += struct.pack("<H", 1) + struct.pack("<HHII", 258, 3, 1, 8) + struct.pack("<I", 0)
    data[next_pointer : next_pointer + 4] = struct.pack("<I", second)
    return bytes(data)


def test_a_tiff_with_a_damaged_later_frame_still_gives_its_first() -> None:
    data = tiff_with_a_damaged_second_frame()
    with pytest.raises(TypeError):
        _ = Image.open(io.BytesIO(data)).n_frames  # what used to escape from read_facts
    facts = images.read_facts(data)
    assert (facts.format, facts.width, facts.frames) == ("TIFF", 8, 1)
    assert images.prepare(data).width == 8


def test_a_png_just_over_the_pixel_limit_says_by_how_much() -> None:
    buffer = io.BytesIO()
    Image.new("L", (8001, 8000)).save(buffer, "PNG", compress_level=1)
    with pytest.raises(ImageError) as caught:
        images.prepare(buffer.getvalue())
    assert caught.value.kind == "too_large"
    assert "8001x8000 (64.01 megapixels), over the limit of 64 megapixels" in str(caught.value)


def test_a_header_nobody_named_is_found_by_matching(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "REAL"
    folder.mkdir()
    for i in range(10):
        Image.new("RGB", (20, 20)).save(folder / f"photo_{i}.png")
    listed = "ref\n" + "".join(f"photo_{i}\n" for i in range(10))  # names without extensions, found by stem
    report = import_dataset(store, "REAL", label="REAL", csv_data=listed.encode(), csv_name="l.csv", images_dir=folder)
    assert (report.listed, report.found, report.missing) == (10, 10, 0)
    assert report.notes == ["first row 'ref' taken as a header (it matches no file; the rows after it do)"]


def test_an_avif_over_the_decoders_size_limit_says_so_rather_than_damaged() -> None:
    ispe = struct.pack(">I", 20) + b"ispe" + b"\x00\x00\x00\x00" + struct.pack(">II", 17000, 17000)
    ftyp = struct.pack(">I", 20) + b"ftypavif" + b"\x00\x00\x00\x00avif"
    data = ftyp + struct.pack(">I", 8 + len(ispe)) + b"meta" + ispe + b"\x00" * 64
    with pytest.raises(ImageError) as caught:
        images.prepare(data)
    assert caught.value.kind == "too_large"
    assert "The AVIF image is 17000x17000 (289.00 megapixels), more than its decoder accepts" in str(caught.value)
