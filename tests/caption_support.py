"""Helpers shared by the captioning tests: folders of real images, a store with datasets, settings for the fake."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from labeling.datasets import import_dataset
from labeling.fake_gemini import FakeGemini
from labeling.settings import Settings
from labeling.store import Store


def make_folder(root: Path, count: int, *, color: tuple[int, int, int] = (30, 90, 200), prefix: str = "img") -> Path:
    """`count` JPEGs with unique sizes (the fake's request log tells them apart by width)."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", (100 + i, 60), color).save(root / f"{prefix}{i:03d}.jpg", quality=85)
    return root


def add_dataset(store: Store, root: Path, name: str, count: int, **options: object) -> Path:
    folder = make_folder(root / name, count, **options)  # type: ignore[arg-type]
    import_dataset(store, name, label=name, images_dir=folder)
    return folder


def fake_settings(fake: FakeGemini, tmp_path: Path, **changes: object) -> Settings:
    """Settings that point the real SDK at the fake, with quick retries for tests."""
    settings = Settings(
        gemini_api_key="test-key",
        gemini_base_url=fake.base_url,
        request_timeout_seconds=5.0,
        retry_backoff_seconds=0.01,
        cache_dir=str(tmp_path / "cache"),
        num_workers=4,
        db_path=str(tmp_path / "labeling.duckdb"),
    )
    return settings.replace(**changes)


def width_of(record: object) -> int | None:
    return getattr(record, "image_width", None)
