"""A hostile variant of the demo site: every way a page tries to take the crawler off its
allowlist, and every way a request can fail, served on loopback beside an "off-list host".

Two servers on 127.0.0.1: the site (which the ``demo`` profile is pointed at) and another
port standing for any host the authorisation does not name. The off-list host answers
everything with 200 and records every request it gets, so a test can prove it got none.
The site records every request too (with its headers: a cookie sent back shows there).

Its pages use the demo site's markup contract (``article.ad``, ``h1.ad-title`` …) with
synthetic content from ``adwatch.demo.content``. ``HOSTILE_VARIANTS`` is the ground truth:
per page, whether the ad must be kept and which problem kinds it must cause.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from adwatch.demo.content import BAD_IMAGE_BYTES, DemoAd, DemoSiteContent, generate_demo_content

__all__ = [
    "HOSTILE_VARIANTS",
    "HostileSite",
    "RecordedRequest",
    "Variant",
    "running_hostile_site",
]

ROBOTS_TXT = "User-agent: *\nDisallow: /private/\nDisallow: /ad/h-robots\n"
AGE_COOKIE = "age_ok=1"
SESSION_COOKIE = "adwatch_demo_session=synthetic-0001"
# Announced by the too-large page (the crawler's DOWNLOAD_MAXSIZE is 32 MiB).
TOO_LARGE_BYTES = 64 * 1024 * 1024
SLOW_SECONDS = 1.5


@dataclass(frozen=True, slots=True)
class Variant:
    """One hostile page: what it tries, whether its ad must be kept, what it must report.

    ``images_kept`` is how many of the ad's images must be stored when it is kept;
    ``problems`` lists the problem kinds the page must cause (with repeats).
    """

    ad_id: str
    tries: str
    kept: bool
    problems: tuple[str, ...] = ()
    images_kept: int = 0
    kept_with_cookies: bool | None = None  # None: the same with cookies on


HOSTILE_VARIANTS: tuple[Variant, ...] = (
    Variant("h-plain", "nothing: a healthy ad among hostile ones", True, (), 2),
    Variant(
        "h-offsite-images",
        "an image on the off-list host, and an on-list image that redirects off-list",
        True,
        ("refused", "refused"),
        1,
    ),
    Variant("h-base-href", "<base href> on the off-list host", True, ("refused",), 2),
    Variant(
        "h-meta-refresh", "<meta http-equiv=refresh> to the off-list host", True, ("refused",), 1
    ),
    Variant("h-redirect-301", "301 to the off-list host", False, ("refused",)),
    Variant("h-redirect-302", "302 to the off-list host", False, ("refused",)),
    Variant("h-redirect-307", "307 to the off-list host", False, ("refused",)),
    Variant("h-redirect-loop", "a redirect loop between two pages", False, ("redirect_loop",)),
    Variant("h-robots", "a page robots.txt disallows", False, ("robots",)),
    Variant("h-too-large", "a response announced at 64 MiB", False, ("too_large",)),
    Variant("h-gone", "an HTTP error (410 Gone)", False, ("http_error",)),
    Variant("h-slow", f"an answer after {SLOW_SECONDS} s", True, (), 1),
    Variant(
        "h-third-party",
        "script, iframe, stylesheet, form and tracking pixel on the off-list host",
        True,
        (),
        1,
    ),
    Variant(
        "h-broken-images",
        "an image that is missing (404) and one that is not an image",
        True,
        ("image_unavailable", "bad_image"),
        1,
    ),
    Variant("h-cookie", "a page that sets a cookie", True, (), 1),
    Variant(
        "h-age-gate",
        "an age gate: a redirect that sets a cookie and sends the crawler back",
        False,
        ("redirect_loop",),
        1,
        kept_with_cookies=True,
    ),
    Variant("h-elsewhere", "an ad link to the off-list host", False, ("refused",)),
)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request a server received: method, path (with query) and headers."""

    method: str
    path: str
    headers: dict[str, str]


class _RecordingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.received: list[RecordedRequest] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), handler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def record(self, request: RecordedRequest) -> None:
        with self.lock:
            self.received.append(request)


class _SiteServer(_RecordingServer):
    def __init__(self, content: DemoSiteContent, offlist_url: str) -> None:
        self.content = content
        self.offlist_url = offlist_url
        ads = content.static_ads
        if len(ads) < len(HOSTILE_VARIANTS):
            raise ValueError(f"need {len(HOSTILE_VARIANTS)} healthy demo ads, got {len(ads)}")
        # Each variant shows one synthetic ad of its own; those that show two photos get
        # an ad that has two.
        pool = list(ads)
        self.ads: dict[str, DemoAd] = {}
        for variant in HOSTILE_VARIANTS:
            wanted = 2 if variant.images_kept >= 2 else 1
            ad = next(a for a in pool if len(a.image_names) >= wanted)
            pool.remove(ad)
            self.ads[variant.ad_id] = ad
        super().__init__(_SiteHandler)


