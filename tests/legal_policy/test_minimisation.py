"""Data minimisation: each field rule does what ``field_rules.MEANINGS`` says, and nothing
removed survives anywhere in the minimised ad, its page or its image bytes.

All data is synthetic: phone numbers from fiction ranges only (Ofcom drama 020 7946 0xxx,
ACMA 0491 570 156-159), e-mail and web addresses under reserved example domains, abstract
images (gradients and shapes). Pages come from the bundled demo site on loopback.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import pickle
import re
import struct
import unicodedata
import urllib.request
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import lxml.html  # type: ignore[import-untyped]
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageCms, ImageDraw, PngImagePlugin

from adwatch.demo.content import HELP_DESK_PHONE_DISPLAY
from adwatch.demo.site import DemoServer, running_demo_server
from adwatch.synthetic.phones import AU_FICTION_MOBILES, format_phone
from legal_policy.field_rules import FieldRule, FieldRules
from legal_policy.minimisation import (
    CapturedAd,
    CapturedImage,
    CapturedPhone,
    ImageNotReencodable,
    MinimisationError,
    MinimisedAd,
    PageNotParsable,
    cut_page,
    mask_contact_details,
    minimise_ad,
    strip_image_metadata,
)
from legal_policy.pseudonyms import case_key, pseudonymise_phone
from matching.images import describe_image
from matching.phones import extract_phones

KEY = case_key(bytes(range(32)), "2026-TEST-001")
OTHER_CASE_KEY = case_key(bytes(range(32)), "2026-TEST-002")
CET = timezone(timedelta(hours=1), "CET")
# A standard e-mail pattern, independent of the one under test.
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Markers written into image metadata; none may survive re-encoding.
MARKERS = (
    b"adwatch-exif-marker",
    b"adwatch-xmp-marker",
    b"adwatch-comment-marker",
    b"adwatch-text-marker",
    b"adwatch-ztxt-marker",
)


def rules(**overrides: str) -> FieldRules:
    return FieldRules(**{name: FieldRule(value) for name, value in overrides.items()})


def everything_in(ad: MinimisedAd) -> list[bytes]:
    """Every string and byte string the minimised ad holds, as bytes."""
    found: list[bytes] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.append(value.encode("utf-8"))
        elif isinstance(value, bytes):
            found.append(value)
        elif isinstance(value, datetime):
            found.append(value.isoformat().encode())
        elif isinstance(value, tuple):
            for item in value:
                walk(item)
        elif dataclasses.is_dataclass(value):
            for field in dataclasses.fields(value):
                walk(getattr(value, field.name))

    walk(ad)
    return found


def assert_nowhere(ad: MinimisedAd, *removed: str | bytes) -> None:
    held = everything_in(ad)
    for value in removed:
        needle = value.encode("utf-8") if isinstance(value, str) else value
        assert not any(needle in blob for blob in held), f"{value!r} survived"


# --- synthetic images ---------------------------------------------------------------------


def picture(width: int = 240, height: int = 160) -> Image.Image:
    """An abstract upright picture: a gradient, a red block top left, a blue disc bottom right."""
    xx = np.linspace(0, 1, width)[None, :, None]
    yy = np.linspace(0, 1, height)[:, None, None]
    pixels = 40 + 150 * xx * np.array([1.0, 0.8, 0.3]) + 50 * yy * np.array([0.2, 0.5, 1.0])
    image = Image.fromarray(np.broadcast_to(pixels, (height, width, 3)).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    draw.rectangle((8, 8, width // 3, height // 3), fill=(220, 30, 30))
    draw.ellipse((width * 2 // 3, height * 2 // 3, width - 8, height - 8), fill=(20, 40, 220))
    draw.line((0, height // 2, width, 0), fill=(250, 250, 250), width=5)
    return image


# Orientation tag value -> how to store an upright picture so that the tag turns it back.
STORED_AS = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}


def exif_with_gps(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.ImageDescription] = MARKERS[0].decode()
    exif[ExifTags.Base.Make] = "SyntheticCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps.update({1: "N", 2: (52.0, 22.0, 1.5), 3: "E", 4: (4.0, 53.0, 2.0)})
    return exif.tobytes()


XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>' + MARKERS[1] + b"</rdf:RDF></x:xmpmeta>"
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def jpeg_with_metadata(upright: Image.Image, orientation: int = 6) -> bytes:
    stored = upright.transpose(STORED_AS[orientation])
    buffer = io.BytesIO()
    stored.save(
        buffer,
        "JPEG",
        quality=95,
        exif=exif_with_gps(orientation),
        xmp=XMP,
        comment=MARKERS[2].decode(),
        icc_profile=ICC,
    )
    return buffer.getvalue()


def png_with_metadata(upright: Image.Image, orientation: int = 8) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", MARKERS[3].decode())
    info.add_text("Author", MARKERS[4].decode(), zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    buffer = io.BytesIO()
    upright.transpose(STORED_AS[orientation]).save(
        buffer, "PNG", pnginfo=info, exif=exif_with_gps(orientation), icc_profile=ICC
    )
    return buffer.getvalue()


def jpeg_markers(data: bytes) -> list[int]:
    """The marker of every JPEG segment before the image data."""
    assert data[:2] == b"\xff\xd8"
    markers, position = [], 2
    while True:
        assert data[position] == 0xFF
        marker = data[position + 1]
        markers.append(marker)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            return markers
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")


def png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, position = [], 8
    while position < len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        chunks.append(data[position + 4 : position + 8])
        position += 12 + length
    return chunks


# JFIF header, quantisation and Huffman tables, frame, restart interval, scan: no APPn
# but APP0, no comment.
JPEG_PIXEL_SEGMENTS = {0xE0, 0xDB, 0xC4, 0xC0, 0xC1, 0xC2, 0xDD, 0xDA}
PNG_PIXEL_CHUNKS = {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"}


def assert_no_metadata(data: bytes, media_type: str) -> Image.Image:
    for marker in (*MARKERS, b"Exif", b"SyntheticCam", b"http://ns.adobe.com", b"sRGB"):
        assert marker not in data
    if media_type == "image/jpeg":
        markers = jpeg_markers(data)
        assert set(markers) <= JPEG_PIXEL_SEGMENTS, [hex(m) for m in markers]
        assert data[6:11] == b"JFIF\x00"
    else:
        assert media_type == "image/png"
        assert set(png_chunks(data)) <= PNG_PIXEL_CHUNKS
    image = Image.open(io.BytesIO(data))
    image.load()
    assert not dict(image.getexif())
    assert not {"exif", "xmp", "icc_profile", "comment", "XML:com.adobe.xmp"} & set(image.info)
    return image


def captured_image(data: bytes, url: str = "http://127.0.0.1/images/p1.jpg") -> CapturedImage:
    described = describe_image(data)
    return CapturedImage(
        url=url,
        data=data,
        phash=described.fingerprint.phash,
        variants=described.fingerprint.variants,
        width=described.width,
        height=described.height,
    )


# --- images -------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_jpeg_loses_exif_gps_xmp_icc_and_comment_and_stays_upright(orientation: int) -> None:
    upright = picture()
    original = jpeg_with_metadata(upright, orientation)
    assert all(m in original for m in MARKERS[:3])  # the fixture does carry them
    data, media_type = strip_image_metadata(original)
    assert media_type == "image/jpeg"
    image = assert_no_metadata(data, media_type)
    assert image.format == "JPEG" and image.size == upright.size
    difference = np.abs(np.asarray(image, dtype=np.int16) - np.asarray(upright, dtype=np.int16))
    assert difference.mean() < 4
    # The red block is still top left, the blue disc bottom right.
    assert image.getpixel((20, 20))[0] > 180  # type: ignore[index]
    assert image.getpixel((image.width - 30, image.height - 25))[2] > 180  # type: ignore[index]
    before, after = describe_image(original), describe_image(data)
    assert (before.fingerprint.phash ^ after.fingerprint.phash).bit_count() <= 2
    assert (after.width, after.height) == (before.width, before.height)


def test_png_loses_text_chunks_exif_xmp_and_icc_and_keeps_its_exact_pixels_upright() -> None:
    upright = picture(200, 120)
    original = png_with_metadata(upright)
    assert {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP"} <= set(png_chunks(original))
    data, media_type = strip_image_metadata(original)
    image = assert_no_metadata(data, media_type)
    assert image.size == upright.size
    assert np.array_equal(np.asarray(image), np.asarray(upright))
    before, after = describe_image(original), describe_image(data)
    assert (before.fingerprint.phash ^ after.fingerprint.phash).bit_count() <= 2


def test_gif_becomes_png_without_its_comment_and_keeps_transparency() -> None:
    palette = picture(96, 64).quantize(64)
    palette.putpixel((0, 0), 0)
    buffer = io.BytesIO()
    palette.save(buffer, "GIF", comment=MARKERS[2], transparency=0)
    data, media_type = strip_image_metadata(buffer.getvalue())
    image = assert_no_metadata(data, media_type)
    assert image.mode == "RGBA"
    assert image.getpixel((0, 0))[3] == 0  # type: ignore[index]
    assert image.getpixel((50, 40))[3] == 255  # type: ignore[index]


def test_webp_becomes_png_without_exif_xmp_or_icc() -> None:
    buffer = io.BytesIO()
    stored = picture().transpose(STORED_AS[6])
    stored.save(buffer, "WEBP", exif=exif_with_gps(6), xmp=XMP, icc_profile=ICC, lossless=True)
    data, media_type = strip_image_metadata(buffer.getvalue())
    image = assert_no_metadata(data, media_type)
    assert np.array_equal(np.asarray(image), np.asarray(picture()))


@pytest.mark.parametrize(
    ("mode", "fmt", "expected"),
    [
        ("L", "JPEG", "L"),
        ("CMYK", "JPEG", "RGB"),
        ("L", "PNG", "L"),
        ("LA", "PNG", "LA"),
        ("RGBA", "PNG", "RGBA"),
        ("P", "PNG", "RGB"),
        ("1", "PNG", "1"),
        ("I;16", "PNG", "I;16"),
        ("RGB", "BMP", "RGB"),
    ],
)
def test_every_pixel_mode_is_re_encoded(mode: str, fmt: str, expected: str) -> None:
    buffer = io.BytesIO()
    picture(64, 48).convert(mode if mode != "I;16" else "I").convert(mode).save(buffer, fmt)
    data, media_type = strip_image_metadata(buffer.getvalue())
    image = assert_no_metadata(data, media_type)
    assert image.mode == expected and image.size == (64, 48)
    assert media_type == ("image/jpeg" if fmt == "JPEG" else "image/png")


def _png_declaring(width: int, height: int) -> bytes:
    """A small valid PNG whose header is rewritten to declare another size."""
    buffer = io.BytesIO()
    Image.new("L", (64, 64)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    header = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(header))
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"This is not a JPEG image; it is synthetic.\n", "could not be decoded"),
        (jpeg_with_metadata(picture())[:400], "could not be decoded"),
        (_png_declaring(8000, 6000), "pixel limit"),
        (b"%PDF-1.4\n" + b"0" * 200, "could not be decoded"),
    ],
    ids=["empty", "text", "truncated-jpeg", "pixel-bomb", "pdf"],
)
def test_undecodable_images_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(ImageNotReencodable, match=reason):
        strip_image_metadata(data)


# --- contact details in text --------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("+44 20 7946 0123", "[phone]"),
        ("+44-20-7946-0123", "[phone]"),
        ("+44 (0)20 7946 0123", "[phone]"),
        ("0044 20 7946 0123", "[phone]"),
        ("+442079460123", "[phone]"),
        ("+61 491 570 156", "[phone]"),
        ("+61-491-570-157", "[phone]"),
        ("+44 two zero seven nine four six zero one two three", "[phone]"),
        ("nul nul vier vier twee nul zeven negen vier zes nul een twee drie", "[phone]"),
        ("+44 2O 7946 O123", "[phone]"),
        ("+4 4 2 0 7 9 4 6 0 1 2 3", "[phone]"),
        ("+44*20*7946*0123", "[phone]"),
        ("＋４４ ２０ ７９４６ ０１２３", "[phone]"),
        ("wa.me/442079460123", "[phone]"),
        ("https://wa.me/61491570158?text=hoi", "[phone]"),
        ("tel:+61491570159", "tel:[phone]"),
        ("lena.test@example.nl", "[e-mail]"),
        ("lena+ads@mail.example.com", "[e-mail]"),
        ("mailto:lena@example.org", "[e-mail]"),
        ("lena (at) example (dot) nl", "[e-mail]"),
        ("lena[at]example.nl", "[e-mail]"),
        ("lena＠example.nl", "[e-mail]"),
        ("https://example.org/lena?page=2", "[link]"),
        ("www.example.nl", "[link]"),
        ("t.me/lena_example", "[link]"),
        ("instagram.com/lena.example", "[link]"),
        ("lena-example.nl", "[link]"),
    ],
)
def test_each_written_form_of_a_contact_detail_is_masked(written: str, masked: str) -> None:
    text, _ = mask_contact_details(f"Hoi! Bel of app {written} vandaag.", "NL")
    assert text == f"Hoi! Bel of app {masked} vandaag."
    assert extract_phones(text, "NL") == [] and not EMAIL.search(text)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Bel +44 20 7946 0123 25 jaar", "Bel [phone] 25 jaar"),
        ("€ 150 0044 20 7946 0123", "€ 150 [phone]"),
        ("Bel (+44 20 7946 0123 € 150 p/u)", "Bel [phone] € 150 p/u)"),
        ("+4 4 2 0 7 9 4 6 0 1 2 3 - — 22:00", "[phone] - — 22:00"),
        ("+61 491 570 156 / 12-11-2026", "[phone] / 12-11-2026"),
        ("+61 491 570 156, +61 491 570 156 25", "[phone], [phone] 25"),
    ],
)
def test_numbers_that_extract_phones_misses_in_their_context_are_masked(
    text: str, masked: str
) -> None:
    # Written against another number, or before a price: read as one over-long number or
    # as a price, the crawler does not extract them; a masked text must not keep them.
    assert mask_contact_details(text, "NL")[0] == masked


def test_counts_every_mention_including_a_repeated_number() -> None:
    # extract_phones reports a number once; masking must still find each mention.
    text = (
        "Bel +44 20 7946 0123 of +61 491 570 156. Nogmaals: +44 (0)20 7946 0123, "
        "mail lena@example.nl of zie www.example.com/lena (alleen vandaag)."
    )
    masked, counts = mask_contact_details(text, "NL")
    assert masked == (
        "Bel [phone] of [phone]. Nogmaals: [phone], mail [e-mail] of zie [link] (alleen vandaag)."
    )
    assert counts == {"phones_masked": 3, "emails_masked": 1, "links_masked": 1}


def test_prices_ages_dates_and_plain_words_are_left_alone() -> None:
    text = "Prijs € 150, 25 jaar, op 12-11-2026 om 22:00 in Den Haag. Nieuw.Hier 1,5 uur."
    assert mask_contact_details(text, "NL") == (
        text,
        {"phones_masked": 0, "emails_masked": 0, "links_masked": 0},
    )


UK_FICTION = st.integers(0, 998).map(lambda n: f"+442079460{n:03d}")
FICTION_E164 = st.one_of(UK_FICTION, st.sampled_from(AU_FICTION_MOBILES))
# Forms posters use (``adwatch.synthetic.phones``).
_FORMS = (
    "intl_spaced",
    "trunk_zero",
    "dashed",
    "idd_00",
    "compact",
    "spaced_digits",
    "words_en",
    "fullwidth",
    "wa_me",
)
PHONES = st.builds(format_phone, FICTION_E164, st.sampled_from(_FORMS))
EMAILS = st.builds(
    "{}@{}".format,
    st.from_regex(r"[a-z][a-z0-9._+-]{0,10}[a-z0-9]", fullmatch=True),
    st.sampled_from(["example.nl", "example.com", "mail.example.org"]),
)
LINKS = st.sampled_from(
    ["https://example.org/lena", "www.example.nl", "t.me/lena_example", "example.com/x?y=1"]
)
FILLER = st.sampled_from(
    (
        *("Hoi", "ik", "ben", "Lena", "nieuw", "in", "Zwolle", "bel", "of", "app", "Call", "me"),
        *("€ 150", "150", "25 jaar", "25", "12-11-2026", "22:00", "!", ".", ",", "(", ")", "—"),
    )
)
SEPARATORS = st.sampled_from([" ", "  ", "\n", ", ", ": ", " - ", " / "])


@st.composite
def ad_texts(draw: st.DrawFn) -> str:
    segments = draw(st.lists(st.one_of(FILLER, FILLER, PHONES, EMAILS, LINKS), max_size=14))
    return "".join(segment + draw(SEPARATORS) for segment in segments)


def _digits_of(text: str) -> str:
    return re.sub(r"\D", "", unicodedata.normalize("NFKC", text))


@settings(max_examples=150, deadline=None)
@given(ad_texts())
def test_after_masking_no_number_or_address_is_left_and_masking_again_changes_nothing(
    text: str,
) -> None:
    masked, counts = mask_contact_details(text, "NL")
    assert extract_phones(masked, "NL") == []
    assert not EMAIL.search(masked)
    # Fiction numbers all contain one of these runs; none may survive in any script.
    assert "7946" not in _digits_of(masked) and "491570" not in _digits_of(masked)
    assert mask_contact_details(masked, "NL") == (masked, dict.fromkeys(counts, 0))


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="0123456789 +-().,/Oo@wa.me:twofive", max_size=60) | st.text(max_size=80))
def test_masking_any_text_settles_after_one_call(text: str) -> None:
    masked, counts = mask_contact_details(text, "NL")
    assert extract_phones(masked, "NL") == []
    assert mask_contact_details(masked, "NL") == (masked, dict.fromkeys(counts, 0))


# --- the whole ad, field by field ---------------------------------------------------------

TITLE = "Lena – nieuw hier, bel +44 20 7946 0123"
TEXT = (
    "Hoi, ik ben Lena. Bel +44 (0)20 7946 0123 of app wa.me/61491570157.\n\n"
    "Mail lena.test@example.nl of kijk op https://example.org/lena."
)
CITY = "Zwolle"
POSTED = datetime(2026, 11, 3, 0, 30, tzinfo=CET)  # 2 Nov 23:30 UTC
PHONES_CAPTURED = (
    CapturedPhone("+442079460123", "GB", "+44 20 7946 0123"),
    CapturedPhone("+442079460123", "GB", "+44 (0)20 7946 0123"),
    CapturedPhone("+61491570157", "AU", "wa.me/61491570157"),
)
IMAGE_URL = "http://127.0.0.1:8765/images/abc123.jpg"
REVIEW = "Leuk contact, vriendelijk en op tijd."


def synthetic_page() -> bytes:
    """An ad page in the demo site's markup, with the places that repeat fields elsewhere."""
    iso = POSTED.isoformat()
    ld_json = json.dumps({"name": TITLE, "areaServed": CITY, "datePosted": iso, "image": IMAGE_URL})
    return f"""<!doctype html>
<html lang="nl"><head><meta charset="utf-8">
<title>{TITLE} | Synthetic listings</title>
<meta property="og:image" content="{IMAGE_URL}">
<meta name="description" content="Nieuw in {CITY}">
<script type="application/ld+json">{ld_json}</script>
</head><body><!-- ad 4711, {CITY}, 3 Nov 2026 -->
<main><article class="ad">
<h1 class="ad-title">{TITLE}</h1>
<div class="ad-text"><p>{TEXT}</p></div>
<span class="ad-city">{CITY}</span>
<time class="ad-posted" datetime="{iso}">3 Nov 2026, 00:30</time>
<span class="ad-phone">+44 20 7946 0123</span>
<div class="ad-images"><img class="ad-image" src="{IMAGE_URL}" alt="photo"></div>
</article>
<section class="reviews"><div class="review"><span class="review-author">visitor_nl</span>
<p>{REVIEW}</p></div></section></main>
<footer class="site-footer">Help desk: {HELP_DESK_PHONE_DISPLAY} (synthetic).</footer>
</body></html>
""".encode()


