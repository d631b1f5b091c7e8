"""Pixel statistics and perceptual hashes of one small (longest side 256) RGB or L image.

What generators and cameras differ in, measured cheaply: exposure (luma mean, spread, clipped shares), colour
(mean HSV saturation), detail (variance of the Laplacian) and the share of spectral energy at high frequencies.
The caller decodes once and shrinks (labeling.images.small_decode); everything here works on that image, so
the figures of a 12-megapixel photo and of a 512-pixel render are comparable.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import imagehash
import numpy as np
import scipy.fft
from numpy.typing import NDArray
from PIL import Image, ImageChops

STATS_SIZE = 256  # longest side of the image the statistics and hashes are computed on
_CLIP_HIGH = 250  # luma at or above: blown highlights
_CLIP_LOW = 5  # luma at or below: crushed shadows


@dataclass(frozen=True)
class PixelStats:
    """The `image_facts` pixel and hash columns of one image."""

    luma_mean: float  # 0..255
    luma_std: float
    clip_high: float  # share of pixels with luma >= 250
    clip_low: float  # share of pixels with luma <= 5
    saturation_mean: float  # HSV saturation 0..1; 0 for grayscale
    sharpness: float  # variance of the 3x3 Laplacian of luma
    high_freq: float  # share of the power spectrum (DC excluded) above half the Nyquist frequency
    phash: int  # imagehash pHash, 64 bits as an unsigned integer
    dhash: int  # imagehash dHash, 64 bits


def pixel_stats(img: Image.Image) -> PixelStats:
    """Statistics and hashes of an RGB or L image (already shrunk to about STATS_SIZE on its longest side)."""
    if img.mode not in ("RGB", "L"):
        raise ValueError(f"pixel_stats needs an RGB or L image, got mode {img.mode}")
    gray = img if img.mode == "L" else img.convert("L")  # ITU-R 601 luma, in C
    luma = np.asarray(gray, dtype=np.float32)
    return PixelStats(
        luma_mean=float(luma.mean()),
        luma_std=float(luma.std()),
        clip_high=float(np.count_nonzero(luma >= _CLIP_HIGH)) / luma.size,
        clip_low=float(np.count_nonzero(luma <= _CLIP_LOW)) / luma.size,
        saturation_mean=_saturation_mean(img),
        sharpness=_laplacian_variance(luma),
        high_freq=_high_frequency_share(luma),
        phash=_as_int(imagehash.phash(gray, hash_size=8)),
        dhash=_as_int(imagehash.dhash(gray, hash_size=8)),
    )


def _saturation_mean(img: Image.Image) -> float:
    """Mean HSV saturation (max - min) / max per pixel; black pixels count as unsaturated."""
    if img.mode == "L":
        return 0.0
    red, green, blue = img.split()
    # Per-pixel max and min in C (ImageChops): numpy's reduction over a length-3 last axis is ten times slower.
    high = np.asarray(ImageChops.lighter(ImageChops.lighter(red, green), blue), dtype=np.float32)
    low = np.asarray(ImageChops.darker(ImageChops.darker(red, green), blue), dtype=np.float32)
    saturation = np.divide(high - low, high, out=np.zeros_like(high), where=high > 0)
    return float(saturation.mean())


def _laplacian_variance(luma: NDArray[np.float32]) -> float:
    """Variance of the 4-neighbour Laplacian over the interior pixels (0 for images under 3x3)."""
    if luma.shape[0] < 3 or luma.shape[1] < 3:
        return 0.0
    centre = luma[1:-1, 1:-1]
    laplacian = luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:] - 4 * centre
    return float(laplacian.var())


def _high_frequency_share(luma: NDArray[np.float32]) -> float:
    """Share of the 2-D power spectrum, DC excluded, at radii above half the Nyquist frequency (0.25 cycles/px)."""
    # scipy's FFT keeps float32 (numpy's goes to float64): a fifth of the time. Mean removed: DC is zero.
    spectrum = scipy.fft.rfft2(luma - luma.mean())
    power = (spectrum.real**2 + spectrum.imag**2).ravel()
    weights, high_weights = _spectrum_weights(luma.shape)
    total = float((power * weights).sum())  # not `@`: BLAS threads cost more than the sum on 50k numbers
    return float((power * high_weights).sum()) / total if total > 0 else 0.0


@functools.lru_cache(maxsize=64)
def _spectrum_weights(shape: tuple[int, ...]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """For rfft2 of this shape, flattened: how often each bin counts in the full spectrum, and the same for the
    bins above 0.25 cycles/pixel only (zero elsewhere)."""
    height, width = shape
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    weights = np.full((height, fx.shape[1]), 2.0)  # each interior column stands for itself and its mirror
    weights[:, 0] = 1.0
    if width % 2 == 0:
        weights[:, -1] = 1.0  # the Nyquist column has no mirror either
    weights[0, 0] = 0.0  # DC excluded
    high = np.sqrt(fx**2 + fy**2) > 0.25
    return weights.ravel(), (weights * high).ravel()


def _as_int(value: imagehash.ImageHash) -> int:
    """The hash's bits, row-major, as an unsigned integer (the same number as int(str(hash), 16))."""
    bits = np.asarray(value.hash, dtype=bool).flatten()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")
