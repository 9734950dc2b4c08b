"""The ``jsonld`` style of the demo site: the same synthetic ads, laid out the way the
sites that broke the first site profiles are, so that a profile file alone has to cope.

Its markup is a contract with the bundled ``demo-jsonld`` site profile:

- ad pages carry schema.org JSON-LD (a ``Product`` with name, description, images and an
  ``Offer`` whose ``areaServed`` is the whole country), preceded by an ``ItemList`` of
  related ads that are ``Product``s too;
- the city is written "Groningen · Dating ·" and the posted time "geplaatst 3 uur geleden"
  (older ads "geplaatst op 14-11-2026 21:05", Amsterdam time);
- inside the ad's description sit the site's help-desk number and a related-ads widget with
  other ads' titles and photos;
- list pages (``/regio/<city>``, ``/nieuw``) are found from the home page, not from a
  fixed start path; ``/sitemap.xml`` is an index whose sitemaps list every ad page, and
  also URLs of other origins that a crawler must not ask for.

The ground truth of a posted time is :meth:`JsonLdSite.posted_at`: relative times are a
whole number of minutes, hours or days before the moment the server started, so that a
crawler's reading of "3 uur geleden" can be checked to the second.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any, Final
from zoneinfo import ZoneInfo

from adwatch.demo.content import HELP_DESK_PHONE_DISPLAY, DemoAd, DemoSiteContent
from adwatch.synthetic.places import CITY_NAMES

__all__ = [
    "JSONLD_SITE_NAME",
    "OFF_LIST_PARTNER",
    "JsonLdSite",
    "Reply",
    "city_slug",
    "posted_text",
]

JSONLD_SITE_NAME: Final = "Demo Uitgaansgids (synthetic)"
CATEGORY: Final = "Dating"
SITE_ZONE: Final = ZoneInfo("Europe/Amsterdam")
# A host that never resolves (RFC 2606): where the site's partner links and sitemap point.
OFF_LIST_PARTNER: Final = "http://partner.invalid"
RELATED_PER_AD: Final = 3
# The newest ads' ages: one of each kind of relative time, then absolute dates.
_FIRST_AGES: Final = (
    timedelta(minutes=7),
    timedelta(hours=3, minutes=12),
    timedelta(days=1, hours=2),
    timedelta(days=3, hours=5),
)
_OLDER_THAN: Final = timedelta(days=8)

_AD_PATH: Final = re.compile(r"^/advertentie/([A-Za-z0-9_-]+)$")
_REGION_PATH: Final = re.compile(r"^/regio/([a-z-]+)$")
_MEDIA_PATH: Final = re.compile(r"^/media/([A-Za-z0-9_.-]+)$")


@dataclass(frozen=True, slots=True)
class Reply:
    """What the server sends back: status, body and content type."""

    status: HTTPStatus
    body: bytes
    content_type: str


def city_slug(city: str) -> str:
    """``Den Haag`` → ``den-haag``: the city's part of its list page's path."""
    return city.lower().replace(" ", "-")


def posted_text(moment: datetime, now: datetime) -> str:
    """How the site writes a posted time: relative for the last week, else a local date."""
    age = now - moment
    if age < timedelta(minutes=1):
        return "geplaatst zojuist"
    if age < timedelta(hours=1):
        minutes = age // timedelta(minutes=1)
        return f"geplaatst {minutes} {'minuut' if minutes == 1 else 'minuten'} geleden"
    if age < timedelta(days=1):
        return f"geplaatst {age // timedelta(hours=1)} uur geleden"
    if age < timedelta(days=7):
        days = age // timedelta(days=1)
        return f"geplaatst {days} {'dag' if days == 1 else 'dagen'} geleden"
    return f"geplaatst op {moment.astimezone(SITE_ZONE):%d-%m-%Y %H:%M}"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _script_json(data: Any) -> str:
    """JSON that is safe inside ``<script>``: no ``</script>``, no HTML-significant chars."""
    text = json.dumps(data, ensure_ascii=False, indent=1)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class JsonLdSite:
    """Pages of the ``jsonld`` style for one demo content, served from ``base_url``."""

    def __init__(
        self,
        content: DemoSiteContent,
        base_url: str,
        *,
        page_size: int,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.content = content
        self.base_url = base_url
        self.page_size = page_size
        self.clock = clock or (lambda: datetime.now(UTC))
        self.started_at = self.clock().replace(microsecond=0)
        healthy = [ad for ad in content.ads if ad.ad_id not in _fault_ids(content)]
        # Newest first, as the site lists them.
        self.ads: tuple[DemoAd, ...] = tuple(
            sorted(healthy, key=lambda ad: (ad.posted_at, ad.ad_id), reverse=True)
        )
        self.ads_by_id = {ad.ad_id: ad for ad in self.ads}
        self._posted = {ad.ad_id: self._exact_posted_at(rank) for rank, ad in enumerate(self.ads)}
        self.regions: Mapping[str, str] = {city_slug(city): city for city in CITY_NAMES}

    # --- ground truth -------------------------------------------------------------------

    def posted_at(self, ad: DemoAd) -> datetime:
        """When ``ad`` was posted on this site (UTC): what a crawler must read."""
        return self._posted[ad.ad_id]

    def related(self, ad: DemoAd) -> tuple[DemoAd, ...]:
        """The other ads the related-ads widget of ``ad``'s page shows."""
        if len(self.ads) < 2:
            return ()
        index = self.ads.index(ad)
        count = min(RELATED_PER_AD, len(self.ads) - 1)
        return tuple(self.ads[(index + step) % len(self.ads)] for step in range(1, count + 1))

    def off_list_urls(self) -> tuple[str, ...]:
        """The sitemap's entries on other origins (none may ever be requested)."""
        port = self.base_url.rsplit(":", 1)[-1]
        return (
            f"{OFF_LIST_PARTNER}/advertentie/p-101",
            # The same server under another name is another origin: not on the allowlist.
            f"http://localhost:{port}/advertentie/archief-1",
        )

    def _exact_posted_at(self, rank: int) -> datetime:
        if rank < len(_FIRST_AGES):
            age = _FIRST_AGES[rank]
            unit = (
                timedelta(minutes=1)
                if age < timedelta(hours=1)
                else timedelta(hours=1)
                if age < timedelta(days=1)
                else timedelta(days=1)
            )
            # Shown as "N units ago": the truth is a whole number of units back.
            return self.started_at - (age // unit) * unit
        # Older ads keep the spacing the demo content gives them, a week and more back.
        anchor = self.ads[len(_FIRST_AGES)].posted_at
        moment = self.started_at - _OLDER_THAN - (anchor - self.ads[rank].posted_at)
        return moment.replace(second=0)  # shown to the minute

    # --- pages --------------------------------------------------------------------------

    def respond(self, path: str, query: Mapping[str, Sequence[str]]) -> Reply:
        """The reply to a GET of ``path`` with ``query``."""
        if path == "/":
            return self._html(self._home())
        if path == "/robots.txt":
            robots = f"User-agent: *\nDisallow: /account/\nSitemap: {self.base_url}/sitemap.xml\n"
            return Reply(HTTPStatus.OK, robots.encode(), "text/plain")
        if path == "/sitemap.xml":
            return self._xml(self._sitemap_index())
        if path == "/sitemap-advertenties.xml":
            return self._xml(self._sitemap())
        if path == "/nieuw":
            return self._html(self._list_page("Nieuwste advertenties", self.ads[: self.page_size]))
        if path == "/info/voorwaarden":
            return self._html(
                self._layout("Voorwaarden", "<h1>Voorwaarden</h1><p>Synthetisch.</p>")
            )
        if match := _REGION_PATH.match(path):
            return self._region(match.group(1), query.get("p", ["1"])[-1])
        if match := _AD_PATH.match(path):
            ad = self.ads_by_id.get(match.group(1))
            return self._html(self._ad_page(ad)) if ad else self._not_found()
        if (match := _MEDIA_PATH.match(path)) and match.group(1) in self.content.images:
            return Reply(HTTPStatus.OK, self.content.images[match.group(1)], "image/jpeg")
        return self._not_found()

    def _html(self, page: str, status: HTTPStatus = HTTPStatus.OK) -> Reply:
        return Reply(status, page.encode("utf-8"), "text/html; charset=utf-8")

    def _xml(self, document: str) -> Reply:
        return Reply(HTTPStatus.OK, document.encode("utf-8"), "application/xml")

    def _not_found(self) -> Reply:
        page = self._layout("Niet gevonden", "<h1>Niet gevonden</h1>")
        return self._html(page, HTTPStatus.NOT_FOUND)

    def _layout(self, title: str, main: str, *, head: str = "", kind: str = "pagina") -> str:
        return f"""<!doctype html>
<html lang="nl">
<head>
<meta charset="utf-8">
<title>{_e(title)} – {_e(JSONLD_SITE_NAME)}</title>
{head}</head>
<body>
<header class="kop"><a href="/">{_e(JSONLD_SITE_NAME)}</a></header>
<main class="{kind}">
{main}
</main>
<footer class="voet">Klantenservice {_e(HELP_DESK_PHONE_DISPLAY)} (synthetisch) ·
<a href="/info/voorwaarden">Voorwaarden</a> ·
<a href="{OFF_LIST_PARTNER}/regio/amsterdam">Partnersite</a></footer>
</body>
</html>
"""

    def _home(self) -> str:
        regions = "\n".join(
            f'<li><a href="/regio/{slug}">{_e(city)}</a></li>'
            for slug, city in self.regions.items()
        )
        main = f"""<h1>Welkom</h1>
<nav class="regios"><ul>
{regions}
</ul></nav>
<p><a href="/nieuw">Nieuwste advertenties</a> · <a href="/info/voorwaarden">Voorwaarden</a></p>"""
        return self._layout("Welkom", main)

    def _region(self, slug: str, raw_page: str) -> Reply:
        city = self.regions.get(slug)
        page = int(raw_page) if raw_page.isdigit() else 0
        ads = tuple(ad for ad in self.ads if ad.city == city)
        last_page = max(1, -(-len(ads) // self.page_size))
        if city is None or not 1 <= page <= last_page:
            return self._not_found()
        chunk = ads[(page - 1) * self.page_size : page * self.page_size]
        next_url = f"/regio/{slug}?p={page + 1}" if page < last_page else None
        return self._html(self._list_page(f"{city}, pagina {page}", chunk, next_url))

    def _list_page(self, title: str, ads: Sequence[DemoAd], next_url: str | None = None) -> str:
        items = "\n".join(
            f'<li><a class="titel" href="/advertentie/{_e(ad.ad_id)}">{_e(ad.title)}</a> '
            f'<span class="plaats">{_e(ad.city)} · {CATEGORY} ·</span></li>'
            for ad in ads
        )
        results = f'<ol class="resultaten">\n{items}\n</ol>' if ads else "<p>Geen advertenties.</p>"
        more = f'<a class="volgende" rel="next" href="{next_url}">Volgende</a>' if next_url else ""
        return self._layout(title, f"<h1>{_e(title)}</h1>\n{results}\n<nav>{more}</nav>")

    def _ad_page(self, ad: DemoAd) -> str:
        related = self.related(ad)
        product = {
            "@context": "https://schema.org",
            "@type": "Product",
            "name": ad.title,
            "description": ad.text,
            "image": [f"{self.base_url}/media/{name}" for name in ad.image_names],
            "offers": {"@type": "Offer", "areaServed": "Nederland", "price": "0"},
        }
        # Related ads first: a reader that takes "the first Product anywhere" gets another ad.
        item_list = {
            "@context": "https://schema.org",
            "@type": "ItemList",
            "name": "Bekijk ook",
            "itemListElement": [
                {
                    "@type": "ListItem",
                    "position": position,
                    "item": {
                        "@type": "Product",
                        "name": other.title,
                        "url": f"{self.base_url}/advertentie/{other.ad_id}",
                    },
                }
                for position, other in enumerate(related, start=1)
            ],
        }
        head = "".join(
            f'<script type="application/ld+json">{_script_json(data)}</script>\n'
            for data in (item_list, product)
        )
        photos = "".join(
            f'<figure class="foto"><img src="/media/{_e(name)}" alt="foto"></figure>'
            for name in ad.image_names
        )
        paragraphs = "\n".join(f"<p>{_e(p)}</p>" for p in ad.text.split("\n\n"))
        others = "\n".join(
            f'<li><a href="/advertentie/{_e(other.ad_id)}"><figure class="foto klein">'
            f'<img src="/media/{_e(other.image_names[0])}" alt=""></figure>'
            f"{_e(other.title)}</a></li>"
            for other in related
            if other.image_names
        )
        when = posted_text(self.posted_at(ad), self.clock())
        main = f"""<h1>{_e(ad.title)}</h1>
<p class="meta"><span class="plaats">{_e(ad.city)} · {CATEGORY} ·</span>
<span class="wanneer">{_e(when)}</span></p>
<div class="fotos">{photos}</div>
<div class="omschrijving">
{paragraphs}
<p class="hulp">Vragen over deze advertentie? Bel de helpdesk: {_e(HELP_DESK_PHONE_DISPLAY)}</p>
<aside class="gerelateerd"><h2>Bekijk ook</h2><ul>
{others}
</ul></aside>
</div>
<p class="contact"><a class="bel" href="tel:{_e(ad.phone_e164)}">
Bel {_e(ad.phone_display)}</a></p>"""
        return self._layout(ad.title, main, head=head, kind="advertentie")

    def _sitemap_index(self) -> str:
        entries = "".join(
            f"<sitemap><loc>{_e(url)}</loc></sitemap>\n"
            for url in (
                f"{self.base_url}/sitemap-advertenties.xml",
                f"{OFF_LIST_PARTNER}/sitemap.xml",
            )
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
            f"{entries}</sitemapindex>\n"
        )

    def _sitemap(self) -> str:
        urls = [
            f"{self.base_url}/",
            f"{self.base_url}/nieuw",
            *(f"{self.base_url}/advertentie/{ad.ad_id}" for ad in self.ads),
            *self.off_list_urls(),
        ]
        entries = "".join(f"<url><loc>{_e(url)}</loc></url>\n" for url in urls)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
            f"{entries}</urlset>\n"
        )


def _fault_ids(content: DemoSiteContent) -> frozenset[str]:
    return frozenset(ad.ad_id for ad in content.fault_ads)