# As the bundled demo profile selects them (crawler/site_profiles/demo.yaml), each prefixed
# with the container, as the spider passes them.
DEMO_SELECTORS: dict[str, tuple[str, ...]] = {
    name: (f"article.ad {selector}",)
    for name, selector in {
        "title": "h1.ad-title ::text",
        "text": "div.ad-text ::text",
        "city": "span.ad-city ::text",
        "posted_at": "time.ad-posted::attr(datetime)",
        "phones": "span.ad-phone ::text",
        "images": "div.ad-images img::attr(src)",
    }.items()
}
THIRD_PARTY = ("section.reviews",)


@pytest.fixture(scope="module")
def jpeg_bytes() -> bytes:
    return jpeg_with_metadata(picture())


@pytest.fixture
def ad(jpeg_bytes: bytes) -> CapturedAd:
    return CapturedAd(
        url="http://127.0.0.1:8765/ad/a4711",
        title=TITLE,
        text=TEXT,
        city=CITY,
        posted_at=POSTED,
        phones=PHONES_CAPTURED,
        images=(captured_image(jpeg_bytes, IMAGE_URL),),
        raw_page=synthetic_page(),
        page_encoding="utf-8",
        field_selectors=DEMO_SELECTORS,
        third_party_selectors=THIRD_PARTY,
    )


