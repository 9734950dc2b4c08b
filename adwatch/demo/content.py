"""Deterministic synthetic content for the bundled demo ad site.

Everything here is generated from a seed out of ``adwatch.synthetic``: fictional names,
non-explicit ad texts, abstract images (colour fields and shapes, never a person) and phone
numbers drawn only from ranges that regulators reserve for fiction. The same seed always
yields the same ads and the same image bytes, so tests and benchmarks can rely on the
ground truth (``DemoAd.advertiser_id``).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Literal

from PIL import Image

from adwatch.synthetic.names import FIRST_NAMES
from adwatch.synthetic.phones import AU_FICTION_MOBILES, LONDON_DRAMA, SHARED_LINES, format_phone
from adwatch.synthetic.photos import (
    CROP_FRACTION,
    abstract_picture,
    crop_sides,
    decode,
    jpeg_bytes,
    mirror,
    rescale,
)
from adwatch.synthetic.places import CITY_NAMES
from adwatch.synthetic.vocabulary import (
    CONTACT_HINTS,
    CONTACT_ONE,
    GENERIC_SENTENCES,
    OPENINGS,
    TITLES,
    personal_sentence,
)

__all__ = [
    "AGENCY_PHONE_DISPLAY",
    "AGENCY_PHONE_E164",
    "BAD_IMAGE_BYTES",
    "BAD_IMAGE_NAME",
    "BASE_DATE",
    "FAULT_AD_IDS",
    "FAULT_BAD_IMAGE",
    "FAULT_HTTP_500",
    "FAULT_MALFORMED",
    "HELP_DESK_PHONE_DISPLAY",
    "HELP_DESK_PHONE_E164",
    "DemoAd",
    "DemoReview",
    "DemoSiteContent",
    "display_phone",
    "generate_demo_content",
    "human_date",
]

CET = timezone(timedelta(hours=1), "CET")
BASE_DATE = datetime(2026, 11, 1, 0, 0, tzinfo=CET)

# The site's help desk and a booking office several advertisers print beside their own
# number (a hub, which the matcher must show but never link by): shared lines of the
# fiction ranges, never an advertiser's own.
HELP_DESK_PHONE_E164 = SHARED_LINES[0]
AGENCY_PHONE_E164 = SHARED_LINES[1]
# How advertisers write their number here (``style`` of :func:`display_phone`).
_DISPLAY_FORMS = ("intl_spaced", "trunk_zero", "dashed", "idd_00", "compact")
HELP_DESK_PHONE_DISPLAY = format_phone(HELP_DESK_PHONE_E164, "intl_spaced")
AGENCY_PHONE_DISPLAY = format_phone(AGENCY_PHONE_E164, "intl_spaced")

_AGENCY_LINES = {
    "en": "Bookings also via our office: {phone}.",
    "nl": "Boekingen ook via ons kantoor: {phone}.",
}
# Share of advertisers with several ads who print the office's number.
AGENCY_SHARE = 0.6
# Advertisers' numbers: the London drama range less its shared lines (about one advertiser
# in six gets one of the ACMA fiction mobiles instead).
_UK_ADVERTISER_PHONES = tuple(n for n in LONDON_DRAMA if n not in SHARED_LINES)

FAULT_MALFORMED = "f-malformed"
FAULT_BAD_IMAGE = "f-badimage"
FAULT_HTTP_500 = "f-error"
FAULT_AD_IDS: tuple[str, ...] = (FAULT_MALFORMED, FAULT_BAD_IMAGE, FAULT_HTTP_500)
BAD_IMAGE_NAME = "f-badimage.jpg"
BAD_IMAGE_BYTES = b"This is not a JPEG image; it is a synthetic fault of the adwatch demo site.\n"

_MAX_IMAGE_BYTES = 40_000
VariantKind = Literal["resized", "recompressed", "mirrored", "cropped"]
_VARIANT_KINDS: tuple[VariantKind, ...] = ("resized", "recompressed")
# Half the copies are mirrored or cropped instead (a separate random stream decides, so
# the rest of the content is as before): re-posters flip and trim photos.
_REFRAMED: dict[VariantKind, VariantKind] = {"resized": "cropped", "recompressed": "mirrored"}
_COPY_KINDS: frozenset[str] = frozenset(_VARIANT_KINDS) | frozenset(_REFRAMED.values())

Language = Literal["nl", "en", "mixed"]

# Sentences that carry trafficking indicators of the indicator model (working with a
# friend, round-the-clock availability, pressure wording, just arrived). Most advertisers
# with several ads use three of them, so that the crawler's indicator filter keeps their ads
# and leaves most one-off ads behind.
_INDICATIVE: dict[str, tuple[str, ...]] = {
    "en": (
        "I work together with my friend.",
        "Available 24/7, also on Sunday.",
        "No rush with me.",
        "Just arrived, first week in town.",
    ),
    "nl": (
        "Ik werk samen met mijn vriendin.",
        "24/7 bereikbaar, ook op zondag.",
        "Geen haast bij mij.",
        "Net aangekomen, eerste week in de stad.",
    ),
}
# Share of advertisers with several ads whose ads carry indicators.
INDICATIVE_SHARE = 0.85

# How an ad ends: with its number, or pointing to the number shown beside the text.
_CLOSINGS: dict[str, tuple[str, ...]] = {
    lang: CONTACT_ONE[lang] + CONTACT_HINTS[lang] for lang in ("nl", "en")
}

_REVIEW_AUTHORS: tuple[str, ...] = (
    "Guest4821",
    "Jan_R",
    "travelman",
    "Pieter77",
    "m.b.",
    "anon_user",
    "Kees-U",
    "nightowl",
    "R.v.D.",
    "visitor_nl",
)

_REVIEW_TEXTS: tuple[str, ...] = (
    "Friendly and punctual, good communication.",
    "As advertised, would recommend.",
    "Leuk contact, vriendelijk en op tijd.",
    "Reageerde snel op WhatsApp.",
    "Nice conversation, relaxed atmosphere.",
    "Prima afspraak, aanrader.",
    "Hard to reach by phone, but friendly.",
    "Locatie was makkelijk te vinden.",
)

_MONTHS: tuple[str, ...] = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


@dataclass(frozen=True, slots=True)
class DemoAd:
    """One synthetic ad as served on ``/ad/{ad_id}``."""

    ad_id: str
    advertiser_id: str  # ground truth: who is behind it (for tests and benchmarks only)
    title: str
    text: str  # paragraphs separated by a blank line
    city: str
    posted_at: datetime
    phone_display: str
    phone_e164: str
    image_names: tuple[str, ...]
    requires_js: bool


@dataclass(frozen=True, slots=True)
class DemoReview:
    """A third-party review shown under an ad (content the crawler must not keep)."""

    author: str
    text: str


@dataclass(frozen=True, slots=True)
class DemoSiteContent:
    """All content of one demo site, with its ground truth.

    ``images`` maps image names to JPEG bytes; they are rendered on first access and cached,
    and the bytes depend only on the seed and the name. With ``faults`` it also holds
    :data:`BAD_IMAGE_NAME`, whose bytes are deliberately not an image.
    """

    seed: int
    ads: tuple[DemoAd, ...]
    images: Mapping[str, bytes] = field(repr=False, hash=False)
    faults: bool
    # Extra ground truth beyond the ads themselves.
    reviews: Mapping[str, tuple[DemoReview, ...]] = field(
        default_factory=dict, repr=False, hash=False
    )
    image_variant_of: Mapping[str, str] = field(default_factory=dict, repr=False, hash=False)
    # How each copy in ``image_variant_of`` was made (resized, recompressed, mirrored, cropped).
    image_copy_kind: Mapping[str, str] = field(default_factory=dict, repr=False, hash=False)

    def ad(self, ad_id: str) -> DemoAd | None:
        """The ad with ``ad_id``, or ``None``."""
        for ad in self.ads:
            if ad.ad_id == ad_id:
                return ad
        return None

    @property
    def fault_ads(self) -> tuple[DemoAd, ...]:
        """The deliberately broken ads (empty unless ``faults``)."""
        return tuple(ad for ad in self.ads if ad.ad_id in FAULT_AD_IDS)

    @property
    def static_ads(self) -> tuple[DemoAd, ...]:
        """Healthy ads whose content is in the HTML itself, newest first (as listed)."""
        healthy = (ad for ad in self.ads if not ad.requires_js and ad.ad_id not in FAULT_AD_IDS)
        return tuple(sorted(healthy, key=lambda ad: (ad.posted_at, ad.ad_id), reverse=True))

    @property
    def js_ads(self) -> tuple[DemoAd, ...]:
        """Ads whose content only appears after JavaScript runs, newest first."""
        scripted = (ad for ad in self.ads if ad.requires_js)
        return tuple(sorted(scripted, key=lambda ad: (ad.posted_at, ad.ad_id), reverse=True))

    def listed_ads(self, *, javascript: bool = False) -> tuple[DemoAd, ...]:
        """The order of ``/ads`` (faults first, so they land on page 1) or of ``/ads/js``."""
        if javascript:
            return self.js_ads
        return self.fault_ads + self.static_ads


def display_phone(e164: str, style: int) -> str:
    """Write a fiction number the way an advertiser here might (``style`` picks one of five
    international forms: the site is Dutch, and a national form would read as Dutch)."""
    return format_phone(e164, _DISPLAY_FORMS[style % len(_DISPLAY_FORMS)])


def human_date(moment: datetime) -> str:
    """A locale-independent display date such as ``3 Nov 2026, 14:05``."""
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}, {moment:%H:%M}"


# --- images -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ImageRecipe:
    kind: Literal["photo", "raw"] | VariantKind
    key: str  # seeds the rendering of a photo; names the original for variants
    raw: bytes = b""


# Photos on real ad sites often still carry the camera's metadata, location included; the
# demo's do too (all synthetic), so that the crawler's stripping of it is exercised.
DEMO_CAMERA = "adwatch demo camera"
DEMO_PHOTO_COMMENT = b"synthetic adwatch demo photo"
DEMO_GPS = {1: "N", 2: (52.0, 5.0, 7.5), 3: "E", 4: (5.0, 7.0, 1.25)}


def _camera_metadata() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = DEMO_CAMERA  # Make
    exif[0x0110] = "synthetic"  # Model
    exif[0x8825] = DEMO_GPS  # GPSInfo
    return exif.tobytes()


def _jpeg(picture: Image.Image, quality: int) -> bytes:
    for q in (quality, quality - 15, quality - 30):
        data = jpeg_bytes(
            picture, q, optimize=True, exif=_camera_metadata(), comment=DEMO_PHOTO_COMMENT
        )
        if len(data) <= _MAX_IMAGE_BYTES:
            break
    return data


class _LazyImages(Mapping[str, bytes]):
    """Image bytes rendered on first access: large sites start instantly, bytes stay stable."""

    def __init__(self, recipes: dict[str, _ImageRecipe]) -> None:
        self._recipes = recipes
        self._cache: dict[str, bytes] = {}
        self._lock = threading.Lock()  # the demo server reads from several threads

    def __getitem__(self, name: str) -> bytes:
        with self._lock:
            return self._get(name)

    def _get(self, name: str) -> bytes:
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        recipe = self._recipes[name]
        if recipe.kind == "raw":
            data = recipe.raw
        elif recipe.kind == "photo":
            data = _jpeg(abstract_picture(recipe.key), 82)
        else:
            # A copy is made from the published photo, so its JPEG losses add up.
            original = decode(self._get(recipe.key))
            if recipe.kind == "resized":
                data = _jpeg(rescale(original, 7 / 8), 82)
            elif recipe.kind == "mirrored":
                data = _jpeg(mirror(original), 82)
            elif recipe.kind == "cropped":
                data = _jpeg(crop_sides(original, CROP_FRACTION), 82)
            else:
                data = _jpeg(original, 55)
        self._cache[name] = data
        return data

    def __iter__(self) -> Iterator[str]:
        return iter(self._recipes)

    def __len__(self) -> int:
        return len(self._recipes)

    def __contains__(self, name: object) -> bool:
        return name in self._recipes


# --- ads ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Advertiser:
    advertiser_id: str
    names: tuple[str, ...]  # first is the usual name, others are aliases
    language: Language
    phones: tuple[str, ...]
    phone_style: int
    photos: list[str]
    body: tuple[str, ...]  # the sentences this advertiser keeps reusing
    n_ads: int
    agency: bool = False  # prints the booking office's number too


class _Names:
    """Hands out unique, opaque image names such as ``3fa81c09.jpg``."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def new(self) -> str:
        while True:
            name = f"{self._rng.getrandbits(32):08x}.jpg"
            if name not in self._used:
                self._used.add(name)
                return name


