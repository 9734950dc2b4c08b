"""The demo site's JSON-LD style: its contract with the ``demo-jsonld`` profile, and the
traps it sets (help desk, related ads, relative dates, off-list sitemap entries)."""

from __future__ import annotations

import html
import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

import lxml.html
import pytest
from lxml import etree

from adwatch.demo.content import (
    HELP_DESK_PHONE_DISPLAY,
    DemoAd,
    generate_demo_content,
)
from adwatch.demo.jsonld_site import (
    OFF_LIST_PARTNER,
    JsonLdSite,
    city_slug,
    posted_text,
)
from adwatch.demo.site import DemoServer, make_demo_server, running_demo_server
from adwatch.synthetic.places import CITY_NAMES

BASE = "http://127.0.0.1:9999"
NOW = datetime(2026, 11, 30, 10, 51, 30, tzinfo=UTC)
SITEMAP_NS = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}


@pytest.fixture(scope="module")
def site() -> JsonLdSite:
    """The style's pages at a fixed moment, read without a server."""
    return JsonLdSite(generate_demo_content(seed=3, n_ads=18), BASE, page_size=4, clock=lambda: NOW)


@pytest.fixture(scope="module")
def server() -> Iterator[DemoServer]:
    with running_demo_server(seed=3, n_ads=18, style="jsonld") as running:
        yield running


def page(site: JsonLdSite, path: str, **query: str) -> Any:
    reply = site.respond(path, {k: [v] for k, v in query.items()})
    assert reply.status == HTTPStatus.OK, path
    return lxml.html.document_fromstring(reply.body)


def links(document: Any, selector: str = "a") -> list[str]:
    return [a.get("href") for a in document.cssselect(selector)]


def test_list_pages_are_found_from_the_home_page_only(site: JsonLdSite) -> None:
    home = links(page(site, "/"))
    assert {f"/regio/{city_slug(city)}" for city in CITY_NAMES} <= set(home)
    assert "/nieuw" in home
    assert f"{OFF_LIST_PARTNER}/regio/amsterdam" in home  # a list path on another origin


def test_region_pages_list_every_ad_once_across_their_pages(site: JsonLdSite) -> None:
    seen: list[str] = []
    for slug in {city_slug(ad.city) for ad in site.ads}:
        number = 1
        while True:
            document = page(site, f"/regio/{slug}", p=str(number))
            seen += links(document, "ol.resultaten a.titel")
            following = links(document, "a.volgende")
            if not following:
                break
            assert following == [f"/regio/{slug}?p={number + 1}"]
            number += 1
    assert sorted(seen) == sorted(f"/advertentie/{ad.ad_id}" for ad in site.ads)
    assert site.respond("/regio/nergens", {}).status == HTTPStatus.NOT_FOUND
    assert site.respond("/regio/groningen", {"p": ["0"]}).status == HTTPStatus.NOT_FOUND


def jsonld_blocks(document: Any) -> list[Any]:
    return [
        json.loads(script.text)
        for script in document.cssselect('script[type="application/ld+json"]')
    ]


def test_ad_pages_carry_their_product_after_the_related_ads(site: JsonLdSite) -> None:
    ad = site.ads[1]
    document = page(site, f"/advertentie/{ad.ad_id}")
    related, own = jsonld_blocks(document)
    assert related["@type"] == "ItemList"
    names = [e["item"]["name"] for e in related["itemListElement"]]
    assert names == [other.title for other in site.related(ad)] and len(names) == 3
    assert related["itemListElement"][0]["item"]["@type"] == "Product"
    assert own["@type"] == "Product" and own["name"] == ad.title
    assert own["description"] == ad.text
    assert own["offers"]["areaServed"] == "Nederland"  # no use as the ad's city


def test_ad_pages_set_the_traps_inside_the_description(site: JsonLdSite) -> None:
    ad = site.ads[0]
    document = page(site, f"/advertentie/{ad.ad_id}")
    (description,) = document.cssselect("main.advertentie div.omschrijving")
    assert HELP_DESK_PHONE_DISPLAY in description.text_content()
    related = site.related(ad)
    for other in related:
        assert other.title in description.text_content()
    sources = [img.get("src") for img in document.cssselect("main figure.foto img")]
    own = [f"/media/{name}" for name in ad.image_names]
    assert sources[: len(own)] == own
    assert sources[len(own) :] == [f"/media/{other.image_names[0]}" for other in related]
    (place,) = document.cssselect("p.meta span.plaats")
    assert place.text == f"{ad.city} · Dating ·"
    (call,) = document.cssselect("p.contact a.bel")
    assert call.get("href") == f"tel:{ad.phone_e164}"


