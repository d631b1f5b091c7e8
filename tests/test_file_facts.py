"""Per-image technical facts (labeling.file_facts): real files with known facts in, FactRow columns out."""

from __future__ import annotations

import hashlib
import io

import imagehash
import pytest
from PIL import Image, PngImagePlugin

from labeling.file_facts import file_facts
from labeling.jpeg_quality import estimate_quality, ijg_table
from labeling.metadata_facts import icc_description
from labeling.pixel_stats import pixel_stats
from labeling.provenance import has_c2pa
from labeling.store.facts import FactRow
from tests import fact_images as make


def facts(data: bytes, **options: int) -> FactRow:
    row = file_facts(7, "test", data, **options)
    assert row.image_id == 7 and row.facts_version == "test"
    return row


# --- JPEG encoding -------------------------------------------------------------------------------------------


def test_every_ijg_quality_is_recognised_exactly_in_pillows_own_tables() -> None:
    # Pillow's `quantization` is in natural order: every quality libjpeg writes matches its scaled Annex K table.
    img = make.photo((16, 16))
    for quality in range(1, 101):
        table = Image.open(io.BytesIO(make.jpeg(img, quality=quality))).quantization[0]
        assert list(table) == list(ijg_table(quality)), quality
        found = estimate_quality(table)
        assert found is not None and (found.quality, found.table) == (quality, "standard"), quality


@pytest.mark.parametrize("quality", [75, 90, 96])
@pytest.mark.parametrize(("sampling", "name"), [(0, "4:4:4"), (1, "4:2:2"), (2, "4:2:0")])
def test_jpeg_quality_and_subsampling(quality: int, sampling: int, name: str) -> None:
    row = facts(make.jpeg(quality=quality, subsampling=sampling))
    assert (row.format, row.jpeg_quality, row.jpeg_table, row.jpeg_subsampling) == ("JPEG", quality, "standard", name)
    assert (row.jpeg_progressive, row.jpeg_tables, row.mode, row.bit_depth) == (False, 2, "RGB", 8)


def test_progressive_and_grayscale_jpegs() -> None:
    assert facts(make.jpeg(progressive=True)).jpeg_progressive is True
    gray = facts(make.jpeg(make.photo().convert("L"), quality=80))
    assert (gray.jpeg_subsampling, gray.jpeg_tables, gray.jpeg_quality, gray.mode) == ("gray", 1, 80, "L")
    assert gray.saturation_mean == 0.0


def test_a_camera_table_is_custom_with_the_nearest_quality() -> None:
    row = facts(make.camera_jpeg())
    assert (row.jpeg_table, row.jpeg_quality) == ("custom", 92)
    assert estimate_quality([1] * 63) is None  # not a table


def test_other_formats_have_no_jpeg_facts() -> None:
    row = facts(make.png())
    assert (row.jpeg_quality, row.jpeg_table, row.jpeg_subsampling, row.jpeg_progressive, row.jpeg_tables) == (
        None,
        None,
        None,
        None,
        None,
    )


# --- file facts ---------------------------------------------------------------------------------------------


def test_file_facts_of_an_oriented_jpeg() -> None:
    data = make.jpeg(make.photo((120, 80)), exif=make.camera_exif(orientation=6))
    row = facts(data)
    assert (row.width, row.height, row.orientation) == (80, 120, 6)  # as a viewer shows it
    assert row.aspect == pytest.approx(80 / 120)
    assert row.size_bytes == len(data) and row.bytes_per_pixel == pytest.approx(len(data) / (80 * 120))
    assert row.frames == 1 and row.sha256 == hashlib.sha256(data).hexdigest()
    assert row.error is None and row.details == {}


def test_bit_depth_by_mode_and_frames() -> None:
    assert facts(make.encode(Image.new("I;16", (20, 10), 40_000), "PNG")).bit_depth == 16
    assert facts(make.encode(Image.new("1", (20, 10), 1), "PNG")).bit_depth == 1
    assert facts(make.encode(Image.new("P", (20, 10)), "PNG")).bit_depth == 8
    frames = [Image.new("RGB", (20, 20), colour) for colour in ("red", "blue", "red")]
    assert facts(make.encode(frames[0], "GIF", save_all=True, append_images=frames[1:])).frames == 3


# --- metadata ------------------------------------------------------------------------------------------------