@dataclass
class HostileSite:
    """The running hostile site and its off-list neighbour, with what each received."""

    base_url: str
    offlist_url: str
    content: DemoSiteContent
    ads: dict[str, DemoAd]
    _site: _RecordingServer = field(repr=False)
    _offlist: _RecordingServer = field(repr=False)

    @property
    def site_requests(self) -> list[RecordedRequest]:
        """Every request the site received, in order."""
        with self._site.lock:
            return list(self._site.received)

    @property
    def offlist_requests(self) -> list[RecordedRequest]:
        """Every request the off-list host received (a correct crawl sends none)."""
        with self._offlist.lock:
            return list(self._offlist.received)


@contextmanager
def running_hostile_site(*, seed: int = 5, n_ads: int = 40) -> Iterator[HostileSite]:
    """Serve the hostile site and the off-list host on free loopback ports, in threads."""
    offlist = _RecordingServer(_OffListHandler)
    content = generate_demo_content(seed=seed, n_ads=n_ads, faults=False)
    site = _SiteServer(content, offlist.base_url)
    threads = [
        threading.Thread(target=s.serve_forever, name=f"adwatch-hostile-{i}", daemon=True)
        for i, s in enumerate((site, offlist))
    ]
    for thread in threads:
        thread.start()
    try:
        yield HostileSite(site.base_url, offlist.base_url, content, site.ads, site, offlist)
    finally:
        for server in (site, offlist):
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(timeout=5)


# --- pages ----------------------------------------------------------------------------------


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _page(title: str, main: str, head: str = "") -> str:
    return (
        f'<!doctype html>\n<html lang="nl">\n<head>\n<meta charset="utf-8">\n{head}'
        f"<title>{_e(title)} | hostile demo (synthetic)</title>\n</head>\n<body>\n"
        f"<main>\n{main}\n</main>\n</body>\n</html>\n"
    )


def _article(ad: DemoAd, image_srcs: list[str]) -> str:
    paragraphs = "".join(f"<p>{_e(p)}</p>" for p in ad.text.split("\n\n"))
    images = "".join(f'<img class="ad-image" src="{_e(src)}" alt="photo">' for src in image_srcs)
    return (
        f'<article class="ad" data-ad-id="{_e(ad.ad_id)}">\n'
        f'  <h1 class="ad-title">{_e(ad.title)}</h1>\n'
        f'  <div class="ad-text">{paragraphs}</div>\n'
        f'  <span class="ad-city">{_e(ad.city)}</span>\n'
        f'  <time class="ad-posted" datetime="{ad.posted_at.isoformat()}">posted</time>\n'
        f'  <span class="ad-phone">{_e(ad.phone_display)}</span>\n'
        f'  <div class="ad-images">{images}</div>\n'
        "</article>"
    )


def _list_page(offlist_url: str) -> str:
    links = [f"/ad/{v.ad_id}" for v in HOSTILE_VARIANTS if v.ad_id != "h-elsewhere"]
    links.append(f"{offlist_url}/ad/h-elsewhere")
    items = "\n".join(f'<li><a class="ad-link" href="{_e(href)}">ad</a></li>' for href in links)
    return _page("Ads", f'<ul class="ad-list">\n{items}\n</ul>')


_TWO = {v.ad_id for v in HOSTILE_VARIANTS if v.images_kept >= 2}


def _ad_page(server: _SiteServer, ad_id: str) -> str:
    ad = server.ads[ad_id]
    own = f"/images/{ad.image_names[0]}"
    off = server.offlist_url
    head = ""
    extra = ""
    images = [f"/images/{name}" for name in ad.image_names[:2]] if ad_id in _TWO else [own]
    if ad_id == "h-offsite-images":
        images = [f"{off}/images/{ad.image_names[0]}", own, "/images/moved.jpg"]
    elif ad_id == "h-base-href":
        head = f'<base href="{_e(off)}/">\n'
    elif ad_id == "h-meta-refresh":
        head = f'<meta http-equiv="refresh" content="0; url={_e(off)}/ad/elsewhere">\n'
    elif ad_id == "h-third-party":
        head = (
            f'<script src="{_e(off)}/track.js"></script>\n'
            f'<link rel="stylesheet" href="{_e(off)}/style.css">\n'
        )
        extra = (
            f'<iframe src="{_e(off)}/frame"></iframe>\n'
            f'<form action="{_e(off)}/contact" method="post"><input name="m"></form>\n'
            f'<img src="{_e(off)}/pixel.gif" alt="">\n'
        )
    elif ad_id == "h-broken-images":
        images = ["/images/missing.jpg", "/images/not-an-image.jpg", own]
    return _page(ad.title, f"{_article(ad, images)}\n{extra}", head)


