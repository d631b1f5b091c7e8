"""Image preparation for the model: decode, orient, convert and shrink; thumbnails; header facts.

Bytes in, bytes or facts out: nothing here reads files or talks to the network, callers pass the bytes.

Every function is safe to call from worker threads. Nothing here changes Pillow's process-wide settings:
`Image.MAX_IMAGE_PIXELS` and `ImageFile.LOAD_TRUNCATED_IMAGES` are left as they are (the latter must stay
False, or a truncated JPEG decodes as a grey band instead of failing). Our own pixel limit is checked on the
header dimensions right after `Image.open`, before any pixel is decoded. Pillow's own bomb guard still runs
inside `Image.open` (a warning above `Image.MAX_IMAGE_PIXELS`, an error above twice that); both become
`ImageError(kind="too_large")`. A `max_pixels` above twice Pillow's limit therefore needs
`Image.MAX_IMAGE_PIXELS` raised once at start-up, before any worker thread starts.
"""

from __future__ import annotations

import functools
import io
import struct
import threading
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import cast

import simplejpeg
from PIL import ExifTags, Image, ImageChops, ImageCms, ImageFile, PngImagePlugin

from labeling.errors import ImageError

# Register all format plugins once, now: the first Image.open would do it lazily, maybe in two threads.
Image.init()

_THUMB_QUALITY = 80
# A JPEG that fits in pixels but is bigger than this in bytes is mostly metadata: re-encode, do not send it.
_AS_IS_MAX_BYTES = 2 * 1024 * 1024
DEFAULT_DECODE_BUDGET_MEGAPIXELS = 128.0  # two 64-MP decodes at once: 8 workers stay near 1.2 GB
# Longest text kept per metadata entry (a Stable Diffusion `parameters` chunk can run to many kilobytes).
_TEXT_LIMIT = 4000
# An embedded ICC profile is copied into our JPEGs (colours stay right) unless it is unusually large.
_ICC_MAX_BYTES = 64 * 1024

# Same table as ImageOps.exif_transpose; we apply it ourselves so it can run on the already-reduced image.
_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_DECODE_ERRORS = (SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, zlib.error)
# What a malformed EXIF block makes Pillow raise. Not OSError: reading EXIF must never decode pixels.
_EXIF_ERRORS = (SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, TypeError)


@dataclass(frozen=True)
class PreparedImage:
    """An image ready for the model, plus a thumbnail for the review gallery."""

    data: bytes  # what to send to the model
    mime_type: str  # of `data`: image/jpeg
    width: int  # of `data`, after EXIF orientation
    height: int
    original_width: int  # of the original as a viewer shows it, i.e. after EXIF orientation
    original_height: int
    original_format: str  # Pillow's name: JPEG, PNG, WEBP, GIF, TIFF, MPO, ...
    size_bytes: int  # of the original
    sent_as_is: bool  # True when `data` is the original bytes, unchanged
    thumbnail: bytes  # longest side <= thumb_size
    thumbnail_mime_type: str


@dataclass(frozen=True)
class ImageFacts:
    """What the header says about an image, read without decoding its pixels."""

    format: str  # Pillow's name: JPEG, PNG, WEBP, GIF, TIFF, MPO, ...
    width: int  # as a viewer shows it, i.e. after EXIF orientation
    height: int
    mode: str  # Pillow's mode as stored: RGB, RGBA, L, P, CMYK, I;16, ...
    frames: int  # 1 unless animated or multi-page
    orientation: int  # EXIF orientation, 1 (upright) when absent
    size_bytes: int
    make: str | None = None  # EXIF camera make, model and software
    model: str | None = None
    software: str | None = None
    # Text metadata, values cut to a few thousand characters: PNG tEXt/iTXt/zTXt chunks (Stable Diffusion's
    # `parameters`, ComfyUI's `prompt`/`workflow`), the JPEG/GIF `comment`, and the EXIF `UserComment`.
    text: Mapping[str, str] = field(default_factory=dict)

    @property
    def animated(self) -> bool:
        """True for an animated GIF, WebP or APNG (or a multi-page TIFF)."""
        return self.frames > 1