def shown_when(site: JsonLdSite, ad: DemoAd) -> str:
    (when,) = page(site, f"/advertentie/{ad.ad_id}").cssselect("p.meta span.wanneer")
    return str(when.text)


def test_posted_times_are_relative_for_a_week_then_local_dates(site: JsonLdSite) -> None:
    shown = [shown_when(site, ad) for ad in site.ads[:6]]
    assert shown[:4] == [
        "geplaatst 7 minuten geleden",
        "geplaatst 3 uur geleden",
        "geplaatst 1 dag geleden",
        "geplaatst 3 dagen geleden",
    ]
    fifth = site.posted_at(site.ads[4])
    assert fifth == (NOW - timedelta(days=8)).replace(second=0)
    # 22 Nov 2026 10:51 UTC is 11:51 in Amsterdam (winter time).
    assert shown[4] == "geplaatst op 22-11-2026 11:51"
    assert shown[5].startswith("geplaatst op ")


def test_relative_times_are_whole_units_before_the_start(site: JsonLdSite) -> None:
    ages = [NOW.replace(microsecond=0) - site.posted_at(ad) for ad in site.ads[:4]]
    assert ages == [
        timedelta(minutes=7),
        timedelta(hours=3),
        timedelta(days=1),
        timedelta(days=3),
    ]
    older = [site.posted_at(ad) for ad in site.ads[4:]]
    assert older == sorted(older, reverse=True)  # newest first, as listed
    assert all(moment.second == 0 for moment in older)


def test_posted_text_counts_whole_units() -> None:
    assert posted_text(NOW - timedelta(seconds=30), NOW) == "geplaatst zojuist"
    assert posted_text(NOW - timedelta(minutes=1, seconds=59), NOW) == "geplaatst 1 minuut geleden"
    assert posted_text(NOW - timedelta(hours=23, minutes=59), NOW) == "geplaatst 23 uur geleden"
    assert posted_text(NOW - timedelta(days=1), NOW) == "geplaatst 1 dag geleden"
    assert posted_text(NOW - timedelta(days=7), NOW) == "geplaatst op 23-11-2026 11:51"


def sitemap_locs(site: JsonLdSite, path: str) -> tuple[str, list[str]]:
    reply = site.respond(path, {})
    assert reply.status == HTTPStatus.OK and reply.content_type == "application/xml"
    root = etree.fromstring(reply.body)
    return etree.QName(root).localname, [loc.text for loc in root.iterfind(".//s:loc", SITEMAP_NS)]


def test_the_sitemap_lists_every_ad_and_pages_of_other_origins(site: JsonLdSite) -> None:
    kind, children = sitemap_locs(site, "/sitemap.xml")
    assert kind == "sitemapindex"
    assert children == [f"{BASE}/sitemap-advertenties.xml", f"{OFF_LIST_PARTNER}/sitemap.xml"]
    kind, locs = sitemap_locs(site, "/sitemap-advertenties.xml")
    assert kind == "urlset"
    ads = [f"{BASE}/advertentie/{ad.ad_id}" for ad in site.ads]
    assert [loc for loc in locs if loc in ads] == ads
    assert set(site.off_list_urls()) <= set(locs)
    assert site.off_list_urls()[1] == "http://localhost:9999/advertentie/archief-1"
    assert not any("/regio/" in loc for loc in locs)  # list pages: only from the home page


# Loopback only: never through a proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def test_served_over_http_on_loopback(server: DemoServer) -> None:
    assert server.jsonld_site is not None and server.style == "jsonld"
    ad = server.jsonld_site.ads[0]
    with OPENER.open(f"{server.base_url}/advertentie/{ad.ad_id}", timeout=10) as reply:
        body = reply.read().decode("utf-8")
    assert html.escape(ad.title) in body and '<main class="advertentie">' in body
    name = ad.image_names[0]
    with OPENER.open(f"{server.base_url}/media/{name}", timeout=10) as reply:
        assert reply.headers.get_content_type() == "image/jpeg"
        assert reply.read() == server.content.images[name]
    with OPENER.open(f"{server.base_url}/robots.txt", timeout=10) as reply:
        assert f"Sitemap: {server.base_url}/sitemap.xml" in reply.read().decode()


def test_the_style_is_checked() -> None:
    with pytest.raises(ValueError, match="classic style only"):
        make_demo_server(style="jsonld", faults=True)
    with pytest.raises(ValueError, match="style must be"):
        make_demo_server(style="fancy")  # type: ignore[arg-type]
    classic = make_demo_server(n_ads=4)
    try:
        assert classic.style == "classic" and classic.jsonld_site is None
    finally:
        classic.server_close()
