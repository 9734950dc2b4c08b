"""Extraction as a site profile describes it: CSS, XPath and JSON-LD fields, regex, exclude,
dates, images, list discovery and sitemaps, on synthetic pages."""

from __future__ import annotations

import gzip
import html
import json
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from scrapy.http import HtmlResponse, XmlResponse

from crawler.extraction import AdExtractor, NotAnAd, NotASitemap
from crawler.site_profile import SiteProfile, parse_site_profile
from legal_policy.field_rules import FieldRule, FieldRules
from legal_policy.minimisation import CapturedAd, minimise_ad

BASE = "http://127.0.0.1:9999"
NOW = datetime(2026, 11, 30, 10, 51, 30, tzinfo=UTC)
HELP_DESK = "+44 20 7946 0999"
OWN_PHONE = "+44 20 7946 0123"


def related_list(title: str) -> dict[str, Any]:
    return {
        "@context": "https://schema.org",
        "@type": "ItemList",
        "itemListElement": [
            {"@type": "ListItem", "position": 1, "item": {"@type": "Product", "name": title}}
        ],
    }


def product(title: str, text: str) -> dict[str, Any]:
    return {
        # A remote context: expanding it would need the network; nothing may fetch it.
        "@context": "https://schema.org",
        "@type": ["schema:Product"],
        "name": title,
        "description": text,
        "offers": {
            "@type": "Offer",
            "areaServed": [{"@type": "City", "name": "Groningen"}, {"name": "Assen"}],
        },
    }


def ld(data: Any) -> str:
    # Escaped as sites escape it: a "</script>" in a value must not end the block.
    text = json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e")
    return f'<script type="application/ld+json">{text}</script>'


def ad_page(
    *,
    title: str = "Lena – nieuw in Groningen",
    paragraphs: tuple[str, ...] = ("Nieuw in Groningen, maar een paar dagen!", "Bel of app."),
    city_line: str = "Groningen · Dating ·",
    when: str = "geplaatst 3 uur geleden",
    related_title: str = "Mila – nieuw in Breda",
    jsonld: str | None = None,
) -> str:
    """An ad page laid out like the sites that broke the first profiles."""
    scripts = (
        jsonld
        if jsonld is not None
        else (ld(related_list(related_title)) + ld(product(title, "\n\n".join(paragraphs))))
    )
    text = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return f"""<!doctype html><html lang="nl"><head><meta charset="utf-8">
<title>{html.escape(title)}</title>{scripts}</head><body>
<main class="advertentie">
<h1>{html.escape(title)}</h1>
<p class="meta"><span class="plaats">{html.escape(city_line)}</span>
<span class="wanneer">{html.escape(when)}</span></p>
<div class="fotos"><figure class="foto"><img src="/media/own-1.jpg"></figure>
<figure class="foto"><img src="/media/own-2.jpg"></figure></div>
<div class="omschrijving">{text}
<p class="hulp">Vragen? Helpdesk {HELP_DESK}</p>
<aside class="gerelateerd"><a href="/advertentie/b"><figure class="foto">
<img src="/media/other.jpg"></figure>{html.escape(related_title)}</a></aside></div>
<p class="contact"><a class="bel" href="tel:{OWN_PHONE.replace(" ", "")}">Bel</a></p>
</main>
<footer>Klantenservice {HELP_DESK}</footer>
</body></html>"""


FIELDS: dict[str, Any] = {
    "container": "main.advertentie",
    "title": {"jsonld": "Product.name"},
    "text": {"css": "div.omschrijving ::text", "exclude": ["p.hulp", "aside.gerelateerd"]},
    "city": {"css": "p.meta span.plaats::text", "regex": r"^\s*([^·]+?)\s*·"},
    "posted_at": {
        "css": "p.meta span.wanneer::text",
        "regex": "^geplaatst (?:op )?(.+)$",
        "date_format": ["relative", "%d-%m-%Y %H:%M"],
    },
    "phone": {"css": "p.contact a.bel::attr(href)", "regex": "^tel:(.+)$"},
    "images": {"css": "figure.foto img::attr(src)", "exclude": ["aside.gerelateerd"]},
}
LINKS: dict[str, Any] = {
    "ad_links": "a.titel::attr(href)",
    "next_page": "a.volgende::attr(href)",
    "ad_path_pattern": "^/advertentie/[a-z0-9-]+$",
    "list_path_patterns": ["^/regio/[a-z-]+$", "^/nieuw$"],
}