def prepare(
    data: bytes,
    *,
    max_size: int = 768,
    thumb_size: int = 320,
    max_pixels: int = 64_000_000,
    jpeg_quality: int = 90,
) -> PreparedImage:
    """Turn an image file's bytes into what the model should see, and a gallery thumbnail, in one decode.

    The result is a JPEG whose longest side is at most `max_size`, upright (EXIF orientation applied),
    with transparency flattened on white. A baseline RGB or grayscale JPEG that already fits and needs no
    rotation is sent unchanged (`sent_as_is`). The thumbnail is cut from the same decoded pixels.

    Raises ImageError with kind "empty", "not_an_image", "corrupt", "unsupported" or "too_large".
    """
    _check_positive(max_size=max_size, thumb_size=thumb_size, max_pixels=max_pixels)
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be between 1 and 100, got {jpeg_quality}")
    with _translate_errors(), _open(data, max_pixels) as img:
        fmt, original_size = img.format or "unknown", img.size  # before draft() shrinks img.size
        icc = img.info.get("icc_profile")
        as_is = _can_send_as_is(img, max_size, len(data))
        target = thumb_size if as_is else max_size
        with DECODE_BUDGET.reserve(_decoded_pixels(img, target)):
            # Decode once, at the smallest JPEG scale that still covers what we need from it.
            pixels = _decode(img, target, data)
            # Read after decoding: a PNG may keep its eXIf chunk after the pixel data.
            orientation = _orientation(_exif(img))
            width, height = _oriented(original_size, orientation)
            if as_is:
                model_image, model_bytes = pixels, data
            else:
                model_image = _orient(_shrink(pixels, max_size), orientation)
                model_bytes = _encode_jpeg(model_image, jpeg_quality, icc)
            thumbnail = _encode_jpeg(_shrink(model_image, thumb_size, thumbnail=True), _THUMB_QUALITY, icc)
            del pixels
            img.close()  # frees the decoded frame, the big allocation, before the budget is given back
    out_width, out_height = (width, height) if as_is else model_image.size
    return PreparedImage(
        data=model_bytes,
        mime_type="image/jpeg",
        width=out_width,
        height=out_height,
        original_width=width,
        original_height=height,
        original_format=fmt,
        size_bytes=len(data),
        sent_as_is=as_is,
        thumbnail=thumbnail,
        thumbnail_mime_type="image/jpeg",
    )


def make_thumbnail(data: bytes, *, size: int = 320, max_pixels: int = 64_000_000) -> tuple[bytes, str]:
    """Return (JPEG bytes, mime type) of an upright thumbnail whose longest side is at most `size`.

    Use `prepare` when the model image is needed too: it makes the thumbnail from the same decode.
    Raises ImageError like `prepare`.
    """
    _check_positive(size=size, max_pixels=max_pixels)
    with _translate_errors(), _open(data, max_pixels) as img, DECODE_BUDGET.reserve(_decoded_pixels(img, size)):
        icc = img.info.get("icc_profile")
        pixels = _decode(img, size, data)
        small = _orient(_shrink(pixels, size, thumbnail=True), _orientation(_exif(img)))
        encoded = _encode_jpeg(small, _THUMB_QUALITY, icc)
        del pixels, small
        img.close()  # frees the decoded frame before the budget is given back
        return encoded, "image/jpeg"


def check_decodes(data: bytes, *, max_pixels: int = 64_000_000) -> None:
    """Decode the first frame fully (a truncated or corrupt body fails only here); raises ImageError."""
    with _translate_errors(), _open(data, max_pixels) as img, DECODE_BUDGET.reserve(img.size[0] * img.size[1]):
        img.load()


def read_facts(data: bytes) -> ImageFacts:
    """Read format, dimensions, mode, frame count and metadata from the header, without decoding pixels.

    Images beyond Pillow's own decompression-bomb limit raise ImageError(kind="too_large"); other
    failures raise ImageError like `prepare`.
    """
    with open_for_facts(data) as img:
        return header_facts(img, len(data), exif_of(img, header_only=True))


@contextmanager
def open_for_facts(data: bytes) -> Iterator[ImageFile.ImageFile]:
    """The image opened lazily (header only, no pixel limit but Pillow's bomb guard) for reading its facts.

    Whatever fails inside the block, opening or reading, becomes an ImageError with a kind, like `prepare`.
    """
    with _translate_errors(), _open(data, max_pixels=None) as img:
        yield img


