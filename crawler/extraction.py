"""From a page to an ad: which links a page offers, and what an ad page says.

Everything site-specific comes from the site profile; the spider only walks. A page that
does not hold an ad (no container or no title) is a problem of the run, not a crash.

Fields are read with CSS or XPath inside the ad's container, or from the page's schema.org
JSON-LD (parsed offline by extruct from the page's own HTML: nothing is ever fetched for
it, ``@context`` included). Elements a field ``exclude``s are removed from a copy, so one
field's exclusions never change another field or the page that is stored.
"""

from __future__ import annotations

import copy
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, Final, cast
from urllib.parse import urljoin, urlsplit

from extruct.jsonld import JsonLdExtractor
from lxml import etree
from parsel import Selector
from parsel.csstranslator import css2xpath
from scrapy.http import Response, TextResponse
from scrapy.utils.gz import gunzip
from scrapy.utils.sitemap import Sitemap

from crawler.dates import parse_posted_at
from crawler.items import AdCapture, FetchedImage
from crawler.middlewares import is_allowed
from crawler.site_profile import FieldSpec, SiteProfile
from crawler.urls import join_url

# Where JSON-LD sits in a page: cutting these removes every JSON-LD value from it.
JSONLD_SCRIPTS: Final = 'script[type="application/ld+json"]'
# The sitemap protocol's own limit on an uncompressed sitemap file.
SITEMAP_MAX_BYTES: Final = 50 * 1024 * 1024


class NotAnAd(ValueError):
    """The page holds no ad the profile can read; the message says which selector failed."""


class NotASitemap(ValueError):
    """The response is no sitemap or sitemap index that can be read."""


