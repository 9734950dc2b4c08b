"""The item the spider yields and the pipelines refine."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from scrapy.http import Headers, Request, Response

    from legal_policy.minimisation import MinimisationRecord, MinimisedAd

# Request meta key: when the response arrived (UTC), stamped by ``crawler.warc``'s
# ``FetchTimeMiddleware``.
FETCHED_AT: Final = "adwatch_fetched_at"
# scrapy-playwright marks the requests it renders in a browser with this meta key.
RENDERED_META: Final = "playwright"
# The request meta keys an exchange keeps.
EXCHANGE_META: Final = (FETCHED_AT, RENDERED_META)


@dataclass(frozen=True, slots=True)
class SentRequest:
    """What adwatch sent for an exchange: request line, headers and body (no callbacks)."""

    url: str
    method: str
    headers: Headers
    body: bytes
    meta: dict[str, Any]

    @classmethod
    def of(cls, request: Request) -> SentRequest:
        """The parts of a Scrapy request that the evidence records and validators need."""
        return cls(
            url=request.url,
            method=request.method,
            headers=request.headers.copy(),
            body=request.body or b"",
            meta={key: request.meta[key] for key in EXCHANGE_META if key in request.meta},
        )


@dataclass(frozen=True, slots=True)
class Exchange:
    """An HTTP exchange without its response body: status, headers, request and peer.

    Plain data, so that it can travel to the store process; what was fetched must not
    travel beyond minimisation, and the evidence writer needs only the exchange around
    the payload that minimisation kept.
    """

    url: str
    status: int
    headers: Headers
    request: SentRequest | None
    ip_address: str | None = None
    protocol: str | None = None
    encoding: str | None = None

    @classmethod
    def of(cls, response: Response) -> Exchange:
        """The exchange of a Scrapy response, its body left behind."""
        ip_address = getattr(response, "ip_address", None)
        return cls(
            url=response.url,
            status=response.status,
            headers=response.headers.copy(),
            request=SentRequest.of(response.request) if response.request is not None else None,
            ip_address=str(ip_address) if ip_address is not None else None,
            protocol=getattr(response, "protocol", None),
            encoding=getattr(response, "encoding", None),
        )


@dataclass(slots=True)
class FetchedImage:
    """An image URL of an ad and what fetching and checking it gave."""

    url: str
    body: bytes | None = field(default=None, repr=False)
    phash: str | None = None
    phash_variants: list[str] = field(default_factory=list)
    dhashes: list[str] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    # The HTTP exchange it came from, for the evidence record: the whole response while
    # it is checked, its ``Exchange`` once minimised.
    response: Response | Exchange | None = field(default=None, repr=False)
    # True when the site said "not modified" and the bytes come from the blob store.
    stored: bool = False


@dataclass(slots=True)
class FoundPhone:
    """A phone number found in the ad: normalised and as written."""

    e164: str
    region: str
    raw: str


@dataclass(slots=True)
class AdCapture:
    """One ad page as captured: raw bytes plus extracted fields."""

    url: str
    raw_body: bytes
    title: str
    text: str
    city: str | None
    posted_at_raw: str | None
    phone_text: str | None
    images: list[FetchedImage] = field(default_factory=list)
    phones: list[FoundPhone] = field(default_factory=list)
    page_encoding: str | None = None
    # Captured field -> CSS selectors of the page elements holding it (for minimisation).
    field_selectors: dict[str, tuple[str, ...]] = field(default_factory=dict)
    third_party_selectors: tuple[str, ...] = ()
    # Read by extraction with the profile's date formats (aware, UTC).
    posted_at: datetime | None = None
    # Fields present but unreadable as the profile says (names and reasons, no content).
    field_problems: list[str] = field(default_factory=list)
    # The ad-level indicator model's score (an assessment), set when the ad is kept.
    indicator_score: float | None = None
    # The HTTP exchange of the ad page, for the evidence record (as for images).
    response: Response | Exchange | None = None
    # Filled by the minimisation stage; only these reach storage.
    minimised: MinimisedAd | None = None
    minimisation: MinimisationRecord | None = None

    def __repr__(self) -> str:
        # Never the content: Scrapy and tracebacks may print an item.
        return f"AdCapture(url={self.url!r})"
