"""Small image files with known technical facts, for the scan's fact extraction (tests/test_file_facts.py).

Every function returns a file's bytes, written by Pillow (or c2pa-python for content credentials), so the facts
the scan reports can be checked against what was asked for: quality, subsampling, tables, EXIF, ICC, XMP,
generator text chunks, C2PA manifests.
"""

from __future__ import annotations

import datetime
import io
import json
import random
import struct
import zlib
from typing import Any

from PIL import Image, ImageCms, ImageDraw, ImageFilter, PngImagePlugin

XMP_PACKET = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>'
    b'</x:xmpmeta><?xpacket end="w"?>'
)
A1111_PARAMETERS = (
    "a red fox in snow, photorealistic\nNegative prompt: blurry\n"
    "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234, Size: 512x512, Model: sd_xl_base_1.0"
)
COMFY_PROMPT = json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20}}})
COMFY_WORKFLOW = json.dumps({"last_node_id": 9, "nodes": [{"id": 3, "type": "KSampler"}] * 200})
C2PA_GENERATOR = "FactTest Generator"


def photo(size: tuple[int, int] = (96, 64), *, noise: float = 12.0, seed: int = 1) -> Image.Image:
    """Colour gradients, a few shapes and sensor-like noise: compresses, measures and hashes like a small photo."""
    width, height = size
    red = Image.linear_gradient("L").resize(size)
    green = Image.linear_gradient("L").rotate(90).resize(size)
    blue = Image.radial_gradient("L").resize(size)
    img = Image.merge("RGB", (red, green, blue))
    draw, rng = ImageDraw.Draw(img), random.Random(seed)
    for _ in range(8):
        x, y = rng.randrange(width), rng.randrange(height)
        box = (
            x,
            y,
            x + rng.randrange(width // 8 + 1, width // 2 + 2),
            y + rng.randrange(height // 8 + 1, height // 2 + 2),
        )
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    if noise:
        grain = Image.merge("RGB", [Image.effect_noise(size, noise) for _ in range(3)])
        img = Image.blend(img, grain, 0.25)
    return img


def encode(img: Image.Image, fmt: str, **options: Any) -> bytes:
    """The image saved in `fmt` with Pillow's save options."""
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def jpeg(img: Image.Image | None = None, *, quality: int = 90, subsampling: int = 2, **options: Any) -> bytes:
    """A JPEG from Pillow (libjpeg: standard IJG tables at `quality`); 0/1/2 subsampling = 4:4:4/4:2:2/4:2:0."""
    return encode(img if img is not None else photo(), "JPEG", quality=quality, subsampling=subsampling, **options)


def camera_jpeg() -> bytes:
    """A JPEG with quantization tables no IJG quality makes (as a camera writes), near quality 92's."""
    from labeling.jpeg_quality import ijg_table

    luminance = [value + (1 if index % 3 == 0 else 0) for index, value in enumerate(ijg_table(92))]
    chrominance = [min(255, value + 2) for value in ijg_table(90)]
    # No `quality`: libjpeg would scale the given tables by it. Pillow's qtables are in natural order too.
    return encode(photo(), "JPEG", qtables=[luminance, chrominance])


def camera_exif(*, orientation: int = 1) -> Image.Exif:
    """EXIF as a phone writes it: make, model, software, DateTimeOriginal (Exif IFD) and a GPS position."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0131] = "Apple", "iPhone 15 Pro", "17.1"
    exif[0x0112] = orientation
    exif.get_ifd(0x8769)[0x9003] = "2024:05:17 14:03:22"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (52.0, 31.0, 12.0), "E", (13.0, 24.0, 36.0)
    return exif


def srgb_icc() -> bytes:
    """The sRGB profile littleCMS builds (ICC v4, a `mluc` description: "sRGB built-in")."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def icc_v2(description: str) -> bytes:
    """A minimal ICC v2 profile holding only a `desc` tag of textDescriptionType (what older tools write)."""
    text = description.encode("latin-1") + b"\x00"
    tag = b"desc" + b"\x00" * 4 + struct.pack(">I", len(text)) + text + b"\x00" * (8 + 3 + 67)  # no Unicode, no Mac
    offset = 128 + 4 + 12
    header = struct.pack(">I", offset + len(tag)) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ "
    header += b"\x00" * (36 - len(header)) + b"acsp" + b"\x00" * (128 - 40)
    return header + struct.pack(">I4sII", 1, b"desc", offset, len(tag)) + tag


def png(img: Image.Image | None = None, *, texts: dict[str, str] | None = None, **options: Any) -> bytes:
    """A PNG with tEXt chunks (`texts`), e.g. Stable Diffusion's `parameters` or ComfyUI's `prompt`."""
    info = PngImagePlugin.PngInfo()
    for key, value in (texts or {}).items():
        info.add_text(key, value)
    return encode(img if img is not None else photo((64, 64)), "PNG", pnginfo=info, **options)


def png_with_xmp() -> bytes:
    """A PNG carrying XMP the way Adobe tools do: an iTXt chunk keyed XML:com.adobe.xmp."""
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP_PACKET.decode("utf-8"))
    return encode(photo((32, 32)), "PNG", pnginfo=info)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def with_png_chunk(data: bytes, kind: bytes, payload: bytes, *, late: bool = False) -> bytes:
    """The PNG with one more chunk right after IHDR (where C2PA puts caBX), or before IEND when `late`."""
    at = data.rindex(b"IEND") - 4 if late else 8 + 8 + 13 + 4
    return data[:at] + png_chunk(kind, payload) + data[at:]


def jumbf(label: bytes, content: bytes = b"") -> bytes:
    """A JUMBF superbox: description box (c2pa-style type UUID, label) then `content`."""
    uuid = label[:4].ljust(4, b"\x00") + bytes.fromhex("00110010800000aa00389b71")
    description = uuid + b"\x03" + label + b"\x00"
    jumd = struct.pack(">I", 8 + len(description)) + b"jumd" + description
    return struct.pack(">I", 8 + len(jumd) + len(content)) + b"jumb" + jumd + content


def with_app11(data: bytes, box: bytes) -> bytes:
    """The JPEG with one APP11 JPEG XT segment ("JP", instance 1, sequence 1) holding `box`, after SOI."""
    payload = b"JP" + struct.pack(">HI", 1, 1) + box
    return data[:2] + b"\xff\xeb" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def blurred(img: Image.Image, radius: float = 2.0) -> Image.Image:
    """The image with a Gaussian blur: less detail, less high-frequency energy."""
    return img.filter(ImageFilter.GaussianBlur(radius))


# --- C2PA --------------------------------------------------------------------------------------------------


def c2pa_signed(fmt: str, *, source_type: str = "TRAINED_ALGORITHMIC_MEDIA") -> bytes:
    """A small image of `fmt` (PNG, JPEG, WEBP) signed by c2pa-python with a throw-away certificate chain.

    c2pa-rs refuses a self-signed signing certificate: the chain is a generated root CA and an ES256 leaf with
    digitalSignature key usage and the emailProtection extended key usage, valid for a day either side of now.
    """
    import c2pa

    mime = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}[fmt]
    certificates, key = _certificate_chain()
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", certificates, key, None))
    manifest = {"claim_generator_info": [{"name": C2PA_GENERATOR, "version": "1.0"}], "title": "fact test"}
    source = io.BytesIO(encode(photo((48, 32)), fmt))
    signed = io.BytesIO()
    with c2pa.Builder(json.dumps(manifest)) as builder:
        builder.set_intent(c2pa.C2paBuilderIntent.CREATE, getattr(c2pa.C2paDigitalSourceType, source_type))
        builder.sign(signer, mime, source, signed)
    signer.close()
    return signed.getvalue()


def _certificate_chain() -> tuple[bytes, bytes]:
    """(leaf + root certificates PEM, leaf private key PEM) for ES256 signing."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common: str) -> x509.Name:
        return x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, common), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tests")]
        )

    def usage(*, sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=sign,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=not sign,
            crl_sign=not sign,
            encipher_only=False,
            decipher_only=False,
        )

    now = datetime.datetime.now(datetime.UTC)
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def builder(subject: str, issuer: str, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )

    root = (
        builder("Fact Test Root", "Fact Test Root", root_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage(sign=False), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    leaf = (
        builder("Fact Test Signer", "Fact Test Root", leaf_key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(sign=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    chain = leaf.public_bytes(serialization.Encoding.PEM) + root.public_bytes(serialization.Encoding.PEM)
    key = leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return chain, key