def make_profile(
    fields: dict[str, Any] | None = None, third_party: tuple[str, ...] = (), **links: Any
) -> SiteProfile:
    config = {
        "key": "sample",
        "name": "Sample (synthetic)",
        "base_url": BASE,
        "start_paths": ["/"],
        "extra_allowed_origins": ["http://img.test"],
        "links": {**LINKS, **links},
        "fields": fields if fields is not None else FIELDS,
        "third_party": list(third_party),
    }
    return parse_site_profile(yaml.safe_dump(config, allow_unicode=True).encode(), "sample.yaml")


def extractor(fields: dict[str, Any] | None = None, **links: Any) -> AdExtractor:
    return AdExtractor(make_profile(fields, **links), clock=lambda: NOW)


def response(body: str, path: str = "/advertentie/a") -> HtmlResponse:
    return HtmlResponse(url=f"{BASE}{path}", body=body.encode("utf-8"), encoding="utf-8")


# --- fields -------------------------------------------------------------------------------


def test_every_field_is_the_ads_own() -> None:
    capture = extractor().capture(response(ad_page()))
    assert capture.title == "Lena – nieuw in Groningen"  # the page's Product, not the related
    assert capture.text == "Nieuw in Groningen, maar een paar dagen! Bel of app."
    assert capture.city == "Groningen"
    assert capture.posted_at == NOW.replace(microsecond=0) - timedelta(hours=3)
    assert capture.phone_text == OWN_PHONE.replace(" ", "")
    assert [i.url for i in capture.images] == [f"{BASE}/media/own-1.jpg", f"{BASE}/media/own-2.jpg"]
    assert capture.field_problems == []


def test_without_exclude_and_regex_the_page_leaks_into_the_fields() -> None:
    """The control: the same page read naively shows each fault the profile's rules fix."""
    naive = {
        "container": "main.advertentie",
        "title": "h1::text",
        "text": "div.omschrijving ::text",
        "city": "p.meta span.plaats::text",
        "images": "figure.foto img::attr(src)",
    }
    capture = extractor(naive).capture(response(ad_page()))
    assert HELP_DESK in capture.text and "Mila – nieuw in Breda" in capture.text
    assert capture.city == "Groningen · Dating ·"
    assert f"{BASE}/media/other.jpg" in [i.url for i in capture.images]


def test_exclusions_are_per_field_and_leave_the_page_whole() -> None:
    fields = {**FIELDS, "phone": {"css": "p.hulp::text", "regex": r"(\+[\d ]+)"}}
    page = ad_page()
    capture = extractor(fields).capture(response(page))
    # The text field's exclusion does not hide the element from another field...
    assert capture.phone_text == HELP_DESK
    assert HELP_DESK not in capture.text
    # ...and the page as stored is the page as fetched.
    assert capture.raw_body == page.encode("utf-8")


def test_xpath_fields_read_inside_the_container_and_elements_give_their_text() -> None:
    fields = {
        **FIELDS,
        "title": {"xpath": ".//h1"},
        "city": {"xpath": ".//span[@class='plaats']/text()", "regex": r"^(\w+)"},
    }
    capture = extractor(fields).capture(response(ad_page()))
    assert capture.title == "Lena – nieuw in Groningen"
    assert capture.city == "Groningen"


def test_jsonld_paths_follow_keys_and_lists_of_the_first_item_of_the_type() -> None:
    fields = {**FIELDS, "city": {"jsonld": "Product.offers.areaServed.name"}}
    capture = extractor(fields).capture(response(ad_page()))
    assert capture.city == "Groningen Assen"


def test_jsonld_in_a_graph_and_after_a_broken_block_is_read() -> None:
    graph = {"@context": "https://schema.org", "@graph": [product("Uit de graaf", "Tekst.")]}
    scripts = '<script type="application/ld+json">{ not json </script>' + ld(graph)
    capture = extractor().capture(response(ad_page(title="Uit de graaf", jsonld=scripts)))
    assert capture.title == "Uit de graaf"


def test_a_page_without_the_jsonld_a_required_field_needs_is_not_an_ad() -> None:
    with pytest.raises(NotAnAd, match=r"Product\.name"):
        extractor().capture(response(ad_page(jsonld="")))