def _pick_language(rng: random.Random, language: Language) -> str:
    if language == "mixed":
        return rng.choice(("nl", "en"))
    return language


def _ad_text(rng: random.Random, adv: _Advertiser, city: str, phone: str) -> str:
    """Opening, the advertiser's recurring sentences (slightly shuffled), closing."""
    lang = _pick_language(rng, adv.language)
    opening = rng.choice(OPENINGS[lang]).format(city=city)
    body = list(adv.body)
    rng.shuffle(body)
    if len(body) > 2 and rng.random() < 0.5:
        body.pop()
    closing_lang = _pick_language(rng, adv.language)
    closing = rng.choice(_CLOSINGS[closing_lang]).format(phone=phone)
    return f"{opening} {' '.join(body)}\n\n{closing}"


def _with_agency(text: str, adv: _Advertiser, lang: str) -> str:
    """The ad's text with the booking office's line, for advertisers who print it."""
    if not adv.agency:
        return text
    return f"{text}\n\n{_AGENCY_LINES[lang].format(phone=AGENCY_PHONE_DISPLAY)}"


def _reviews(rng: random.Random) -> tuple[DemoReview, ...]:
    count = rng.choice((0, 1, 1, 2, 3))
    return tuple(
        DemoReview(rng.choice(_REVIEW_AUTHORS), rng.choice(_REVIEW_TEXTS)) for _ in range(count)
    )