def header_facts(img: ImageFile.ImageFile, size_bytes: int, exif: Image.Exif | None) -> ImageFacts:
    """The facts of an opened image that is not decoded yet (`draft` would shrink its size)."""
    orientation = _orientation(exif)
    width, height = _oriented(img.size, orientation)
    return ImageFacts(
        format=img.format or "unknown",
        width=width,
        height=height,
        mode=img.mode,
        frames=_frame_count(img),
        orientation=orientation,
        size_bytes=size_bytes,
        make=_exif_text(exif, ExifTags.Base.Make),
        model=_exif_text(exif, ExifTags.Base.Model),
        software=_exif_text(exif, ExifTags.Base.Software),
        text=_text_metadata(img, exif),
    )


def exif_of(img: Image.Image, *, header_only: bool) -> Image.Exif | None:
    """Pillow's parsed EXIF, None when unreadable; `header_only` keeps a PNG from decoding its pixels for it."""
    return _exif(img, header_only=header_only)


def text_metadata(img: Image.Image, exif: Image.Exif | None) -> dict[str, str]:
    """Text metadata, values cut to a few thousand characters: PNG text chunks, comments, EXIF UserComment."""
    return _text_metadata(img, exif)


@dataclass(frozen=True)
class SmallImage:
    """One image decoded once and shrunk for statistics, with the EXIF read after decoding."""

    image: Image.Image  # RGB or L, upright, transparency flattened on white, longest side <= the asked size
    exif: Image.Exif | None
    orientation: int


def small_decode(img: ImageFile.ImageFile, longest: int, *, max_pixels: int = 64_000_000) -> SmallImage:
    """Decode the first frame at the least cost that covers `longest`, shrink it with a cheap filter, orient it.

    JPEGs decode at 1/2, 1/4 or 1/8 scale (DCT scaling); other formats decode fully. The decode waits for room
    in DECODE_BUDGET, and an image over `max_pixels` is refused (ImageError "too_large") as `prepare` does.
    Closes `img`'s pixels afterwards; its `info`, size before decoding excepted, stays readable.
    Raises ImageError like `prepare`.
    """
    _check_positive(longest=longest, max_pixels=max_pixels)
    width, height = img.size
    if width * height > max_pixels:
        raise ImageError(
            f"The image is {width}x{height} ({width * height / 1e6:.2f} megapixels), over the limit of "
            f"{max_pixels / 1e6:g} megapixels: its pixels were not decoded.",
            kind="too_large",
        )
    with _translate_errors(), DECODE_BUDGET.reserve(_decoded_pixels(img, longest)):
        pixels = _decode(img, longest)
        exif = _exif(img)  # after decoding: a PNG may keep its eXIf chunk after the pixel data
        orientation = _orientation(exif)
        size = _fit(pixels.size, longest)
        # BILINEAR after a whole-factor reduce(): statistics at 256 px do not need LANCZOS's sharpness.
        small = pixels if size == pixels.size else pixels.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        small = _orient(small, orientation)
        if small is img:
            small = img.copy()  # close() below must not take the result with it
        del pixels
        img.close()  # frees the decoded frame before the budget is given back
    return SmallImage(small, exif, orientation)


def oriented_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """(width, height) as a viewer shows an image of this stored size and EXIF orientation."""
    return _oriented(size, orientation)


# --- opening and error translation ----------------------------------------------------------------------


class DecodeBudget:
    """Megapixels being decoded at once, shared by every thread of the process, so memory stays bounded
    whatever the images: a 64-megapixel PNG takes about 0.5 GB while it is decoded and converted."""

    def __init__(self, megapixels: float) -> None:
        self._limit = self._pixels(megapixels)
        self._used = 0
        self._free = threading.Condition()

    def resize(self, megapixels: float) -> None:
        """A new limit (0: none), for the decodes that start from now on."""
        with self._free:
            self._limit = self._pixels(megapixels)
            self._free.notify_all()

    @staticmethod
    def _pixels(megapixels: float) -> int:
        return int(megapixels * 1_000_000) if megapixels > 0 else 2**62

    @contextmanager
    def reserve(self, pixels: int) -> Iterator[None]:
        """Wait until `pixels` fit (an image bigger than the whole budget waits until nothing else decodes)."""
        with self._free:
            self._free.wait_for(lambda: self._used == 0 or self._used + pixels <= self._limit)
            self._used += pixels
        try:
            yield
        finally:
            with self._free:
                self._used -= pixels
                self._free.notify_all()