def run(field_rules: FieldRules, ad: CapturedAd, key: bytes = KEY) -> Any:
    return minimise_ad(field_rules, ad, pseudonym_key=key, default_region="NL")


def test_keep_all_keeps_the_fields_and_cuts_only_reviews(ad: CapturedAd) -> None:
    minimised, record = run(FieldRules(), ad)
    assert (minimised.url, minimised.title, minimised.text) == (ad.url, TITLE, TEXT)
    assert (minimised.city, minimised.posted_at, minimised.phones) == (CITY, POSTED, ad.phones)
    assert minimised.raw_page is not None and b'class="ad-city"' in minimised.raw_page
    assert REVIEW.encode() not in minimised.raw_page
    # Nothing is cut, so scripts and comments stay (they repeat only kept fields).
    assert b"application/ld+json" in minimised.raw_page
    assert record.dropped == ()
    assert dict(record.counts) == {
        "images.metadata_stripped": 1,
        "raw_page.third_party_elements_removed": 1,
        "raw_page.field_elements_removed": 0,
    }


def test_the_minimised_ad_and_its_record_pickle_for_the_store_process(ad: CapturedAd) -> None:
    # The crawler's store stage runs in a process of its own: both cross by pickle.
    minimised, record = run(FieldRules(), ad)
    copy, record_copy = pickle.loads(pickle.dumps((minimised, record)))
    assert copy == minimised
    assert record_copy == record and record_copy.as_dict() == record.as_dict()
    with pytest.raises(TypeError):
        record_copy.counts["images.metadata_stripped"] = 2  # type: ignore[index]