def _advertisers(
    rng: random.Random, n_ads: int, names: _Names, recipes: dict[str, _ImageRecipe], seed: int
) -> list[_Advertiser]:
    """Split ``n_ads`` over about ``n_ads / 4`` advertisers, a few of them with a single ad."""
    n_adv = max(1, round(n_ads / 4)) if n_ads else 0
    n_single = min(max(n_adv - 1, 0), (n_adv * 3) // 10)
    n_multi = n_adv - n_single
    counts = [0] * n_multi
    for i in range(n_ads - n_single):
        counts[i % n_multi if i < 2 * n_multi else rng.randrange(n_multi)] += 1
    counts += [1] * n_single
    # About three in ten advertisers with three or more ads use a second phone (at least one).
    busy = [i for i, count in enumerate(counts) if count > 2]
    two_phones = set(rng.sample(busy, (len(busy) * 3 + 9) // 10))
    order = list(range(n_adv))
    rng.shuffle(order)  # singletons should not all sit at the end of the id range

    uk = list(_UK_ADVERTISER_PHONES)
    rng.shuffle(uk)
    au = list(AU_FICTION_MOBILES)
    rng.shuffle(au)
    # Roughly one advertiser in six uses an Australian number (the ACMA list is short).
    au_slots = set(rng.sample(range(n_adv), min(len(au), (n_adv + 5) // 6)))

    def next_phone(i: int, australian: bool) -> str:
        if australian and au:
            return au.pop()
        # Past ~1000 advertisers the fiction ranges run out and numbers repeat across them.
        return uk.pop() if uk else _UK_ADVERTISER_PHONES[i % len(_UK_ADVERTISER_PHONES)]

    width = max(2, len(str(n_adv)))
    advertisers: list[_Advertiser] = []
    for index, (position, count) in enumerate(zip(order, counts, strict=True)):
        multi = count > 1
        name_pool = rng.sample(FIRST_NAMES, 3)
        n_names = 1 if not multi or rng.random() < 0.6 else rng.randint(2, 3)
        phones = [next_phone(position, position in au_slots)]
        still_needed = n_adv - len(advertisers) - 1
        if index in two_phones and len(uk) + len(au) > still_needed:
            phones.append(next_phone(position + n_adv, rng.random() < 0.2))
        photos = []
        for _ in range(min(count + 1, rng.randint(2, 4)) if multi else rng.randint(1, 2)):
            photo = names.new()
            recipes[photo] = _ImageRecipe("photo", f"{seed}:{photo}")
            photos.append(photo)
        language: Language = rng.choice(("nl", "en", "mixed"))
        body_lang = _pick_language(rng, language)
        body = tuple(rng.sample(GENERIC_SENTENCES[body_lang], rng.randint(2, 4)))
        # Its own random stream: the rest of the content stays as it was.
        indicative = random.Random(f"{seed}:indicative:{position}")
        if multi and indicative.random() < INDICATIVE_SHARE:
            body += tuple(indicative.sample(_INDICATIVE[body_lang], 3))
        if multi:
            # A sentence of its own, so that its ads share more than stock lines (which a
            # site of a few advertisers soon counts as boilerplate).
            own = random.Random(f"{seed}:own:{position}")
            body += (personal_sentence(own, body_lang) + ".",)
        agency = multi and random.Random(f"{seed}:agency:{position}").random() < AGENCY_SHARE
        advertisers.append(
            _Advertiser(
                advertiser_id=f"adv{position + 1:0{width}d}",
                names=tuple(name_pool[:n_names]),
                language=language,
                phones=tuple(phones),
                phone_style=rng.randrange(5),
                photos=photos,
                body=body,
                n_ads=count,
                agency=agency,
            )
        )
    advertisers.sort(key=lambda adv: adv.advertiser_id)
    return advertisers


@dataclass(slots=True)
class _Draft:
    advertiser_id: str
    title: str
    text: str
    city: str
    posted_at: datetime
    phone_display: str
    phone_e164: str
    image_names: tuple[str, ...]


def _drafts_for(
    rng: random.Random,
    adv: _Advertiser,
    names: _Names,
    recipes: dict[str, _ImageRecipe],
    variants: dict[tuple[str, VariantKind], str],
) -> list[_Draft]:
    """One advertiser's trip: a new city every one to four days, reusing phones and photos."""
    drafts: list[_Draft] = []
    moment = BASE_DATE + timedelta(days=rng.randint(0, 20))
    city = rng.choice(CITY_NAMES)
    for index in range(adv.n_ads):
        if index:
            moment += timedelta(days=rng.randint(1, 4))
            if rng.random() < 0.8:  # mostly moving on, sometimes staying a little longer
                city = rng.choice([c for c in CITY_NAMES if c != city])
        posted_at = moment.replace(hour=rng.randint(8, 23), minute=rng.randrange(60))
        name = adv.names[0] if rng.random() < 0.7 else rng.choice(adv.names)
        # The second phone, if any, shows up on the second ad at the latest.
        phone = adv.phones[-1] if index == 1 else rng.choice(adv.phones[:1] * 2 + adv.phones)
        style = adv.phone_style if rng.random() < 0.7 else rng.randrange(5)
        display = display_phone(phone, style)
        in_text = display_phone(phone, rng.randrange(5))
        images: list[str] = []
        for photo in rng.sample(adv.photos, rng.randint(1, min(4, len(adv.photos)))):
            if index and rng.random() < 0.3:
                kind = rng.choice(_VARIANT_KINDS)
                if random.Random(f"{adv.advertiser_id}:{photo}:{index}").random() < 0.5:
                    kind = _REFRAMED[kind]
                variant = variants.get((photo, kind))
                if variant is None:
                    variant = variants[photo, kind] = names.new()
                    recipes[variant] = _ImageRecipe(kind, photo)
                images.append(variant)
            else:
                images.append(photo)
        lang = _pick_language(rng, adv.language)
        drafts.append(
            _Draft(
                advertiser_id=adv.advertiser_id,
                title=rng.choice(TITLES[lang]).format(name=name, city=city),
                text=_with_agency(_ad_text(rng, adv, city, in_text), adv, lang),
                city=city,
                posted_at=posted_at,
                phone_display=display,
                phone_e164=phone,
                image_names=tuple(images),
            )
        )
    return drafts


def _burner_ad(
    seed: int,
    advertisers: list[_Advertiser],
    drafts: list[_Draft],
    names: _Names,
    recipes: dict[str, _ImageRecipe],
) -> None:
    """One advertiser's last ad switches to a new number and a new photo but keeps every
    sentence of its text: only the text links it (as a new prepaid SIM would). Drawn from
    streams of its own, after everything else, so the other ads stay as they were. The
    advertiser is one with the most recurring sentences: with two of them, titles, openings
    and closings outweigh what the ads share, and the text links nothing."""
    busy = [adv for adv in advertisers if adv.n_ads >= 3]
    if not busy:
        return
    rng = random.Random(f"{seed}:burner")
    most = max(len(adv.body) for adv in busy)
    adv = rng.choice([adv for adv in busy if len(adv.body) == most])
    used = {phone for a in advertisers for phone in a.phones}
    burner = next((phone for phone in _UK_ADVERTISER_PHONES if phone not in used), None)
    if burner is None:
        return  # a site this large has used every fiction number: no ad can switch
    index = max(i for i, d in enumerate(drafts) if d.advertiser_id == adv.advertiser_id)
    draft = drafts[index]
    photo = names.new()
    recipes[photo] = _ImageRecipe("photo", f"{seed}:{photo}")
    lang = _pick_language(rng, adv.language)
    opening = rng.choice(OPENINGS[lang]).format(city=draft.city)
    closing = rng.choice(_CLOSINGS[lang]).format(phone=display_phone(burner, adv.phone_style))
    text = f"{opening} {' '.join(adv.body)}\n\n{closing}"
    drafts[index] = _Draft(
        advertiser_id=adv.advertiser_id,
        title=draft.title,
        text=_with_agency(text, adv, lang),
        city=draft.city,
        posted_at=draft.posted_at,
        phone_display=display_phone(burner, adv.phone_style),
        phone_e164=burner,
        image_names=(photo,),
    )


def _fault_ads(
    seed: int, advertisers: list[_Advertiser], recipes: dict[str, _ImageRecipe]
) -> list[DemoAd]:
    """Three broken ads by existing advertisers; their own RNG leaves the healthy ads unchanged."""
    rng = random.Random(f"{seed}:faults")
    recipes[BAD_IMAGE_NAME] = _ImageRecipe("raw", BAD_IMAGE_NAME, BAD_IMAGE_BYTES)
    last = BASE_DATE + timedelta(days=40)
    ads = []
    for offset, ad_id in enumerate(FAULT_AD_IDS):
        adv = rng.choice([a for a in advertisers if a.n_ads > 1] or advertisers)
        city = rng.choice(CITY_NAMES)
        name = adv.names[0]
        phone = adv.phones[0]
        images: tuple[str, ...] = (adv.photos[0],)
        if ad_id == FAULT_BAD_IMAGE:
            images = (adv.photos[0], BAD_IMAGE_NAME)
        lang = _pick_language(rng, adv.language)
        ads.append(
            DemoAd(
                ad_id=ad_id,
                advertiser_id=adv.advertiser_id,
                title=rng.choice(TITLES[lang]).format(name=name, city=city),
                text=_ad_text(rng, adv, city, display_phone(phone, adv.phone_style)),
                city=city,
                posted_at=last + timedelta(hours=offset),
                phone_display=display_phone(phone, adv.phone_style),
                phone_e164=phone,
                image_names=images,
                requires_js=False,
            )
        )
    return ads


def generate_demo_content(seed: int = 7, n_ads: int = 40, faults: bool = False) -> DemoSiteContent:
    """Generate the demo site's ads, reviews and (lazily rendered) images from ``seed``.

    About ``n_ads / 4`` advertisers each post several ads while moving from city to city,
    reusing one or two phones and the same photos (sometimes resized or recompressed under a
    new name); a few advertisers post a single ad that shares nothing. About one ad in eight
    needs JavaScript. ``faults`` adds the ads :data:`FAULT_AD_IDS` on top of ``n_ads``.
    """
    if n_ads < 0:
        raise ValueError(f"n_ads must be zero or more, got {n_ads}")
    rng = random.Random(seed)
    names = _Names(random.Random(f"{seed}:names"))
    recipes: dict[str, _ImageRecipe] = {}
    variants: dict[tuple[str, VariantKind], str] = {}
    advertisers = _advertisers(rng, n_ads, names, recipes, seed)
    drafts = [d for adv in advertisers for d in _drafts_for(rng, adv, names, recipes, variants)]
    _burner_ad(seed, advertisers, drafts, names, recipes)
    drafts.sort(key=lambda d: (d.posted_at, d.advertiser_id))
    js_indices = set(rng.sample(range(len(drafts)), round(len(drafts) / 8)))
    width = max(4, len(str(len(drafts))))
    ads = [
        DemoAd(
            ad_id=f"a{i + 1:0{width}d}",
            advertiser_id=d.advertiser_id,
            title=d.title,
            text=d.text,
            city=d.city,
            posted_at=d.posted_at,
            phone_display=d.phone_display,
            phone_e164=d.phone_e164,
            image_names=d.image_names,
            requires_js=i in js_indices,
        )
        for i, d in enumerate(drafts)
    ]
    if faults and advertisers:
        ads += _fault_ads(seed, advertisers, recipes)
    review_rng = random.Random(f"{seed}:reviews")
    reviews = {ad.ad_id: _reviews(review_rng) for ad in ads}
    return DemoSiteContent(
        seed=seed,
        ads=tuple(ads),
        images=_LazyImages(recipes),
        faults=faults,
        reviews=reviews,
        image_variant_of={name: r.key for name, r in recipes.items() if r.kind in _COPY_KINDS},
        image_copy_kind={name: r.kind for name, r in recipes.items() if r.kind in _COPY_KINDS},
    )