DECODE_BUDGET = DecodeBudget(DEFAULT_DECODE_BUDGET_MEGAPIXELS)


def _decoded_pixels(img: ImageFile.ImageFile, longest: int) -> int:
    """Pixels the decode of the first frame will allocate at most: JPEGs shrink by 1/2, 1/4 or 1/8 while they
    cover `longest` (as `draft` does; an M/8 decode is never larger), every other format decodes at full size."""
    width, height = img.size
    if img.format not in ("JPEG", "MPO"):
        return width * height
    fit_w, fit_h = _fit(img.size, longest)
    scale = 1
    while scale < 8 and width // (scale * 2) >= fit_w and height // (scale * 2) >= fit_h:
        scale *= 2
    return (width // scale) * (height // scale)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value}")


def _open(data: bytes, max_pixels: int | None) -> ImageFile.ImageFile:
    """Open lazily (header only) and enforce the pixel limit before anything is decoded."""
    if not data:
        raise ImageError("The file is empty (0 bytes): check the source, or copy the file again.", "empty")
    _register_plugins()
    try:  # every caller translates other failures (`_translate_errors`)
        img = Image.open(io.BytesIO(data))
    except Image.UnidentifiedImageError as error:
        raise _unidentified(data) from error
    width, height = img.size
    if max_pixels is not None and width * height > max_pixels:
        img.close()
        raise ImageError(
            f"The image is {width}x{height} ({width * height / 1e6:.2f} megapixels), over the limit of "
            f"{max_pixels / 1e6:g} megapixels: downscale it, or raise the pixel limit if you trust the file.",
            kind="too_large",
        )
    return img


@functools.cache
def _register_plugins() -> None:
    """HEIC/HEIF (phone photos, common in REAL datasets) through pillow-heif, loaded on the first image."""
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - a requirement; without it HEIC files fail as unsupported
        return
    pillow_heif.register_heif_opener()


@contextmanager
def _translate_errors() -> Iterator[None]:
    """Turn Pillow's many failure types into ImageError with a kind a run can group by.

    The one place that enforces the rule: whatever goes wrong with one file is that file's failure. Pillow's
    plugins raise more than OSError (a damaged AVIF RuntimeError, an unimplemented DDS format
    NotImplementedError, a damaged TIFF TypeError), so anything that is not already an ImageError becomes one.
    """
    try:
        yield
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(
            f"The image is too large to decode safely ({error}): downscale it first.", kind="too_large"
        ) from error
    except MemoryError as error:
        raise ImageError("Not enough memory to decode this image: downscale it first.", "too_large") from error
    except OSError as error:
        message = str(error)
        lowered = message.lower()
        if (
            ("decoder" in message and "not available" in message)
            or "unsupported" in lowered
            or "unknown compression" in lowered
            or "not supported" in lowered
        ):
            raise ImageError(
                f"This image uses an encoding that cannot be decoded here ({message}): convert it to PNG.",
                kind="unsupported",
            ) from error
        raise ImageError(
            f"The image is truncated or corrupt ({message}): copy or download it again.", kind="corrupt"
        ) from error
    except _DECODE_ERRORS as error:
        raise ImageError(
            f"The image is corrupt ({type(error).__name__}: {error}): copy or download it again.", "corrupt"
        ) from error
    except NotImplementedError as error:
        raise ImageError(
            f"This image uses a feature the decoder does not implement ({error}): convert it to PNG.", "unsupported"
        ) from error
    except Exception as error:
        raise ImageError(
            f"The image cannot be decoded ({type(error).__name__}: {error}): it is probably damaged; "
            "copy or download it again, or convert it to PNG.",
            "corrupt",
        ) from error


# (signature, what it is, Pillow's format id or None when Pillow never reads it)
_SIGNATURES: tuple[tuple[bytes, str, str | None], ...] = (
    (b"\xff\xd8\xff", "JPEG", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG", "PNG"),
    (b"GIF87a", "GIF", "GIF"),
    (b"GIF89a", "GIF", "GIF"),
    (b"II*\x00", "TIFF", "TIFF"),
    (b"MM\x00*", "TIFF", "TIFF"),
    (b"\xff\x0a", "JPEG XL", None),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL", None),
    (b"%PDF", "PDF", None),
)
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})