@pytest.mark.parametrize("field", ["title", "text"])
def test_title_and_text_mask_replaces_contact_details(ad: CapturedAd, field: str) -> None:
    field_rules = rules(**{field: "mask"}, raw_page="drop")
    minimised, record = run(field_rules, ad)
    expected = {
        "title": "Lena – nieuw hier, bel [phone]",
        "text": "Hoi, ik ben Lena. Bel [phone] of app [phone].\n\nMail [e-mail] of kijk op [link].",
    }[field]
    assert getattr(minimised, field) == expected
    other = "text" if field == "title" else "title"
    assert getattr(minimised, other) == getattr(ad, other)
    wanted = {"title": (1, 0, 0), "text": (2, 1, 1)}[field]
    assert tuple(record.counts[f"{field}.{k}_masked"] for k in ("phones", "emails", "links")) == (
        wanted
    )


@pytest.mark.parametrize("field", ["title", "text"])
def test_title_and_text_drop(ad: CapturedAd, field: str) -> None:
    minimised, record = run(rules(**{field: "drop"}, raw_page="drop"), ad)
    assert getattr(minimised, field) is None
    assert field in record.dropped


def test_mask_also_catches_the_written_forms_the_crawler_captured(ad: CapturedAd) -> None:
    # Spelled out without a country code, the number is not one to a Dutch reader; the
    # crawler read it from the phone element with the site's region, so it is still masked.
    words = "two zero seven nine four six zero one two three"
    capture = dataclasses.replace(
        ad,
        text=f"Bel {words} vandaag",
        phones=(CapturedPhone("+442079460123", "GB", words),),
        raw_page=None,
    )
    assert mask_contact_details(capture.text, "NL")[0] == capture.text
    minimised, record = run(
        rules(text="mask", phones="pseudonymise", title="mask", raw_page="drop"), capture
    )
    assert minimised.text == "Bel [phone] vandaag"
    assert record.counts["text.phones_masked"] == 1


