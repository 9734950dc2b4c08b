"""From a page to an ad: which links a list page offers, and what an ad page says.

Everything site-specific comes from the site profile; the spider only walks. A page that
does not hold an ad (no container or no title) is a problem of the run, not a crash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scrapy.http import Response

from crawler.items import AdCapture, FetchedImage
from crawler.site_profile import SiteProfile
from crawler.urls import join_url


class NotAnAd(ValueError):
    """The page holds no ad the profile can read; the message says which selector failed."""


def _joined_text(selector: str | None, scope: Any) -> str | None:
    if not selector:
        return None
    parts = [p.strip() for p in scope.css(selector).getall()]
    text = " ".join(p for p in parts if p)
    return text or None


@dataclass
class AdExtractor:
    """Reads list pages and ad pages as one site profile describes them."""

    profile: SiteProfile

    def __post_init__(self) -> None:
        config = self.profile.config
        self.links = config.links
        self.fields = config.fields
        self.third_party = tuple(config.third_party)
        self._ad_path = re.compile(config.links.ad_path_pattern)
        self._list_path = re.compile(config.links.list_path_pattern)
        fields = config.fields
        # Where each captured field sits in a page, for cutting it out of the raw page.
        self.field_selectors: dict[str, tuple[str, ...]] = {
            name: (f"{fields.container} {selector}",)
            for name, selector in (
                ("title", fields.title),
                ("text", fields.text),
                ("city", fields.city),
                ("posted_at", fields.posted_at),
                ("phones", fields.phone),
                ("images", fields.images),
            )
            if selector
        }

    def ad_links(self, response: Response) -> list[str]:
        """Ad pages a list page links to, as the profile's rules allow."""
        found: list[str] = []
        for href in response.css(self.links.ad_links).getall():
            url = join_url(response, href)
            if url and self._ad_path.search(urlsplit(url).path) and url not in found:
                found.append(url)
        return found

    def next_pages(self, response: Response) -> list[str]:
        """Further list pages a list page links to."""
        if not self.links.next_page:
            return []
        href = response.css(self.links.next_page).get()
        url = join_url(response, href) if href else None
        if url and self._list_path.search(urlsplit(url).path):
            return [url]
        return []

    def capture(self, response: Response) -> AdCapture:
        """The ad on an ad page, with its image URLs; ``NotAnAd`` when there is none."""
        for selector in self.third_party:
            # Other people's words (reviews, comments) never reach the ad's fields.
            response.css(selector).drop()
        fields = self.fields
        container = response.css(fields.container)
        title = _joined_text(fields.title, container) if container else None
        if not container or not title:
            raise NotAnAd(
                f"no ad found (selector {fields.container!r} / {fields.title!r} matched "
                "nothing); page skipped"
            )
        capture = AdCapture(
            url=response.url,
            raw_body=response.body,
            title=title,
            text=_joined_text(fields.text, container) or "",
            city=_joined_text(fields.city, container),
            posted_at_raw=_joined_text(fields.posted_at, container),
            phone_text=_joined_text(fields.phone, container),
            page_encoding=getattr(response, "encoding", None),
            field_selectors=self.field_selectors,
            third_party_selectors=self.third_party,
        )
        image_urls: list[str] = []
        if fields.images:
            for src in container.css(fields.images).getall():
                url = join_url(response, src)
                if url and url not in image_urls:
                    image_urls.append(url)
        capture.images = [FetchedImage(url=u) for u in image_urls]
        return capture