def test_camera_exif_facts() -> None:
    row = facts(make.jpeg(exif=make.camera_exif()))
    assert (row.exif, row.exif_make, row.exif_model, row.exif_software) == (True, "Apple", "iPhone 15 Pro", "17.1")
    assert row.exif_datetime_original == "2024:05:17 14:03:22"
    assert row.exif_gps is True and row.generator is None

    plain = facts(make.jpeg())
    assert (plain.exif, plain.exif_make, plain.exif_datetime_original, plain.exif_gps) == (False, None, None, False)
    no_gps = Image.Exif()
    no_gps[0x010F] = "Canon"
    assert (facts(make.jpeg(exif=no_gps)).exif, facts(make.jpeg(exif=no_gps)).exif_gps) == (True, False)


def test_icc_profile_and_its_description() -> None:
    row = facts(make.jpeg(icc_profile=make.srgb_icc()))
    assert (row.icc, row.icc_description) == (True, "sRGB built-in")  # ICC v4 `mluc`
    assert icc_description(make.icc_v2("Camera RGB Profile")) == "Camera RGB Profile"  # ICC v2 `desc`
    assert facts(make.png(make.photo((16, 16)), icc_profile=make.icc_v2("Display P3"))).icc_description == "Display P3"
    assert icc_description(b"too short") is None
    assert (facts(make.jpeg()).icc, facts(make.jpeg()).icc_description) == (False, None)


def test_xmp_in_jpeg_png_and_webp() -> None:
    assert facts(make.jpeg(xmp=make.XMP_PACKET)).xmp is True
    assert facts(make.png_with_xmp()).xmp is True
    assert facts(make.encode(make.photo(), "WEBP", xmp=make.XMP_PACKET)).xmp is True
    assert facts(make.jpeg()).xmp is False and facts(make.png()).xmp is False


@pytest.mark.parametrize(
    ("texts", "generator"),
    [
        ({"parameters": make.A1111_PARAMETERS}, "Stable Diffusion WebUI"),
        ({"prompt": make.COMFY_PROMPT, "workflow": make.COMFY_WORKFLOW}, "ComfyUI"),
        ({"invokeai_metadata": '{"positive_prompt": "a fox"}'}, "InvokeAI"),
        ({"Software": "NovelAI", "Comment": '{"steps": 28}'}, "NovelAI"),
        ({"Comment": '{"prompt": "a fox", "steps": 28, "sampler": "k_euler"}'}, "NovelAI"),
        ({"Software": "Midjourney v6"}, "Midjourney"),
        ({"parameters": "just a caption"}, None),  # no Steps:/Sampler:
        ({"prompt": "not json"}, None),
        ({"Title": "holiday"}, None),
    ],
)
def test_generator_from_png_text(texts: dict[str, str], generator: str | None) -> None:
    row = facts(make.png(texts=texts))
    assert row.generator == generator
    assert row.text_keys == sorted(texts)


def test_generator_from_exif_user_comment_and_software() -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + make.A1111_PARAMETERS.encode("utf-16-be")
    row = facts(make.jpeg(exif=exif))
    assert (row.generator, row.text_keys) == ("Stable Diffusion WebUI", ["UserComment"])
    firefly = Image.Exif()
    firefly[0x0131] = "Adobe Firefly"
    assert facts(make.jpeg(exif=firefly)).generator == "Adobe Firefly"


def test_text_after_the_pixel_data_is_read() -> None:
    parameters = b"parameters\x00" + make.A1111_PARAMETERS.encode()
    row = facts(make.with_png_chunk(make.png(make.photo((16, 16))), b"tEXt", parameters, late=True))
    assert (row.generator, row.text_keys) == ("Stable Diffusion WebUI", ["parameters"])


# --- provenance ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_c2pa_signed_file_names_its_claim_generator(fmt: str) -> None:
    data = make.c2pa_signed(fmt)
    row = facts(data)
    assert row.format == fmt and row.error is None
    assert (row.c2pa, row.c2pa_generator) == (True, f"{make.C2PA_GENERATOR}/1.0")
    assert row.details["c2pa_source_type"] == "trainedAlgorithmicMedia"
    assert row.luma_mean is not None  # the manifest does not get in the way of the pixels


def test_a_damaged_manifest_is_detected_and_its_error_kept() -> None:
    data = make.with_png_chunk(make.png(make.photo((16, 16))), b"caBX", make.jumbf(b"c2pa", b"\x00" * 40))
    row = facts(data)
    assert (row.c2pa, row.c2pa_generator, row.error) == (True, None, None)
    assert row.details["c2pa_error"] and row.luma_mean is not None