def _sniff(data: bytes) -> tuple[str, str | None] | None:
    """Recognise a few formats by their magic bytes, to tell a damaged image from a non-image."""
    for signature, name, pillow_id in _SIGNATURES:
        if data.startswith(signature):
            return name, pillow_id
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP", "WEBP"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF", "AVIF"
        if brand in _HEIF_BRANDS:
            return "HEIC/HEIF", "HEIF"  # the id pillow-heif registers
    head = data[:1024].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "SVG", None
    return None


def _unidentified(data: bytes) -> ImageError:
    """Explain why Pillow could not identify the bytes: damaged image, unsupported format, or no image."""
    sniffed = _sniff(data)
    if sniffed is None:
        return ImageError(
            f"The file is not an image (it starts like {_describe_start(data)}): check that the source "
            "points at image files.",
            kind="not_an_image",
        )
    name, pillow_id = sniffed
    too_big = _declared_size(data) if name in ("AVIF", "HEIC/HEIF") else None
    if too_big is not None:
        width, height = too_big
        return ImageError(
            f"The {name} image is {width}x{height} ({width * height / 1e6:.2f} megapixels), more than its decoder "
            f"accepts (libavif/libheif stop at {_HEIF_PIXEL_LIMIT / 1e6:.0f} megapixels): downscale it.",
            kind="too_large",
        )
    if pillow_id is not None and pillow_id in Image.OPEN:
        return ImageError(
            f"The file starts like {_article(name)} {name} image but its header is damaged: copy or download it again.",
            kind="corrupt",
        )
    hint = {
        "HEIC/HEIF": "install the pillow-heif plugin, or convert the file to JPEG",
        "SVG": "it is a vector drawing: export it as PNG",
    }.get(name, "convert it to PNG or JPEG")
    return ImageError(f"{name} images are not supported here: {hint}.", kind="unsupported")


_HEIF_PIXEL_LIMIT = 16384 * 16384  # libavif's and libheif's default image size limit


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """An AVIF/HEIF's size from its `ispe` box when it is over the decoders' limit (why it did not open)."""
    at = data.find(b"ispe", 0, 1 << 16)
    if at < 0 or len(data) < at + 16:
        return None
    width, height = struct.unpack(">II", data[at + 8 : at + 16])  # after the box type: version+flags, w, h
    return (width, height) if width * height > _HEIF_PIXEL_LIMIT else None


def _article(word: str) -> str:
    return "an" if word[:1].upper() in "AEFHILMNORSX" else "a"  # by sound: an AVIF, an HEIC, a JPEG, a PNG


def _describe_start(data: bytes) -> str:
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "an HTML page, perhaps an error page saved instead of the image"
    if head.startswith((b"{", b"[")):
        return "JSON text"
    try:
        data[:512].decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of an unknown kind"
    return "plain text"


# --- decoding ------------------------------------------------------------------------------------------


def _exif(img: Image.Image, *, header_only: bool = False) -> Image.Exif | None:
    """Pillow's parsed EXIF; None when unreadable (a broken EXIF block must not lose the image)."""
    try:
        if header_only and isinstance(img, PngImagePlugin.PngImageFile):
            # PNG's own getexif() decodes every pixel, looking for an eXIf chunk after them: read the header's.
            return Image.Image.getexif(img)
        return img.getexif()
    except _EXIF_ERRORS:
        return None