def test_city_keep_or_drop(ad: CapturedAd) -> None:
    assert run(rules(city="keep"), ad)[0].city == CITY
    minimised, record = run(rules(city="drop"), ad)
    assert minimised.city is None and "city" in record.dropped


def test_posted_at_keep_mask_drop(ad: CapturedAd) -> None:
    assert run(rules(posted_at="keep"), ad)[0].posted_at == POSTED
    masked = run(rules(posted_at="mask"), ad)[0].posted_at
    # 00:30 CET on 3 November is 23:30 UTC on 2 November: the UTC date counts.
    assert masked == datetime(2026, 11, 2, tzinfo=UTC)
    assert masked.tzinfo is UTC
    minimised, record = run(rules(posted_at="drop"), ad)
    assert minimised.posted_at is None and "posted_at" in record.dropped


def test_phones_pseudonymise_replaces_number_and_written_form(ad: CapturedAd) -> None:
    field_rules = rules(title="mask", text="mask", phones="pseudonymise", raw_page="drop")
    minimised, record = run(field_rules, ad)
    uk, au = pseudonymise_phone(KEY, "+442079460123"), pseudonymise_phone(KEY, "+61491570157")
    # Two written forms of one number are one pseudonym.
    assert minimised.phones == (CapturedPhone(uk, "GB", uk), CapturedPhone(au, "AU", au))
    assert record.counts["phones.pseudonymised"] == 3
    # The same number in another ad of the case links; in another case it does not.
    again = run(field_rules, dataclasses.replace(ad, url="http://127.0.0.1:8765/ad/b2"))[0]
    assert again.phones == minimised.phones
    elsewhere = run(field_rules, ad, key=OTHER_CASE_KEY)[0]
    assert not {p.e164 for p in elsewhere.phones} & {p.e164 for p in minimised.phones}