def test_c2pa_detection_is_by_container_and_label() -> None:
    assert has_c2pa(make.with_app11(make.jpeg(), make.jumbf(b"c2pa")))
    assert not has_c2pa(make.with_app11(make.jpeg(), make.jumbf(b"other")))  # JUMBF, not C2PA
    assert not has_c2pa(make.with_png_chunk(make.png(), b"tEXt", b"caBX\x00c2pa"))
    assert not has_c2pa(make.jpeg()) and not has_c2pa(make.png()) and not has_c2pa(make.encode(make.photo(), "WEBP"))
    assert not has_c2pa(b"\x89PNG\r\n\x1a\n\x00\x00")  # truncated: no crash
    assert facts(make.jpeg()).c2pa is False


# --- pixels and hashes --------------------------------------------------------------------------------------


def test_exposure_statistics() -> None:
    white, black = facts(make.png(Image.new("RGB", (40, 30), "white"))), facts(make.png(Image.new("L", (40, 30))))
    assert (white.luma_mean, white.clip_high, white.clip_low, white.luma_std) == (255.0, 1.0, 0.0, 0.0)
    assert (black.luma_mean, black.clip_high, black.clip_low, black.saturation_mean) == (0.0, 0.0, 1.0, 0.0)
    red = facts(make.png(Image.new("RGB", (40, 30), (255, 0, 0))))
    assert red.saturation_mean == pytest.approx(1.0) and red.luma_mean == pytest.approx(76, abs=1)


def test_transparent_pixels_count_as_white() -> None:
    row = facts(make.png(Image.new("RGBA", (40, 30), (0, 0, 0, 0))))
    assert (row.luma_mean, row.clip_high, row.mode) == (255.0, 1.0, "RGBA")


def test_detail_statistics_rank_noise_above_a_blur() -> None:
    sharp = make.photo((256, 192), noise=40)
    noisy, smooth = facts(make.png(sharp)), facts(make.png(make.blurred(sharp, 3)))
    assert noisy.sharpness is not None and smooth.sharpness is not None
    assert noisy.sharpness > 10 * smooth.sharpness
    assert noisy.high_freq is not None and smooth.high_freq is not None
    assert noisy.high_freq > 3 * smooth.high_freq and 0 < smooth.high_freq < noisy.high_freq < 1


def test_perceptual_hashes_survive_a_reencode_and_match_imagehash() -> None:
    picture = make.photo((200, 150), noise=0)
    as_png, as_jpeg = facts(make.png(picture)), facts(make.jpeg(picture, quality=85))
    assert as_png.phash is not None and as_jpeg.phash is not None and as_png.dhash is not None
    assert bin(as_png.phash ^ as_jpeg.phash).count("1") <= 4
    assert 0 <= as_png.phash < 2**64 and 0 <= as_png.dhash < 2**64
    stats = pixel_stats(picture)
    assert stats.phash == int(str(imagehash.phash(picture)), 16)
    assert stats.dhash == int(str(imagehash.dhash(picture)), 16)


def test_a_large_jpeg_is_measured_from_a_reduced_decode_close_to_a_full_one() -> None:
    picture = make.photo((2048, 1536), noise=8)
    row = facts(make.jpeg(picture, quality=92))
    full = pixel_stats(picture.resize((256, 192), Image.Resampling.LANCZOS))
    assert (row.width, row.height) == (2048, 1536)
    assert row.luma_mean == pytest.approx(full.luma_mean, abs=2)
    assert row.saturation_mean == pytest.approx(full.saturation_mean, abs=0.03)
    assert row.phash is not None and bin(row.phash ^ full.phash).count("1") <= 6


# --- failures -----------------------------------------------------------------------------------------------


def test_a_file_that_is_no_image_records_why() -> None:
    row = facts(b"\xff\xd8\xff not really a jpeg")
    assert row.error and row.format is None and row.size_bytes == 21 and row.sha256 is not None


def test_a_truncated_image_keeps_its_header_facts() -> None:
    data = make.jpeg(make.photo((300, 200)), quality=90, exif=make.camera_exif())
    row = facts(data[: len(data) // 2])
    assert row.error is None and "truncated" in row.details["pixels"]
    assert (row.width, row.jpeg_quality, row.exif_make, row.luma_mean, row.phash) == (300, 90, "Apple", None, None)


def test_an_image_over_the_pixel_limit_is_not_decoded() -> None:
    row = facts(make.png(make.photo((100, 100))), max_pixels=5_000)
    assert (row.width, row.height, row.luma_mean) == (100, 100, None)
    assert "over the limit" in row.details["pixels"]


def test_png_text_is_kept_whole_for_the_generator_rules() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("workflow", '{"nodes": [' + ", ".join(['{"id": 1}'] * 5000) + "]}")  # far over 4000 chars
    assert facts(make.encode(make.photo((16, 16)), "PNG", pnginfo=info)).generator == "ComfyUI"
