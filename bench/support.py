"""What several benchmarks share: realistic test images and a description of the machine."""

from __future__ import annotations

import contextlib
import platform
import random
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw


def photo_like(width: int, height: int, seed: int) -> Image.Image:
    """Gradients, shapes and sensor-like noise: compresses like a real photo, not like a flat test card."""
    rng = random.Random(seed)
    bands = [Image.linear_gradient("L").rotate(rng.randrange(360)).resize((width, height)) for _ in range(2)]
    bands.append(Image.radial_gradient("L").resize((width, height)))
    img = Image.merge("RGB", bands)
    draw = ImageDraw.Draw(img)
    for _ in range(40):
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = rng.randrange(width // 20, width // 3), rng.randrange(height // 20, height // 3)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x, y, x + w, y + h), fill=colour)
    noise = Image.merge("RGB", [Image.effect_noise((width, height), 18) for _ in range(3)])
    return ImageChops.add(img, noise, scale=1.0, offset=-128)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what Python knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def rss_mib() -> float:
    """This process's resident memory now, in MiB (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return peak_rss_mib()


def reset_peak_rss() -> None:
    """Start the peak (VmHWM) afresh from the current RSS, so a phase's own peak can be read (Linux only)."""
    with contextlib.suppress(OSError):  # not Linux: the peak then covers the whole process
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB (VmHWM; unlike getrusage it is not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