@dataclass(frozen=True, slots=True)
class SitemapLinks:
    """What a sitemap lists, sorted by what the spider does with it.

    ``off_list`` holds entries outside the allowlist: they are reported, never requested.
    Entries on the site that are neither ad nor list pages are left out.
    """

    ads: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    sitemaps: tuple[str, ...] = ()
    off_list: tuple[str, ...] = ()


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class AdExtractor:
    """Reads list pages, sitemaps and ad pages as one site profile describes them.

    ``clock`` gives the moment of capture that relative dates ("3 uur geleden") count back
    from.
    """

    profile: SiteProfile
    clock: Callable[[], datetime] = field(default=_utcnow)

    def __post_init__(self) -> None:
        config = self.profile.config
        self.links = config.links
        self.fields = config.fields
        self.third_party = tuple(config.third_party)
        self.allowed_origins = self.profile.allowed_origins()
        self._ad_path = re.compile(config.links.ad_path_pattern)
        self._list_paths = tuple(re.compile(p) for p in config.links.list_patterns)
        fields = config.fields
        # Where each captured field sits in a page, for cutting it out of the raw page. An
        # XPath or JSON-LD field maps to nothing: a legal basis that does not keep it keeps
        # no raw page at all (never a page that still shows it).
        self.field_selectors: dict[str, tuple[str, ...]] = {
            name: _cut_selectors(fields.container, spec) for name, spec in fields.text_fields()
        }
        if fields.images is not None:
            self.field_selectors["images"] = (f"{fields.container} {fields.images.css}",)

    # --- links ------------------------------------------------------------------------

    def ad_links(self, response: Response) -> list[str]:
        """Ad pages a list page links to, as the profile's rules allow."""
        found: list[str] = []
        for href in response.css(self.links.ad_links).getall():
            url = join_url(response, href)
            if url and self._is_ad(url) and url not in found:
                found.append(url)
        return found

    def next_pages(self, response: Response) -> list[str]:
        """Further list pages a list page links to."""
        if not self.links.next_page:
            return []
        href = response.css(self.links.next_page).get()
        url = join_url(response, href) if href else None
        if url and self._is_list(url):
            return [url]
        return []

    def list_links(self, response: Response) -> list[str]:
        """List pages a start page links to (``discover_lists``): links on the site's own
        origins whose paths match a list pattern. Links elsewhere are no list pages of this
        site, whatever their paths say."""
        found: list[str] = []
        for href in response.css("a::attr(href)").getall():
            url = join_url(response, href)
            if url and self._on_allowlist(url) and self._is_list(url) and url not in found:
                found.append(url)
        return found

    def sitemap_links(self, response: Response) -> SitemapLinks:
        """The ad pages, list pages and child sitemaps a sitemap lists, and the entries
        outside the allowlist; ``NotASitemap`` when the response is none."""
        body = response.body
        if body[:3] == b"\x1f\x8b\x08":  # a .xml.gz file served as it is
            try:
                body = gunzip(body, max_size=SITEMAP_MAX_BYTES)
            except (OSError, EOFError, struct.error, ValueError) as exc:
                raise NotASitemap(f"sitemap could not be decompressed: {exc}") from None
        try:
            sitemap = Sitemap(body)
            entries = list(sitemap)
        except (etree.LxmlError, StopIteration, ValueError) as exc:
            raise NotASitemap(f"not a sitemap: {type(exc).__name__}") from None
        if sitemap.type not in ("urlset", "sitemapindex"):
            raise NotASitemap(f"not a sitemap: the document is <{sitemap.type}>")
        ads: list[str] = []
        lists: list[str] = []
        sitemaps: list[str] = []
        off_list: list[str] = []
        for entry in entries:
            url = urljoin(response.url, str(entry["loc"]))
            if not self._on_allowlist(url):
                off_list.append(url)
            elif sitemap.type == "sitemapindex":
                sitemaps.append(url)
            elif self._is_ad(url):
                ads.append(url)
            elif self._is_list(url):
                lists.append(url)
        return SitemapLinks(
            tuple(_unique(ads)), tuple(_unique(lists)), tuple(_unique(sitemaps)), tuple(off_list)
        )

    def _is_ad(self, url: str) -> bool:
        return bool(self._ad_path.search(urlsplit(url).path))

    def _is_list(self, url: str) -> bool:
        path = urlsplit(url).path
        return any(pattern.search(path) for pattern in self._list_paths)

    def _on_allowlist(self, url: str) -> bool:
        return urlsplit(url).scheme in ("http", "https") and is_allowed(url, self.allowed_origins)

    # --- ad pages ---------------------------------------------------------------------

    def capture(self, response: Response) -> AdCapture:
        """The ad on an ad page, with its image URLs; ``NotAnAd`` when there is none.

        Fields that are there but cannot be read as the profile says (a regex that finds
        nothing, a date in none of its formats) are left empty and named in
        ``field_problems``, never with their content.
        """
        for selector in self.third_party:
            # Other people's words (reviews, comments) never reach the ad's fields.
            response.css(selector).drop()
        fields = self.fields
        page = _Page(response, response.css(fields.container))
        problems: list[str] = []
        values: dict[str, str | None] = {}
        if page.containers:
            values = {
                name: self._read(name, spec, page, problems) for name, spec in fields.text_fields()
            }
        title = values.get("title")
        if not title:
            where = fields.title.css or fields.title.xpath or fields.title.jsonld
            raise NotAnAd(
                f"no ad found (container {fields.container!r} / title {where!r} read "
                "nothing); page skipped"
            )
        capture = AdCapture(
            url=response.url,
            raw_body=response.body,
            title=title,
            text=values.get("text") or "",
            city=values.get("city"),
            posted_at_raw=values.get("posted_at"),
            phone_text=values.get("phones"),
            page_encoding=getattr(response, "encoding", None),
            field_selectors=self.field_selectors,
            third_party_selectors=self.third_party,
        )
        capture.posted_at = self._posted_at(capture.posted_at_raw, problems)
        capture.field_problems = problems
        capture.images = [FetchedImage(url=u) for u in self._image_urls(response, page)]
        return capture

    def _read(self, name: str, spec: FieldSpec, page: _Page, problems: list[str]) -> str | None:
        if spec.jsonld is not None:
            parts: Iterable[str] = _jsonld_values(page.jsonld(spec.exclude), spec.jsonld)
        else:
            parts = (text for scope in page.scopes(spec.exclude) for text in _texts(scope, spec))
        text = " ".join(p for p in (part.strip() for part in parts) if p) or None
        if text is None or spec.regex is None:
            return text
        match = _compiled(spec.regex).search(text)
        value = None
        if match is not None:
            value = match.group(1) if match.re.groups else match.group(0)
        if not value or not value.strip():
            problems.append(f"{name}: the profile's regex matched nothing")
            return None
        return value.strip()

    def _posted_at(self, raw: str | None, problems: list[str]) -> datetime | None:
        spec = self.fields.posted_at
        if raw is None or spec is None:
            return None
        value = parse_posted_at(raw, spec.date_format, spec.zone, self.clock())
        if value is None:
            formats = ", ".join(spec.date_format)
            problems.append(f"posted_at: in none of the profile's date formats ({formats})")
        return value

    def _image_urls(self, response: Response, page: _Page) -> list[str]:
        spec = self.fields.images
        urls: list[str] = []
        if spec is None:
            return urls
        for scope in page.scopes(spec.exclude):
            for src in scope.css(spec.css).getall():
                url = join_url(response, src)
                if url and url not in urls:
                    urls.append(url)
        return urls