class _SiteHandler(BaseHTTPRequestHandler):
    server: _SiteServer
    server_version = "adwatch-hostile/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one stderr line per request would drown the test output

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def _respond(self, *, send_body: bool) -> None:
        self.server.record(RecordedRequest(self.command, self.path, dict(self.headers.items())))
        url = urlsplit(self.path)
        path, off = url.path, self.server.offlist_url
        cookies = self.headers.get("Cookie", "")
        if path == "/robots.txt":
            self._send(HTTPStatus.OK, ROBOTS_TXT.encode(), "text/plain", send_body)
        elif path == "/ads":
            self._html(_list_page(off), send_body)
        elif path in ("/ad/h-redirect-301", "/ad/h-redirect-302", "/ad/h-redirect-307"):
            status = HTTPStatus(int(path.rsplit("-", 1)[1]))
            self._redirect(status, f"{off}/ad/moved-{status.value}", send_body)
        elif path == "/ad/h-redirect-loop":
            self._redirect(HTTPStatus.FOUND, "/ad/h-loop-b", send_body)
        elif path == "/ad/h-loop-b":
            self._redirect(HTTPStatus.FOUND, "/ad/h-redirect-loop", send_body)
        elif path == "/ad/h-too-large":
            self._too_large(announce=True)
        elif path == "/ad/h-endless":  # not linked: a body with no length that never ends
            self._too_large(announce=False)
        elif path == "/ad/h-gone":
            self._send(HTTPStatus.GONE, b"gone", "text/plain", send_body)
        elif path == "/ad/h-age-gate" and AGE_COOKIE not in cookies:
            self._redirect(HTTPStatus.FOUND, "/age-gate?next=/ad/h-age-gate", send_body)
        elif path == "/age-gate":
            target = parse_qs(url.query).get("next", ["/ads"])[0]
            self._redirect(HTTPStatus.FOUND, target, send_body, cookie=f"{AGE_COOKIE}; Path=/")
        elif path.startswith("/ad/") and path[4:] in self.server.ads:
            if path == "/ad/h-slow":
                time.sleep(SLOW_SECONDS)
            cookie = f"{SESSION_COOKIE}; Path=/" if path == "/ad/h-cookie" else None
            self._html(_ad_page(self.server, path[4:]), send_body, cookie=cookie)
        elif path == "/images/moved.jpg":
            self._redirect(HTTPStatus.FOUND, f"{off}/images/moved.jpg", send_body)
        elif path == "/images/not-an-image.jpg":
            self._send(HTTPStatus.OK, BAD_IMAGE_BYTES, "image/jpeg", send_body)
        elif path.startswith("/images/") and path[8:] in self.server.content.images:
            self._send(HTTPStatus.OK, self.server.content.images[path[8:]], "image/jpeg", send_body)
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain", send_body)

    def _too_large(self, *, announce: bool) -> None:
        # Far more than the crawler accepts: announced, it must hang up after the headers;
        # unannounced (ended by closing the connection), once it has read its limit.
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        if announce:
            self.send_header("Content-Length", str(TOO_LARGE_BYTES))
        self.end_headers()
        chunk = b"<p>" + b"x" * 65_533
        try:
            for _ in range(TOO_LARGE_BYTES // len(chunk)):
                self.wfile.write(chunk)
        except OSError:
            pass  # the crawler hung up, as it should
        self.close_connection = True

    def _html(self, page: str, send_body: bool, *, cookie: str | None = None) -> None:
        body = page.encode("utf-8")
        self._send(HTTPStatus.OK, body, "text/html; charset=utf-8", send_body, cookie=cookie)

    def _redirect(
        self, status: HTTPStatus, location: str, send_body: bool, *, cookie: str | None = None
    ) -> None:
        self._send(status, b"", "text/plain", send_body, location=location, cookie=cookie)

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        send_body: bool,
        *,
        location: str | None = None,
        cookie: str | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if location is not None:
            self.send_header("Location", location)
        if cookie is not None:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        if send_body:
            self.wfile.write(body)


class _OffListHandler(BaseHTTPRequestHandler):
    """Any host the authorisation does not name: answers everything, records everything."""

    server: _RecordingServer
    server_version = "adwatch-offlist/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        self.server.record(RecordedRequest(self.command, self.path, dict(self.headers.items())))
        body = _page("Off-list", "<h1>You should not be here</h1>").encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_CONNECT = _answer
