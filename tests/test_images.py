"""Image preparation: every image here is made by Pillow in the test (or crafted byte by byte)."""

from __future__ import annotations

import io
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFile, ImageStat, PngImagePlugin

from labeling.errors import ImageError
from labeling.images import PreparedImage, make_thumbnail, prepare, read_facts

RED = (255, 0, 0)
BLUE = (0, 0, 255)


# --- helpers --------------------------------------------------------------------------------------------------


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def photo(width: int, height: int) -> Image.Image:
    """Something photo-like: a gradient with a few shapes, so JPEG sizes are realistic."""
    img = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(img)
    draw.ellipse((width // 4, height // 4, width // 2, height // 2), fill=(200, 60, 40))
    draw.rectangle((width // 2, height // 2, width - 10, height - 10), fill=(30, 90, 200))
    return img


def decoded(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def close_to(pixel: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def rgb_at(data: bytes, xy: tuple[int, int]) -> tuple[int, ...]:
    pixel = decoded(data).convert("RGB").getpixel(xy)
    assert isinstance(pixel, tuple)
    return pixel


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height RGB pixels, with a tiny IDAT: no big buffer is ever made."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + png_chunk(b"IEND", b"")
    )


def kind_of(data: bytes) -> str:
    with pytest.raises(ImageError) as caught:
        prepare(data)
    assert str(caught.value)  # every failure carries a message a user can act on
    return caught.value.kind


def without_adobe_marker(jpeg: bytes) -> bytes:
    """Drop the APP14 'Adobe' segment, as some non-Adobe tools write CMYK JPEGs."""
    out, pos = bytearray(jpeg[:2]), 2
    while pos < len(jpeg):
        marker = jpeg[pos : pos + 2]
        if marker == b"\xff\xda":  # start of scan: the rest is entropy-coded data
            out += jpeg[pos:]
            break
        length = struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]
        if marker != b"\xff\xee":
            out += jpeg[pos : pos + 2 + length]
        pos += 2 + length
    return bytes(out)


# --- prepare: geometry ------------------------------------------------------------------------------------------


def test_large_jpeg_is_downscaled_to_768_with_aspect_kept() -> None:
    result = prepare(encode(photo(3000, 2000), "JPEG", quality=90))

    assert (result.width, result.height) == (768, 512)
    assert decoded(result.data).size == (768, 512)
    assert (result.original_width, result.original_height) == (3000, 2000)
    assert result.mime_type == "image/jpeg" and decoded(result.data).format == "JPEG"
    assert result.original_format == "JPEG"
    assert not result.sent_as_is


@pytest.mark.parametrize(
    ("size", "mode", "orientation", "expected"),
    [
        ((1024, 768), "RGB", 1, (768, 576)),  # 6/8 in the decoder, no resize after it
        ((1280, 960), "RGB", 1, (768, 576)),  # 5/8 (800x600), then a small resize
        ((1024, 768), "L", 1, (768, 576)),
        ((1024, 768), "RGB", 6, (576, 768)),
    ],
)
def test_a_jpeg_shrunk_in_the_decoder_looks_like_the_full_decode_resized(
    size: tuple[int, int], mode: str, orientation: int, expected: tuple[int, int]
) -> None:
    """libjpeg-turbo's M/8 scales (not only Pillow's 1/2^k) give the model image the same pixels, upright."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    original = photo(*size).convert(mode)
    result = prepare(encode(original, "JPEG", quality=95, exif=exif.tobytes()))

    out = decoded(result.data)
    assert (result.width, result.height) == out.size == expected and out.mode == mode
    reference = original.resize((768, 576), Image.Resampling.LANCZOS)
    if orientation == 6:
        reference = reference.transpose(Image.Transpose.ROTATE_270)
    difference = ImageChops.difference(out.convert("RGB"), reference.convert("RGB")).convert("L")
    assert ImageStat.Stat(difference).mean[0] < 3  # mean error in levels of 255: the same picture
    assert decoded(result.thumbnail).size == (expected[0] * 320 // 768, expected[1] * 320 // 768)


def test_tall_image_keeps_its_aspect() -> None:
    result = prepare(encode(photo(1000, 4000), "JPEG"), max_size=400)

    assert (result.width, result.height) == (100, 400)
    assert decoded(result.data).size == (100, 400)


def test_small_baseline_jpeg_is_sent_as_is() -> None:
    original = encode(photo(600, 400), "JPEG", quality=85)

    result = prepare(original)

    assert result.sent_as_is
    assert result.data == original
    assert (result.width, result.height) == (600, 400)
    assert result.size_bytes == len(original)


def test_small_progressive_jpeg_is_reencoded() -> None:
    result = prepare(encode(photo(600, 400), "JPEG", progressive=True))

    assert not result.sent_as_is
    assert "progressive" not in decoded(result.data).info
    assert decoded(result.data).size == (600, 400)


def test_exif_orientation_6_swaps_dimensions_and_rotates() -> None:
    img = Image.new("RGB", (400, 200), BLUE)
    img.paste(RED, (0, 0, 200, 200))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    result = prepare(encode(img, "JPEG", exif=exif.tobytes()))

    assert not result.sent_as_is  # the rotation has to be applied for the model
    assert (result.width, result.height) == (200, 400)
    assert (result.original_width, result.original_height) == (200, 400)
    assert decoded(result.data).size == (200, 400)
    assert close_to(rgb_at(result.data, (100, 50)), RED)  # the left half is now on top
    assert close_to(rgb_at(result.data, (100, 350)), BLUE)
    assert decoded(result.thumbnail).size == (160, 320)


def test_exif_orientation_is_applied_to_a_downscaled_jpeg_too() -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    result = prepare(encode(photo(4000, 3000), "JPEG", exif=exif.tobytes()))

    assert (result.width, result.height) == (576, 768)
    assert (result.original_width, result.original_height) == (3000, 4000)


def test_png_exif_orientation_is_honoured_by_prepare_and_read_facts() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(photo(40, 20), "PNG", exif=exif.tobytes())

    assert (prepare(data).width, prepare(data).height) == (20, 40)
    assert (read_facts(data).orientation, read_facts(data).width) == (6, 20)


# --- prepare: colour modes ------------------------------------------------------------------------------------


def test_transparent_png_is_composited_on_white() -> None:
    img = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (50, 0, 100, 100))
    result = prepare(encode(img, "PNG"))

    assert result.original_format == "PNG" and result.mime_type == "image/jpeg"
    assert close_to(rgb_at(result.data, (10, 50)), (255, 255, 255), tolerance=5)
    assert close_to(rgb_at(result.data, (90, 50)), RED)
    assert close_to(rgb_at(result.thumbnail, (10, 50)), (255, 255, 255), tolerance=5)


def test_palette_image_with_transparency_becomes_white_there() -> None:
    img = Image.new("P", (64, 64), 0)
    img.putpalette([0, 0, 0, 255, 0, 0])  # index 0 black, index 1 red
    img.paste(1, (32, 0, 64, 64))
    result = prepare(encode(img, "PNG", transparency=0))

    assert close_to(rgb_at(result.data, (10, 32)), (255, 255, 255), tolerance=5)
    assert close_to(rgb_at(result.data, (50, 32)), RED)


def test_grayscale_with_alpha_is_composited_on_white() -> None:
    img = Image.new("LA", (64, 64), (0, 0))
    img.paste((0, 255), (32, 0, 64, 64))
    result = prepare(encode(img, "PNG"))

    assert decoded(result.data).mode == "L"
    assert decoded(result.data).getpixel((10, 32)) >= 250  # type: ignore[operator]
    assert decoded(result.data).getpixel((50, 32)) <= 5  # type: ignore[operator]


def test_cmyk_jpeg_comes_out_rgb_with_the_right_colour() -> None:
    red_in_cmyk = Image.new("CMYK", (300, 200), (0, 255, 255, 0))
    result = prepare(encode(red_in_cmyk, "JPEG"))

    assert decoded(result.data).mode == "RGB"
    assert close_to(rgb_at(result.data, (150, 100)), RED, tolerance=60)


def test_cmyk_jpeg_without_adobe_marker_is_not_inverted() -> None:
    # Pillow writes CMYK inverted, Adobe-style: so these stored samples read as plain (0, 255, 255, 0) = red
    # for any decoder that, like browsers and libjpeg tools, inverts only when the Adobe marker says so.
    stored_as_plain_red = Image.new("CMYK", (300, 200), (255, 0, 0, 255))
    jpeg = without_adobe_marker(encode(stored_as_plain_red, "JPEG"))
    assert "adobe" not in Image.open(io.BytesIO(jpeg)).info

    assert close_to(rgb_at(prepare(jpeg).data, (150, 100)), RED, tolerance=60)


def test_16_bit_png_is_rescaled_not_clipped() -> None:
    img = Image.new("I;16", (256, 16))
    img.putdata([x * 257 for x in range(256)] * 16)  # a full 0..65535 ramp
    result = prepare(encode(img, "PNG"))

    pixels = decoded(result.data).convert("L")
    low, high = pixels.getextrema()
    assert low <= 5 and high >= 250  # type: ignore[operator]
    assert 100 <= pixels.getpixel((128, 8)) <= 156  # type: ignore[operator]  # mid-grey stays mid-grey


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (80, 60), RED), Image.new("RGB", (80, 60), BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    result = prepare(data)

    assert result.original_format == "GIF"
    assert (result.width, result.height) == (80, 60)
    assert close_to(rgb_at(result.data, (40, 30)), RED)


def test_animated_webp_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (80, 60), BLUE), Image.new("RGB", (80, 60), RED)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, lossless=True)
    result = prepare(data)

    assert result.original_format == "WEBP"
    assert close_to(rgb_at(result.data, (40, 30)), BLUE)


def test_grayscale_jpeg_stays_grayscale() -> None:
    result = prepare(encode(photo(2000, 1000).convert("L"), "JPEG"))

    assert decoded(result.data).mode == "L"
    assert (result.width, result.height) == (768, 384)


# --- thumbnails -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "thumb_size"), [((3000, 2000), 320), ((500, 300), 320), ((2000, 3000), 128)])
def test_prepare_thumbnail_fits_thumb_size(size: tuple[int, int], thumb_size: int) -> None:
    result = prepare(encode(photo(*size), "JPEG"), thumb_size=thumb_size)

    thumb = decoded(result.thumbnail)
    assert result.thumbnail_mime_type == "image/jpeg" and thumb.format == "JPEG"
    assert max(thumb.size) == thumb_size
    assert abs(thumb.width / thumb.height - size[0] / size[1]) < 0.02


def test_make_thumbnail_never_upscales() -> None:
    data, mime = make_thumbnail(encode(photo(200, 100), "PNG"), size=320)

    assert mime == "image/jpeg"
    assert decoded(data).size == (200, 100)


def test_make_thumbnail_of_a_large_jpeg() -> None:
    data, _ = make_thumbnail(encode(photo(4000, 3000), "JPEG"), size=100)

    assert decoded(data).size == (100, 75)


# --- failures -------------------------------------------------------------------------------------------------


def test_empty_bytes() -> None:
    assert kind_of(b"") == "empty"


@pytest.mark.parametrize(
    "data",
    [b"just some words, not a picture\n", b"<!DOCTYPE html><html><body>Access denied</body></html>", b"\x00\x01"],
)
def test_not_an_image(data: bytes) -> None:
    assert kind_of(data) == "not_an_image"


def test_truncated_jpeg_is_corrupt_not_grey() -> None:
    whole = encode(photo(1200, 800), "JPEG")
    assert kind_of(whole[: len(whole) // 2]) == "corrupt"
    with pytest.raises(ImageError) as caught:
        make_thumbnail(whole[: len(whole) // 2])
    assert caught.value.kind == "corrupt"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_small_jpeg_is_not_sent_as_is() -> None:
    whole = encode(photo(600, 400), "JPEG")
    assert kind_of(whole[: len(whole) * 2 // 3]) == "corrupt"


def test_truncated_png_is_corrupt() -> None:
    whole = encode(photo(400, 300), "PNG")
    assert kind_of(whole[: len(whole) // 2]) == "corrupt"


def test_png_with_a_damaged_header_is_corrupt() -> None:
    assert kind_of(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40) == "corrupt"


def test_decompression_bomb_header_is_too_large() -> None:
    max_before = Image.MAX_IMAGE_PIXELS
    assert kind_of(png_header_only(100_000, 100_000)) == "too_large"
    assert max_before == Image.MAX_IMAGE_PIXELS  # the global limit is never touched


def test_our_pixel_limit_is_checked_before_decoding() -> None:
    # 81 megapixels: under Pillow's own warning limit, over our default of 64; only the header exists.
    assert kind_of(png_header_only(9_000, 9_000)) == "too_large"
    with pytest.raises(ImageError) as caught:
        prepare(encode(photo(100, 100), "PNG"), max_pixels=5_000)
    assert caught.value.kind == "too_large"
    assert "megapixels" in str(caught.value)


def test_a_damaged_heic_is_corrupt_and_named() -> None:
    fake_heic = struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    with pytest.raises(ImageError) as caught:
        prepare(fake_heic)
    assert caught.value.kind == "corrupt"  # pillow-heif reads HEIC: only a damaged one fails
    assert "an HEIC/HEIF image" in str(caught.value)


def test_svg_is_unsupported() -> None:
    assert kind_of(b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>') == "unsupported"


# --- read_facts -----------------------------------------------------------------------------------------------


def test_read_facts_png_with_stable_diffusion_parameters() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cat in a hat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42")
    info.add_text("workflow", "x" * 50_000)  # ComfyUI-sized: must come back truncated
    facts = read_facts(encode(Image.new("RGBA", (640, 480)), "PNG", pnginfo=info))

    assert (facts.format, facts.width, facts.height, facts.mode) == ("PNG", 640, 480, "RGBA")
    assert facts.frames == 1 and not facts.animated
    assert facts.text["parameters"].startswith("a cat in a hat\nSteps: 20")
    assert 1000 < len(facts.text["workflow"]) < 50_000
    assert facts.make is None


def test_read_facts_jpeg_with_exif_make_and_model() -> None:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS R5"
    exif[0x0131] = "Adobe Photoshop 25.0"
    exif[0x0112] = 6
    data = encode(photo(400, 300), "JPEG", exif=exif.tobytes())
    facts = read_facts(data)

    assert (facts.make, facts.model, facts.software) == ("Canon", "Canon EOS R5", "Adobe Photoshop 25.0")
    assert facts.format == "JPEG" and facts.mode == "RGB"
    assert facts.orientation == 6
    assert (facts.width, facts.height) == (300, 400)  # as a viewer shows it
    assert facts.size_bytes == len(data)


def test_read_facts_counts_animation_frames() -> None:
    frames = [Image.new("RGB", (20, 20), colour) for colour in (RED, BLUE, RED)]
    facts = read_facts(encode(frames[0], "GIF", save_all=True, append_images=frames[1:]))

    assert facts.frames == 3 and facts.animated


def test_read_facts_reports_header_of_a_bomb_without_decoding() -> None:
    facts = read_facts(png_header_only(9_000, 9_000))
    assert (facts.width, facts.height) == (9_000, 9_000)


def test_read_facts_failures_have_kinds() -> None:
    for data, kind in [(b"", "empty"), (b"hello", "not_an_image"), (png_header_only(100_000, 100_000), "too_large")]:
        with pytest.raises(ImageError) as caught:
            read_facts(data)
        assert caught.value.kind == kind


# --- threads --------------------------------------------------------------------------------------------------


def test_prepare_in_threads_matches_sequential_results() -> None:
    inputs = [
        encode(photo(2400, 1600), "JPEG"),
        encode(photo(500, 300), "JPEG"),
        encode(photo(900, 900).convert("RGBA"), "PNG"),
        encode(Image.new("CMYK", (800, 600), (0, 255, 255, 0)), "JPEG"),
    ] * 4
    sequential = [prepare(data) for data in inputs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded: list[PreparedImage] = list(pool.map(prepare, inputs))

    assert threaded == sequential