def _cut_selectors(container: str, spec: FieldSpec) -> tuple[str, ...]:
    """The CSS selectors that cut a field's elements out of a stored page; none when no
    selector can say where the page shows it (then a page is kept only with the field)."""
    if spec.css is not None:
        return (f"{container} {spec.css}",)
    # XPath: minimisation cuts with CSS only. JSON-LD: its scripts could be cut, but JSON-LD
    # repeats what the page shows elsewhere, in elements the profile does not name.
    return ()


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _unique(urls: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(urls))


def _texts(scope: Selector, spec: FieldSpec) -> Iterator[str]:
    """The strings a CSS or XPath field selects; an element gives its text content."""
    results = scope.css(spec.css) if spec.css is not None else scope.xpath(spec.xpath or "")
    for result in results:
        if hasattr(result.root, "tag"):  # an element (not ::text or ::attr): its text
            yield result.xpath("string()").get() or ""
        else:
            yield result.get()


class _Page:
    """One ad page's containers and JSON-LD, and copies without excluded elements."""

    def __init__(self, response: Response, containers: Sequence[Selector]) -> None:
        self.response = response
        self.containers = list(containers)
        self._scopes: dict[tuple[str, ...], list[Selector]] = {(): self.containers}
        self._jsonld: dict[tuple[str, ...], list[Any]] = {}

    def scopes(self, exclude: tuple[str, ...]) -> list[Selector]:
        """The containers, without the elements ``exclude`` selects."""
        if exclude not in self._scopes:
            self._scopes[exclude] = [_without(c.root, exclude) for c in self.containers]
        return self._scopes[exclude]

    def jsonld(self, exclude: tuple[str, ...]) -> list[Any]:
        """The page's JSON-LD items, read from the page without ``exclude``'s elements."""
        if exclude not in self._jsonld:
            # Only pages with text (TextResponse) reach extraction.
            root = cast(TextResponse, self.response).selector.root
            scope = _without(root, exclude).root if exclude else root
            self._jsonld[exclude] = _jsonld_items(scope)
        return self._jsonld[exclude]


def _without(element: Any, exclude: tuple[str, ...]) -> Selector:
    """A copy of ``element`` without the elements the CSS selectors ``exclude`` select."""
    root = copy.deepcopy(element)
    root.tail = None  # text after the element is not inside it
    for css in exclude:
        for node in root.xpath(css2xpath(css)):
            if node is root:
                root.clear()
            else:
                node.drop_tree()  # its tail text stays: it belongs to the parent
    return Selector(root=root, type="html")


_JSONLD: Final = JsonLdExtractor()
_JSONLD_SCRIPT_XPATH: Final = css2xpath(JSONLD_SCRIPTS)


def _jsonld_items(root: Any) -> list[Any]:
    """Every JSON-LD item of the page; a block that is not JSON hides no other block."""
    items: list[Any] = []
    for script in root.xpath(_JSONLD_SCRIPT_XPATH):
        try:
            items.extend(_JSONLD.extract_items(script))
        except (ValueError, RecursionError):
            continue
    return items


def _jsonld_values(items: list[Any], path: str) -> list[str]:
    """The values at ``path`` (``Type.key.key``) in the first top-level item of that type
    (``*``: the first item); lists along the way are followed element by element."""
    type_name, *keys = path.split(".")
    for item in _top_level(items):
        if type_name != "*" and type_name not in _types_of(item):
            continue
        values: list[Any] = [item]
        for key in keys:
            step: list[Any] = []
            for value in values:
                if isinstance(value, dict) and key in value:
                    child = value[key]
                    step.extend(child if isinstance(child, list) else [child])
            values = step
        return [
            str(value)
            for value in values
            if isinstance(value, str | int | float) and not isinstance(value, bool)
        ]
    return []


def _top_level(items: list[Any]) -> Iterator[dict[str, Any]]:
    """Top-level items and the members of their ``@graph``, in page order."""
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("@type") is not None:
            yield item
        graph = item.get("@graph")
        if isinstance(graph, list):
            yield from (member for member in graph if isinstance(member, dict))


def _types_of(item: dict[str, Any]) -> set[str]:
    """The item's ``@type``s by local name (``schema:Product`` and the URL form too)."""
    types = item.get("@type")
    names = types if isinstance(types, list) else [types]
    return {re.split(r"[/:#]", name)[-1] for name in names if isinstance(name, str)}