def _orientation(exif: Image.Exif | None) -> int:
    """EXIF orientation 1-8; 1 when absent or nonsensical."""
    value = 1 if exif is None else exif.get(ExifTags.Base.Orientation, 1)
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def _oriented(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    # Orientations 5-8 turn the picture by a quarter: width and height swap.
    return (size[1], size[0]) if orientation >= 5 else size


def _orient(img: Image.Image, orientation: int) -> Image.Image:
    method = _TRANSPOSE.get(orientation)
    return img if method is None else img.transpose(method)


def _fit(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """The size with the longest side at most `longest`, aspect kept (never upscaled, never below 1 px)."""
    width, height = size
    if max(width, height) <= longest:
        return size
    scale = longest / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _can_send_as_is(img: ImageFile.ImageFile, max_size: int, size_bytes: int) -> bool:
    return (
        img.format == "JPEG"
        and img.mode in ("RGB", "L")
        and not img.info.get("progressive")  # baseline only
        and max(img.size) <= max_size
        and size_bytes <= _AS_IS_MAX_BYTES
        and _orientation(_exif(img, header_only=True)) == 1
    )


def _decode(img: ImageFile.ImageFile, longest: int, data: bytes | None = None) -> Image.Image:
    """Decode the first frame as RGB or L, at least `longest` on its longest side when the original allows.

    JPEGs are decoded by libjpeg's DCT scaling when that still covers the final size (asked for with the aspect
    kept: a square box would stop the scaling early for a 4:3 photo): at any of libjpeg-turbo's M/8 scales
    when the file's bytes are given, else at Pillow's 1/2, 1/4 or 1/8.
    """
    if data is not None and img.format == "JPEG" and img.mode in ("RGB", "L"):
        scaled = _scaled_jpeg(data, img.size, img.mode, longest)
        if scaled is not None:
            return scaled
    if img.format in ("JPEG", "MPO"):
        img.draft("RGB", _fit(img.size, longest))
    img.load()
    try:
        return _flatten(img)
    except ValueError as error:
        raise ImageError(
            f"Images in colour mode {img.mode} are not supported ({error}): convert it to RGB.", "unsupported"
        ) from error


def _scaled_jpeg(data: bytes, size: tuple[int, int], mode: str, longest: int) -> Image.Image | None:
    """The JPEG decoded at the smallest of libjpeg-turbo's M/8 scales that covers the final size, when that is
    not one of the 1/2^k scales Pillow's `draft` reaches as fast (1024x768 becomes 768x576 in the decoder, with
    no resize after it); None otherwise, or when simplejpeg refuses the file, so Pillow decodes it or says what
    is wrong with it."""
    width, height = _fit(size, longest)
    eighths = next(m for m in range(1, 9) if -(-size[0] * m // 8) >= width and -(-size[1] * m // 8) >= height)
    if eighths in (1, 2, 4, 8):
        return None
    try:
        pixels = simplejpeg.decode_jpeg(
            data, colorspace="GRAY" if mode == "L" else "RGB", min_width=width, min_height=height
        )
    except ValueError:  # corrupt, truncated or unusual: Pillow's path knows how to tell the user
        return None
    return Image.fromarray(pixels[:, :, 0] if mode == "L" else pixels)


def _flatten(img: Image.Image) -> Image.Image:
    """Return an RGB or L image a JPEG can hold, looking as the original does on a white page."""
    mode = img.mode
    if mode in ("RGB", "L") and "transparency" not in img.info:
        return img
    if mode == "CMYK":
        return _cmyk_to_rgb(img)
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        return _to_8bit(img)
    if mode == "1":
        return img.convert("L")
    if mode in _ALPHA_MODES or "transparency" in img.info:
        return _on_white(img)
    return img.convert("RGB")  # palette without transparency, YCbCr, HSV, LAB, ...


def _on_white(img: Image.Image) -> Image.Image:
    """Composite a transparent image on white (JPEG has no alpha; black would be the default otherwise)."""
    if img.mode in ("LA", "La"):
        rgba = img.convert("LA") if img.mode == "La" else img
        background = Image.new("L", img.size, 255)
    else:
        # P, L and RGB with a transparent colour need RGBA: only that conversion honours `transparency`.
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        background = Image.new("RGB", img.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _to_8bit(img: Image.Image) -> Image.Image:
    """Rescale 16-bit, 32-bit integer or float samples to 0-255 (a plain convert would clip them)."""
    if img.mode in _SIXTEEN_BIT_MODES:
        return img.convert("I").point(lambda v: v * (1 / 257)).convert("L")
    low, high = cast(tuple[float, float], img.getextrema())  # single band: (min, max)
    if img.mode == "F" and low >= 0 and high <= 1:
        return img.point(lambda v: v * 255).convert("L")
    if low >= 0 and high <= 255:
        return img.convert("L")
    if low >= 0 and high <= 65535:
        return img.point(lambda v: v * (1 / 257)).convert("L")
    span = float(high - low) or 1.0  # an unknown range: stretch what is there
    return img.point(lambda v: (v - low) * (255 / span)).convert("L")


def _cmyk_to_rgb(img: Image.Image) -> Image.Image:
    """CMYK to RGB through the embedded ICC profile when there is one, else Pillow's naive formula."""
    if img.format in ("JPEG", "MPO") and "adobe" not in img.info:
        # Pillow reads all CMYK JPEGs as Adobe-inverted; one without an Adobe marker was never inverted.
        img = ImageChops.invert(img)
    icc = img.info.get("icc_profile")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            srgb = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(img, source, srgb, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            converted = None  # a broken or non-CMYK profile: fall back below
        if converted is not None:
            return converted
    return img.convert("RGB")


def _shrink(img: Image.Image, longest: int, *, thumbnail: bool = False) -> Image.Image:
    """Downscale to fit `longest` with BICUBIC; the gallery's thumbnail box-reduce()s by the whole factor first."""
    size = _fit(img.size, longest)
    if size == img.size:
        return img
    if thumbnail:
        # reduce() by the whole factor, BICUBIC for the rest: half the cost, indistinguishable at 320 px.
        return img.resize(size, Image.Resampling.BICUBIC, reducing_gap=1.0)
    # BICUBIC, not LANCZOS: a quarter less CPU per image for 0.5 dB PSNR (bench/RESULTS.md, "Image preparation").
    return img.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)


def _encode_jpeg(img: Image.Image, quality: int, icc: object) -> bytes:
    out = io.BytesIO()
    if _icc_matches(icc, img.mode):
        img.save(out, "JPEG", quality=quality, icc_profile=icc)
    else:
        img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _icc_matches(icc: object, mode: str) -> bool:
    """True when the original's ICC profile describes our output's colour space (RGB or gray)."""
    if not isinstance(icc, bytes) or not 128 <= len(icc) <= _ICC_MAX_BYTES:
        return False
    return icc[16:20] == {"RGB": b"RGB ", "L": b"GRAY"}.get(mode)


# --- facts ---------------------------------------------------------------------------------------------


def _exif_text(exif: Image.Exif | None, tag: int) -> str | None:
    if exif is None:
        return None
    return _clean_text(exif.get(tag))


def _clean_text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    if not value:
        return None
    return value if len(value) <= _TEXT_LIMIT else value[:_TEXT_LIMIT] + "…"


def _frame_count(img: Image.Image) -> int:
    try:
        return int(getattr(img, "n_frames", 1))
    except Exception:  # a damaged later frame (a TIFF's TypeError "Missing dimensions") leaves the first usable
        return 1


def _text_metadata(img: Image.Image, exif: Image.Exif | None) -> dict[str, str]:
    """Text chunks Pillow read with the header (PNG text before IDAT), comments, and the EXIF UserComment."""
    text: dict[str, str] = {}
    for key, value in img.info.items():
        if isinstance(value, str) or (key == "comment" and isinstance(value, bytes)):
            cleaned = _clean_text(value)
            if cleaned:
                text[str(key)] = cleaned
    if exif is not None:
        try:
            comment = exif.get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.UserComment)
        except _EXIF_ERRORS:
            comment = None
        cleaned = _clean_text(decode_user_comment(comment))
        if cleaned:
            text["UserComment"] = cleaned
    return text


def decode_user_comment(value: object) -> str | None:
    """EXIF UserComment: an 8-byte charset prefix, then the text (where A1111 puts generation parameters)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, bytes) or len(value) <= 8:
        return None
    prefix, body = value[:8], value[8:]
    if prefix.startswith(b"UNICODE"):
        # UTF-16 in either byte order: the order whose high bytes are mostly zero is the right one.
        big_endian = body[0::2].count(0) >= body[1::2].count(0)
        return body.decode("utf-16-be" if big_endian else "utf-16-le", errors="replace")
    return body.decode("utf-8", errors="replace")
