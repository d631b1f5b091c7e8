"""The example project: REAL and GEN sample images made locally, captioned by the in-process fake Gemini.

For a newcomer without an API key: `create_example_project` draws two small datasets with Pillow and imports
them; `start_example_run` runs the whole pipeline on them against a fake Gemini server inside this process.
Every run and annotation it makes is marked simulated (runs.simulated, annotations.simulated), and a real
run never counts simulated output as done.

The fake picks categories from each image's dominant hue (see labeling.fake_gemini.answers), so REAL images
are drawn in greens, blues and warm earth tones and GEN images in magentas, purples and saturated reds:
their category distributions differ, which makes the Compare page worth a look.
"""

from __future__ import annotations

import colorsys
import random
import threading
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from labeling.datasets import import_dataset
from labeling.errors import InputError
from labeling.fake_gemini import FakeGemini
from labeling.jobs import Job, JobManager
from labeling.planning import JobRequest, plan
from labeling.settings import Settings
from labeling.store import Store

REAL_DATASET = "example-REAL"
GEN_DATASET = "example-GEN"
EXAMPLE_DATASETS = (REAL_DATASET, GEN_DATASET)
SIMULATED_KEY = "simulated-key"  # the fake accepts any key; this one never leaves the process
PER_DATASET = 24
# Dominant hues (0..1) and how often each is drawn; see the module docstring.
_REAL_HUES = ((0.03, 3), (0.10, 2), (0.18, 2), (0.25, 4), (0.32, 2), (0.40, 1), (0.53, 2), (0.62, 1))
_GEN_HUES = ((0.75, 4), (0.96, 3), (0.89, 2), (0.82, 1), (0.25, 1), (0.03, 2), (0.70, 1))


@dataclass(frozen=True)
class ExampleProject:
    folder: Path
    datasets: tuple[str, ...]
    images: int


def _rgb(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return round(r * 255), round(g * 255), round(b * 255)


def _pick(rng: random.Random, hues: tuple[tuple[float, int], ...]) -> float:
    return rng.choices([h for h, _ in hues], weights=[w for _, w in hues])[0] + rng.uniform(-0.01, 0.01)


def draw_real(rng: random.Random, size: tuple[int, int] = (480, 360)) -> Image.Image:
    """A photo-like picture: a lit gradient of one dominant hue, a few objects, sensor-like noise."""
    hue = _pick(rng, _REAL_HUES)
    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(height):  # light falls off from the top, like a sky or a lamp
        draw.line([(0, y), (width, y)], fill=_rgb(hue, 0.55 + 0.2 * y / height, 0.95 - 0.45 * y / height))
    for _ in range(rng.randint(2, 5)):
        x, y = rng.randrange(width), rng.randrange(height // 3, height)
        radius = rng.randint(15, 60)
        shade = _rgb(hue + rng.uniform(-0.05, 0.05), rng.uniform(0.4, 0.8), rng.uniform(0.3, 0.7))
        draw.ellipse([x - radius, y - radius // 2, x + radius, y + radius // 2], fill=shade)
    noise = Image.effect_noise(size, 24).convert("RGB")
    return Image.blend(image, noise, 0.08).filter(ImageFilter.GaussianBlur(0.6))


def draw_gen(rng: random.Random, size: tuple[int, int] = (384, 384)) -> Image.Image:
    """A generated-looking picture: smooth, saturated, symmetric shapes on a clean radial-ish gradient."""
    hue = _pick(rng, _GEN_HUES)
    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for step in range(0, max(size), 4):
        draw.rectangle(
            [step // 2, step // 2, width - step // 2, height - step // 2],
            outline=_rgb(hue, 0.85, 0.5 + 0.5 * step / max(size)),
            width=4,
        )
    for i in range(rng.randint(3, 6)):
        radius = rng.randint(30, 110)
        cx, cy = width // 2 + rng.randint(-120, 120), height // 2 + rng.randint(-120, 120)
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=_rgb(hue + 0.03 * (i % 2), 0.95, 0.95))
    return image.filter(ImageFilter.GaussianBlur(2.5))


def create_example_project(store: Store, settings: Settings, per_dataset: int = PER_DATASET) -> ExampleProject:
    """Draw the sample images under `cache_dir/example/` and import them as example-REAL and example-GEN."""
    folder = Path(settings.cache_dir) / "example"
    rng = random.Random(20261123)  # the same pictures every time
    for label, draw, extension in (("REAL", draw_real, "jpg"), ("GEN", draw_gen, "png")):
        target = folder / label
        target.mkdir(parents=True, exist_ok=True)
        for i in range(per_dataset):
            path = target / f"{label.lower()}_{i:03d}.{extension}"
            picture = draw(rng)
            if not path.exists():
                picture.save(path, quality=88) if extension == "jpg" else picture.save(path)
    import_dataset(store, REAL_DATASET, label="REAL", images_dir=folder / "REAL")
    import_dataset(store, GEN_DATASET, label="GEN", images_dir=folder / "GEN")
    return ExampleProject(folder, EXAMPLE_DATASETS, 2 * per_dataset)


_service_lock = threading.Lock()
_service: FakeGemini | None = None


def simulated_service() -> FakeGemini:
    """The process's fake Gemini server, started on first use on 127.0.0.1 (a free port), kept for the process."""
    global _service
    with _service_lock:
        if _service is None:
            fake = FakeGemini(latency_s=0.15)  # slow enough that the progress is visible, as with the real API
            fake.start()
            _service = fake
        return _service


def simulated_settings(settings: Settings) -> Settings:
    """The settings pointed at the in-process fake: its own key, no rate limit, the real settings otherwise."""
    fake = simulated_service()
    return settings.replace(gemini_api_key=SIMULATED_KEY, gemini_base_url=fake.base_url, requests_per_minute=0)


def start_example_run(manager: JobManager, settings: Settings, *, mode: str = "fused", workers: int = 4) -> Job:
    """Caption and categorize the example datasets against the fake server; the run is marked simulated."""
    request = JobRequest(EXAMPLE_DATASETS, mode=mode, num_workers=workers, requests_per_minute=0)
    return manager.start(request, settings=simulated_settings(settings), simulated=True)


def run_example_project(manager: JobManager, store: Store, settings: Settings) -> Job:
    """Create the example project (idempotent) and start its simulated run; InputError when it is all done."""
    create_example_project(store, settings)
    request = JobRequest(EXAMPLE_DATASETS, mode="fused")
    if plan(store, request, simulated=True)[1].empty:  # a second click would start a run of nothing
        raise InputError(
            "The example project is already described and categorized: look at it on the Review, Categories "
            "and Compare pages, or delete example-REAL and example-GEN (Datasets page) to start it afresh."
        )
    return start_example_run(manager, settings)