def test_jsonld_is_read_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("extraction tried to open a connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    assert extractor().capture(response(ad_page())).title == "Lena – nieuw in Groningen"


def test_unreadable_fields_are_left_empty_and_named_without_content() -> None:
    page = ad_page(city_line="Onbekend", when="geplaatst in de herfst")
    capture = extractor().capture(response(page))
    assert capture.city is None and capture.posted_at is None
    assert capture.field_problems == [
        "city: the profile's regex matched nothing",
        "posted_at: in none of the profile's date formats (relative, %d-%m-%Y %H:%M)",
    ]
    assert not any("herfst" in p or "Onbekend" in p for p in capture.field_problems)


def test_absolute_dates_are_read_in_the_profiles_time_zone() -> None:
    capture = extractor().capture(response(ad_page(when="geplaatst op 14-07-2026 21:05")))
    assert capture.posted_at == datetime(2026, 7, 14, 19, 5, tzinfo=UTC)
    fields = {**FIELDS, "posted_at": {**FIELDS["posted_at"], "timezone": "America/New_York"}}
    capture = extractor(fields).capture(response(ad_page(when="geplaatst op 14-07-2026 21:05")))
    assert capture.posted_at == datetime(2026, 7, 15, 1, 5, tzinfo=UTC)


def test_third_party_content_never_reaches_a_field() -> None:
    fields = {**FIELDS, "text": "div.omschrijving ::text"}
    profile = make_profile(fields, third_party=("aside.gerelateerd",))
    capture = AdExtractor(profile, clock=lambda: NOW).capture(response(ad_page()))
    assert "Nieuw in Groningen" in capture.text and "Mila" not in capture.text


# --- what minimisation can cut ------------------------------------------------------------


def minimised_page(fields: dict[str, Any], rules: FieldRules) -> bytes | None:
    capture = extractor(fields).capture(response(ad_page()))
    captured = CapturedAd(
        url=capture.url,
        title=capture.title,
        text=capture.text,
        city=capture.city,
        posted_at=capture.posted_at,
        phones=(),
        images=(),
        raw_page=capture.raw_body,
        page_encoding=capture.page_encoding,
        field_selectors=capture.field_selectors,
        third_party_selectors=capture.third_party_selectors,
    )
    minimised, _ = minimise_ad(rules, captured, pseudonym_key=b"k" * 32, default_region="NL")
    return minimised.raw_page


def test_field_selectors_say_what_minimisation_can_cut() -> None:
    fields = {**FIELDS, "city": {"xpath": ".//span[@class='plaats']/text()"}}
    cut = extractor(fields).field_selectors
    assert cut["text"] == ("main.advertentie div.omschrijving ::text",)
    assert cut["title"] == ()  # JSON-LD: the page shows it elsewhere too
    assert cut["city"] == ()  # XPath: nothing minimisation can cut
    assert cut["images"] == ("main.advertentie figure.foto img::attr(src)",)


@pytest.mark.parametrize(
    "city",
    [{"xpath": ".//span[@class='plaats']/text()"}, {"jsonld": "Product.offers.areaServed.name"}],
)
def test_a_dropped_field_no_selector_can_cut_keeps_no_page(city: dict[str, str]) -> None:
    assert minimised_page({**FIELDS, "city": city}, FieldRules(city=FieldRule.DROP)) is None


def test_a_dropped_css_field_is_cut_from_the_kept_page() -> None:
    drop_city = FieldRules(city=FieldRule.DROP)
    page = minimised_page(FIELDS, drop_city)
    assert page is not None and b"Groningen \xc2\xb7 Dating" not in page
    assert b"Lena" in page  # the kept title stays


# --- links --------------------------------------------------------------------------------

HOME = """<html><body>
<a href="/regio/groningen">Groningen</a> <a href="/regio/den-haag#top">Den Haag</a>
<a href="/nieuw">Nieuw</a> <a href="/info/voorwaarden">Voorwaarden</a>
<a href="http://partner.invalid/regio/amsterdam">Partner</a>
<a href="http://img.test/regio/cdn">CDN</a> <a href="/regio/groningen">again</a>
<a class="titel" href="/advertentie/a1">ad</a> <a class="volgende" href="/nieuw">next</a>
</body></html>"""


def test_list_pages_are_discovered_on_the_sites_origins_only() -> None:
    links = extractor().list_links(response(HOME, "/"))
    assert links == [
        f"{BASE}/regio/groningen",
        f"{BASE}/regio/den-haag#top",
        f"{BASE}/nieuw",
        "http://img.test/regio/cdn",  # an allowed origin of the profile
    ]


def test_next_pages_and_ad_links_use_every_list_pattern() -> None:
    page = response(HOME, "/regio/groningen")
    assert extractor().next_pages(page) == [f"{BASE}/nieuw"]
    assert extractor().ad_links(page) == [f"{BASE}/advertentie/a1"]
    assert extractor(list_path_patterns=["^/regio/"]).next_pages(page) == []


def sitemap(kind: str, locs: list[str]) -> bytes:
    tag = "url" if kind == "urlset" else "sitemap"
    entries = "".join(f"<{tag}><loc>{loc}</loc></{tag}>" for loc in locs)
    return (
        f'<?xml version="1.0"?><{kind} xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"{entries}</{kind}>"
    ).encode()


def test_sitemaps_sort_ads_lists_and_entries_off_the_allowlist() -> None:
    body = sitemap(
        "urlset",
        [
            f"{BASE}/advertentie/a1",
            f"{BASE}/nieuw",
            f"{BASE}/info/voorwaarden",  # on the site, but neither: not asked for
            "http://partner.invalid/advertentie/p1",
            "http://localhost:9999/advertentie/a1",  # the same host by another name
            "https://127.0.0.1:9999/advertentie/a1",  # another scheme is another origin
            "/advertentie/a2",  # relative: read against the sitemap's URL
            f"{BASE}/advertentie/a1",
        ],
    )
    found = extractor().sitemap_links(XmlResponse(url=f"{BASE}/sitemap.xml", body=body))
    assert found.ads == (f"{BASE}/advertentie/a1", f"{BASE}/advertentie/a2")
    assert found.lists == (f"{BASE}/nieuw",)
    assert found.sitemaps == ()
    assert found.off_list == (
        "http://partner.invalid/advertentie/p1",
        "http://localhost:9999/advertentie/a1",
        "https://127.0.0.1:9999/advertentie/a1",
    )


def test_sitemap_indexes_and_gzipped_sitemaps() -> None:
    index = sitemap("sitemapindex", [f"{BASE}/s1.xml.gz", "http://partner.invalid/s.xml"])
    found = extractor().sitemap_links(XmlResponse(url=f"{BASE}/sitemap.xml", body=index))
    assert found.sitemaps == (f"{BASE}/s1.xml.gz",)
    assert found.off_list == ("http://partner.invalid/s.xml",)
    packed = gzip.compress(sitemap("urlset", [f"{BASE}/advertentie/a9"]))
    raw = HtmlResponse(url=f"{BASE}/s1.xml.gz", body=packed)
    assert extractor().sitemap_links(raw).ads == (f"{BASE}/advertentie/a9",)


@pytest.mark.parametrize("body", [b"", b"<html><body>no</body></html>", b"\x1f\x8b\x08broken"])
def test_what_is_no_sitemap_says_so(body: bytes) -> None:
    with pytest.raises(NotASitemap):
        extractor().sitemap_links(HtmlResponse(url=f"{BASE}/sitemap.xml", body=body))


# --- any text ----------------------------------------------------------------------------

# Printable text with the characters HTML and JSON escape; no "·" (the city's separator).
WORDS = st.text(
    alphabet=st.characters(
        codec="utf-8", categories=("L", "N", "P", "S", "Zs"), exclude_characters="·"
    ),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip())


def normalised(text: str) -> str:
    return " ".join(text.split())


@settings(max_examples=60, deadline=None)
@given(
    title=WORDS,
    paragraphs=st.lists(WORDS, min_size=1, max_size=3),
    city=WORDS,
    related_title=WORDS,
    hours=st.integers(min_value=1, max_value=23),
)
def test_any_ad_is_read_back_exactly(
    title: str, paragraphs: list[str], city: str, related_title: str, hours: int
) -> None:
    page = ad_page(
        title=title,
        paragraphs=tuple(paragraphs),
        city_line=f"{city} · Dating ·",
        when=f"geplaatst {hours} uur geleden",
        related_title=related_title,
    )
    capture = extractor().capture(response(page))
    assert capture.title == title.strip()
    assert normalised(capture.text) == normalised(" ".join(paragraphs))
    assert capture.city == city.strip()
    assert capture.posted_at == NOW.replace(microsecond=0) - timedelta(hours=hours)
    assert f"{BASE}/media/other.jpg" not in [i.url for i in capture.images]