def test_phones_drop(ad: CapturedAd) -> None:
    minimised, record = run(rules(title="mask", text="mask", phones="drop", raw_page="drop"), ad)
    assert minimised.phones == ()
    assert "phones" in record.dropped and record.counts["phones.dropped"] == 3


def test_images_keep_is_re_encoded_without_metadata(ad: CapturedAd) -> None:
    minimised, record = run(rules(raw_page="drop"), ad)
    (image,) = minimised.images
    assert image.data is not None and image.data != ad.images[0].data
    assert image.media_type == "image/jpeg"
    assert_no_metadata(image.data, "image/jpeg")
    original = ad.images[0]
    assert (image.url, image.phash, image.variants) == (
        original.url,
        original.phash,
        original.variants,
    )
    assert (image.width, image.height) == (original.width, original.height) == (240, 160)
    assert record.counts["images.metadata_stripped"] == 1


def test_images_mask_keeps_only_the_hashes(ad: CapturedAd) -> None:
    minimised, record = run(rules(images="mask", raw_page="drop"), ad)
    (image,) = minimised.images
    original = ad.images[0]
    assert image.data is None and image.media_type is None
    assert (image.phash, image.variants) == (original.phash, original.variants)
    assert record.counts["images.pixels_removed"] == 1


def test_images_drop(ad: CapturedAd) -> None:
    minimised, record = run(rules(images="drop", raw_page="drop"), ad)
    assert minimised.images == () and "images" in record.dropped


def test_an_image_that_cannot_be_decoded_refuses_the_ad_rather_than_keeping_its_bytes(
    ad: CapturedAd,
) -> None:
    bad = dataclasses.replace(ad.images[0], data=b"not an image at all")
    capture = dataclasses.replace(ad, images=(ad.images[0], bad))
    with pytest.raises(ImageNotReencodable, match="image 2 of the ad"):
        run(rules(raw_page="drop"), capture)
    # Masked images are never decoded: only their hashes are kept.
    minimised, _ = run(rules(images="mask", raw_page="drop"), capture)
    assert [i.data for i in minimised.images] == [None, None]


def test_raw_page_drop(ad: CapturedAd) -> None:
    minimised, record = run(rules(raw_page="drop"), ad)
    assert minimised.raw_page is None and record.dropped == ("raw_page",)


def test_everything_masked_or_dropped_appears_nowhere(ad: CapturedAd, jpeg_bytes: bytes) -> None:
    field_rules = rules(
        title="mask",
        text="mask",
        city="drop",
        posted_at="mask",
        phones="pseudonymise",
        images="mask",
        raw_page="drop",
    )
    minimised, record = run(field_rules, ad)
    assert_nowhere(
        minimised,
        *(p.raw for p in PHONES_CAPTURED),
        *(p.e164 for p in PHONES_CAPTURED),
        "lena.test@example.nl",
        "https://example.org/lena",
        "example.org",
        CITY,
        POSTED.isoformat(),
        POSTED.astimezone(UTC).isoformat(),
        jpeg_bytes,
        *MARKERS,
    )
    for text in (minimised.title, minimised.text):
        assert text is not None and "7946" not in _digits_of(text)
        assert "491570" not in _digits_of(text)
    assert set(record.dropped) == {"city", "raw_page"}


def test_a_kept_page_loses_what_is_not_kept_and_whatever_repeats_it(
    ad: CapturedAd, jpeg_bytes: bytes
) -> None:
    field_rules = rules(city="drop", posted_at="mask", images="drop")
    minimised, record = run(field_rules, ad)
    page = minimised.raw_page
    assert page is not None
    assert_nowhere(
        minimised,
        CITY,
        POSTED.isoformat(),
        "3 Nov 2026",
        IMAGE_URL,
        "abc123",
        REVIEW,
        "visitor_nl",
        jpeg_bytes,
        *MARKERS,
    )
    tree = lxml.html.document_fromstring(page)
    # The kept fields, the site's own chrome and the <title> are all still there.
    assert tree.cssselect("h1.ad-title")[0].text_content() == TITLE
    assert tree.cssselect("div.ad-text")[0].text_content() == TEXT
    assert tree.cssselect("span.ad-phone")[0].text_content() == "+44 20 7946 0123"
    assert tree.cssselect("div.ad-images")  # the image container; its images are gone
    assert TITLE in tree.findtext(".//title")
    assert HELP_DESK_PHONE_DISPLAY in tree.cssselect("footer")[0].text_content()
    assert page.startswith(b"<!DOCTYPE html>") and b'<meta charset="utf-8">' in page
    assert dict(record.counts) == {
        "raw_page.third_party_elements_removed": 1,
        "raw_page.field_elements_removed": 3,
        "raw_page.scripts_removed": 1,
        "raw_page.comments_removed": 1,
        "raw_page.meta_elements_removed": 2,
        "images.dropped": 1,
    }
    assert set(record.dropped) == {"city", "images"}


def test_a_page_that_cannot_be_parsed_is_not_kept(ad: CapturedAd) -> None:
    for capture in (
        dataclasses.replace(ad, raw_page=b"   \n"),
        dataclasses.replace(ad, page_encoding="x-no-such-encoding"),
    ):
        minimised, record = run(FieldRules(), capture)
        assert minimised.raw_page is None
        assert record.counts["raw_page.unparsable"] == 1
        assert "raw_page" in record.dropped


def test_a_page_is_not_kept_when_a_field_it_must_lose_has_no_selector(ad: CapturedAd) -> None:
    selectors = {k: v for k, v in DEMO_SELECTORS.items() if k != "city"}
    capture = dataclasses.replace(ad, field_selectors=selectors)
    minimised, record = run(rules(city="drop"), capture)
    assert minimised.raw_page is None
    assert record.counts["raw_page.fields_without_selectors"] == 1
    # A field with nothing captured needs no selector.
    minimised, _ = run(rules(city="drop"), dataclasses.replace(capture, city=None))
    assert minimised.raw_page is not None


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"phones": "pseudonymise"}, ValueError, "needs title: mask or drop"),
        ({"title": "mask", "text": "mask"}, ValueError, "raw_page: keep needs title: keep"),
        ({"city": "mask"}, MinimisationError, "city: the rule 'mask' is not possible"),
        ({"raw_page": "mask"}, MinimisationError, "raw_page: the rule 'mask'"),
    ],
)
def test_impossible_or_inconsistent_rules_are_refused(
    ad: CapturedAd, overrides: dict[str, str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        run(rules(**overrides), ad)


def test_a_misspelt_selector_name_or_a_naive_time_is_refused(ad: CapturedAd) -> None:
    selectors = {**DEMO_SELECTORS, "phone": ("span.ad-phone",)}
    with pytest.raises(MinimisationError, match=r"unknown field.*phone"):
        run(FieldRules(), dataclasses.replace(ad, field_selectors=selectors))
    with pytest.raises(MinimisationError, match="timezone-aware"):
        run(FieldRules(), dataclasses.replace(ad, posted_at=datetime(2026, 11, 3, 12, 0)))


def test_the_record_holds_names_and_counts_only(ad: CapturedAd) -> None:
    field_rules = rules(
        title="mask", text="mask", phones="pseudonymise", city="drop", raw_page="drop"
    )
    _, record = run(field_rules, ad)
    serialised = json.dumps(record.as_dict())
    assert json.loads(serialised) == {
        "rules": {
            "title": "mask",
            "text": "mask",
            "city": "drop",
            "posted_at": "keep",
            "phones": "pseudonymise",
            "images": "keep",
            "raw_page": "drop",
        },
        "dropped": ["city", "raw_page"],
        "counts": {
            "title.phones_masked": 1,
            "title.emails_masked": 0,
            "title.links_masked": 0,
            "text.phones_masked": 2,
            "text.emails_masked": 1,
            "text.links_masked": 1,
            "phones.pseudonymised": 3,
            "images.metadata_stripped": 1,
        },
    }
    for content in ("Lena", "7946", "491570", CITY, "example", "a4711", "abc123"):
        assert content not in serialised
    with pytest.raises(TypeError):
        record.counts["title.phones_masked"] = 0  # type: ignore[index]


def test_nothing_of_the_ad_reaches_any_log(
    ad: CapturedAd, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the libraries' included
    run(rules(city="drop", posted_at="mask", images="keep"), ad)
    run(rules(title="mask", text="mask", phones="pseudonymise", raw_page="drop"), ad)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for content in ("Lena", "7946", "491570", CITY, "example", "a4711", REVIEW):
        assert content not in logged


# --- pages: the demo site's real HTML -----------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoServer]:
    with running_demo_server(seed=7, n_ads=12) as server:
        yield server


def fetch(url: str) -> tuple[bytes, str]:
    """GET on loopback, never through a proxy from the environment."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        return response.read(), response.headers.get_content_charset() or "utf-8"


def demo_capture(server: DemoServer, *, javascript: bool = False) -> CapturedAd:
    """The first (static or scripted) demo ad as the crawler captures it."""
    ad = next(a for a in server.content.ads if a.requires_js == javascript)
    body, encoding = fetch(f"{server.base_url}/ad/{ad.ad_id}")
    found: dict[str, CapturedPhone] = {}
    for source in (ad.phone_display, ad.title, ad.text):
        for mention in extract_phones(source, "NL"):
            found.setdefault(
                mention.e164, CapturedPhone(mention.e164, mention.region or "", mention.raw)
            )
    return CapturedAd(
        url=f"{server.base_url}/ad/{ad.ad_id}",
        title=ad.title,
        text=ad.text,
        city=ad.city,
        posted_at=ad.posted_at,
        phones=tuple(found.values()),
        images=tuple(
            captured_image(server.content.images[name], f"{server.base_url}/images/{name}")
            for name in ad.image_names
        ),
        raw_page=body,
        page_encoding=encoding,
        field_selectors=DEMO_SELECTORS,
        third_party_selectors=THIRD_PARTY,
    )


def elements(page: bytes) -> Any:
    return lxml.html.document_fromstring(page)


def test_demo_page_kept_whole_but_for_its_reviews(demo: DemoServer) -> None:
    capture = demo_capture(demo)
    assert capture.raw_page is not None
    minimised, record = run(FieldRules(), capture)
    assert minimised.raw_page is not None
    before, after = elements(capture.raw_page), elements(minimised.raw_page)
    (reviews,) = before.cssselect("section.reviews")
    reviewers = [a.text_content() for a in before.cssselect(".review-author")]
    assert reviewers  # the demo ad does have reviews
    assert len(after.xpath("//*")) == len(before.xpath("//*")) - len(
        reviews.xpath("descendant-or-self::*")
    )
    assert not after.cssselect("section.reviews")
    assert_nowhere(minimised, *reviewers)
    for selector in ("h1.ad-title", "div.ad-text", "span.ad-city", "time.ad-posted", "footer"):
        assert (
            after.cssselect(selector)[0].text_content()
            == before.cssselect(selector)[0].text_content()
        )
    assert record.counts["raw_page.third_party_elements_removed"] == 1


def test_demo_page_loses_the_elements_of_fields_not_kept(demo: DemoServer) -> None:
    capture = demo_capture(demo)
    assert capture.raw_page is not None and capture.posted_at is not None
    minimised, record = run(rules(city="drop", posted_at="mask", images="drop"), capture)
    assert minimised.raw_page is not None
    before, after = elements(capture.raw_page), elements(minimised.raw_page)
    gone = [*before.cssselect("section.reviews *"), *before.cssselect("section.reviews")]
    gone += [*before.cssselect("span.ad-city"), *before.cssselect("time.ad-posted")]
    gone += before.cssselect("div.ad-images img")
    assert len(after.xpath("//*")) == len(before.xpath("//*")) - len(gone)
    for selector in ("section.reviews", "span.ad-city", "time.ad-posted", "div.ad-images img"):
        assert not after.cssselect(selector)
    assert_nowhere(minimised, capture.posted_at.isoformat(), *(i.url for i in capture.images))
    assert_nowhere(minimised, *(i.url.split("/")[-1] for i in capture.images))
    assert after.cssselect("h1.ad-title")[0].text_content() == capture.title
    assert capture.phones[0].raw in after.cssselect("span.ad-phone")[0].text_content()
    assert HELP_DESK_PHONE_DISPLAY in after.cssselect("footer")[0].text_content()
    assert record.counts["raw_page.field_elements_removed"] == 2 + len(capture.images)


def test_demo_script_page_loses_the_script_that_carries_the_fields(demo: DemoServer) -> None:
    capture = demo_capture(demo, javascript=True)
    assert capture.raw_page is not None and capture.posted_at is not None
    assert capture.posted_at.isoformat().encode() in capture.raw_page  # inside the script
    minimised, record = run(rules(posted_at="mask"), capture)
    assert minimised.raw_page is not None
    assert_nowhere(minimised, capture.posted_at.isoformat())
    after = elements(minimised.raw_page)
    assert not after.xpath("//script") and after.cssselect("article.ad")
    # The script that renders the ad, the third party's tracker and its beacon.
    assert record.counts["raw_page.scripts_removed"] == 3
    assert record.counts["raw_page.field_elements_removed"] == 0  # the article is empty


# --- cut_page on its own ------------------------------------------------------------------


def test_cut_page_ignores_pseudo_elements_and_counts_each_element_once() -> None:
    page = synthetic_page()
    selectors = [
        "h1.ad-title ::text",
        "div.ad-images img::attr(src)",
        "article.ad span.ad-city::text, time.ad-posted::attr(datetime)",
        "section.reviews",
        "section.reviews p",  # inside an element already cut
    ]
    cut, removed = cut_page(page, "utf-8", selectors)
    assert removed == 5
    tree = elements(cut)
    assert not tree.cssselect("h1.ad-title, div.ad-images img, span.ad-city, time, section")
    assert tree.cssselect("div.ad-text")[0].text_content() == TEXT
    # Cutting leaves scripts and comments alone; minimise_ad decides about those.
    assert tree.xpath("//script") and tree.xpath("//comment()")


def test_cut_page_keeps_the_text_after_a_cut_element() -> None:
    cut, removed = cut_page(b"<p>before <span>cut</span> after</p>", None, ["span"])
    assert removed == 1 and b"<p>before  after</p>" in cut


def test_cut_page_writes_the_page_in_its_own_encoding() -> None:
    page = (
        '<html><head><meta charset="windows-1252"><title>Café</title></head>'
        '<body><p class="keep">Crème brûlée €</p><p class="cut">Zwolle</p></body></html>'
    ).encode("cp1252")
    cut, removed = cut_page(page, "cp1252", ["p.cut"])
    assert removed == 1
    assert "Crème brûlée €".encode("cp1252") in cut and b"Zwolle" not in cut
    assert b'charset="windows-1252"' in cut


def test_cut_page_reads_past_a_byte_that_is_invalid_in_the_encoding() -> None:
    # libxml2 would stop reading at the bad byte and lose the rest of the page.
    cut, _ = cut_page(
        b"<p>ok \xff</p><p>still here</p><div class='x'>cut</div>", "utf-8", ["div.x"]
    )
    assert b"still here" in cut and b"cut" not in cut


def test_cut_page_selecting_the_whole_page_leaves_nothing() -> None:
    cut, removed = cut_page(synthetic_page(), "utf-8", ["html"])
    assert removed == 1
    assert elements(cut).text_content() == ""


@pytest.mark.parametrize("selector", ["h1[", "::text", "a::attr(href),"])
def test_cut_page_refuses_a_selector_that_selects_no_element(selector: str) -> None:
    with pytest.raises(MinimisationError, match="selector"):
        cut_page(synthetic_page(), "utf-8", [selector])


@pytest.mark.parametrize(("raw", "encoding"), [(b"", None), (b"<p>x</p>", "no-such-codec")])
def test_cut_page_refuses_what_it_cannot_parse(raw: bytes, encoding: str | None) -> None:
    with pytest.raises(PageNotParsable):
        cut_page(raw, encoding, [])
