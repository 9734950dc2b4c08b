"""The bundled synthetic demo ad site, served over HTTP on loopback only.

The markup is a contract: the bundled ``demo`` site profile selects on its class names
(``ul.ad-list a.ad-link``, ``a.next``, ``article.ad``, ``h1.ad-title`` …), so change them
only together with that profile. ``style="jsonld"`` serves the same ads the way the
``demo-jsonld`` profile expects instead (``adwatch.demo.jsonld_site``).
"""

from __future__ import annotations

import hashlib
import html
import ipaddress
import json
import re
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from adwatch.demo.content import (
    FAULT_HTTP_500,
    FAULT_MALFORMED,
    HELP_DESK_PHONE_DISPLAY,
    DemoAd,
    DemoReview,
    DemoSiteContent,
    generate_demo_content,
    human_date,
)
from adwatch.demo.jsonld_site import JsonLdSite

__all__ = [
    "BANNER",
    "ROBOTS_TXT",
    "SITE_NAME",
    "DemoServer",
    "make_demo_server",
    "running_demo_server",
    "running_demo_site",
    "serve_demo_site",
]

SITE_NAME = "Demo Escort Listings (synthetic)"
BANNER = "Synthetic demo site for adwatch — all content is generated"
ROBOTS_TXT = "User-agent: *\nDisallow: /private/\n"
PARTNER_URL = "http://partner.invalid/ads"

# "classic": the markup of the bundled demo profile; "jsonld": see adwatch.demo.jsonld_site.
DemoStyle = Literal["classic", "jsonld"]

_AD_PATH = re.compile(r"^/ad/([A-Za-z0-9_-]+)$")
_IMAGE_PATH = re.compile(r"^/images/([A-Za-z0-9_.-]+)$")


class DemoServer(ThreadingHTTPServer):
    """A threading HTTP server that knows the content it serves (``content`` is ground truth)."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        content: DemoSiteContent,
        *,
        page_size: int,
        verbose: bool,
        style: DemoStyle = "classic",
    ) -> None:
        self.content = content
        self.style = style
        self.page_size = page_size
        self.verbose = verbose
        self.ads_by_id = {ad.ad_id: ad for ad in content.ads}
        # What was asked and sent, for tests and benchmarks (path -> requests; body bytes).
        self.hits: Counter[str] = Counter()
        self.answers: Counter[tuple[str, int]] = Counter()
        self.bytes_sent = 0
        self._tally = threading.Lock()
        super().__init__(address, _DemoHandler)
        # Built once bound: its pages name the server's own URL (sitemaps, JSON-LD).
        self.jsonld_site = (
            JsonLdSite(content, self.base_url, page_size=page_size) if style == "jsonld" else None
        )

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the bound socket (IPv6 hosts in brackets)."""
        host, port = self.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _DemoServerV6(DemoServer):
    address_family = socket.AF_INET6


def _loopback_host(host: str) -> str:
    """Return the IP literal to bind, or refuse anything that is not loopback."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise ValueError(
            f"the demo site is served on loopback only; {host!r} is not a loopback IP address "
            "(use 127.0.0.1, ::1 or localhost)"
        ) from None
    if not address.is_loopback:
        raise ValueError(
            f"the demo site is served on loopback only; refusing to bind {host!r} "
            "(use 127.0.0.1, ::1 or localhost)"
        )
    return str(address)


def make_demo_server(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    seed: int = 7,
    n_ads: int = 40,
    faults: bool = False,
    page_size: int = 10,
    verbose: bool = False,
    style: DemoStyle = "classic",
) -> DemoServer:
    """Bind (but do not start) the demo site; ``port=0`` picks a free port.

    Raises ``ValueError`` for a host that is not a loopback address, a page size below one,
    an unknown ``style``, or faults asked of the ``jsonld`` style (it has none).
    """
    bind = _loopback_host(host)
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, got {page_size}")
    if style not in ("classic", "jsonld"):
        raise ValueError(f"style must be 'classic' or 'jsonld', got {style!r}")
    if faults and style != "classic":
        raise ValueError("faults are served by the classic style only")
    content = generate_demo_content(seed=seed, n_ads=n_ads, faults=faults)
    server_class = _DemoServerV6 if ":" in bind else DemoServer
    return server_class((bind, port), content, page_size=page_size, verbose=verbose, style=style)


def serve_demo_site(
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    seed: int = 7,
    n_ads: int = 40,
    faults: bool = False,
    style: DemoStyle = "classic",
) -> None:
    """Serve the demo site until interrupted; Ctrl-C stops it cleanly."""
    server = make_demo_server(host, port, seed=seed, n_ads=n_ads, faults=faults, style=style)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@contextmanager
def running_demo_server(**kwargs: Any) -> Iterator[DemoServer]:
    """Run the demo site in a background thread and yield the server (``.content``, ``.base_url``).

    Keyword arguments go to :func:`make_demo_server`; ``port`` defaults to a free one.
    """
    server = make_demo_server(**kwargs)
    thread = threading.Thread(target=server.serve_forever, name="adwatch-demo-site", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def running_demo_site(**kwargs: Any) -> Iterator[str]:
    """Run the demo site in a background thread and yield its base URL (``http://127.0.0.1:N``).

    Keyword arguments go to :func:`make_demo_server`; ``port`` defaults to a free one. The
    ground truth is ``generate_demo_content(seed, n_ads, faults)`` (deterministic), or use
    :func:`running_demo_server` to get the server and its ``content``.
    """
    with running_demo_server(**kwargs) as server:
        yield server.base_url


# --- HTML ---------------------------------------------------------------------------------


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _page(title: str, main: str) -> str:
    """The common layout: banner, main content, footer with boilerplate and trap links."""
    return f"""<!doctype html>
<html lang="nl">
<head>
<meta charset="utf-8">
<title>{_e(title)} | {_e(SITE_NAME)}</title>
</head>
<body>
<header class="site-header">
<p class="site-name"><a href="/ads?page=1">{_e(SITE_NAME)}</a></p>
<p class="banner">{_e(BANNER)}</p>
</header>
<main>
{main}
</main>
{_FOOTER}
</body>
</html>
"""


_FOOTER = f"""<footer class="site-footer">Questions about this site? Help desk: \
{HELP_DESK_PHONE_DISPLAY} (synthetic). <a href="/private/admin">Admin</a> · \
<a class="partner" href="{PARTNER_URL}">Partner site</a></footer>"""


def _list_page(ads: tuple[DemoAd, ...], page: int, has_next: bool, path: str) -> str:
    items = "\n".join(
        f'<li class="ad-teaser"><a class="ad-link" href="/ad/{_e(ad.ad_id)}">{_e(ad.title)}</a>'
        f' <span class="teaser-city">{_e(ad.city)}</span></li>'
        for ad in ads
    )
    nav = []
    if page > 1:
        nav.append(f'<a class="prev" rel="prev" href="{path}?page={page - 1}">Previous</a>')
    if has_next:
        nav.append(f'<a class="next" rel="next" href="{path}?page={page + 1}">Next</a>')
    main = f"""<h1>Ads – page {page}</h1>
<ul class="ad-list">
{items}
</ul>
<nav class="pagination">{" ".join(nav)}</nav>"""
    return _page(f"Ads, page {page}", main)


def _article_body(ad: DemoAd) -> str:
    """The inside of ``<article class="ad">``: the fields the site profile extracts."""
    paragraphs = "".join(f"<p>{_e(p)}</p>" for p in ad.text.split("\n\n"))
    images = "".join(
        f'<img class="ad-image" src="/images/{_e(name)}" alt="photo">' for name in ad.image_names
    )
    posted = ad.posted_at.isoformat()
    return f"""
  <h1 class="ad-title">{_e(ad.title)}</h1>
  <div class="ad-text">{paragraphs}</div>
  <span class="ad-city">{_e(ad.city)}</span>
  <time class="ad-posted" datetime="{posted}">{_e(human_date(ad.posted_at))}</time>
  <span class="ad-phone">{_e(ad.phone_display)}</span>
  <div class="ad-images">{images}</div>
"""


def _reviews_section(reviews: tuple[DemoReview, ...]) -> str:
    if not reviews:
        return '<section class="reviews"><h2>Reviews</h2><p>No reviews yet.</p></section>'
    items = "".join(
        f'<div class="review"><span class="review-author">{_e(r.author)}</span> '
        f"<p>{_e(r.text)}</p></div>"
        for r in reviews
    )
    return f'<section class="reviews"><h2>Reviews</h2>{items}</section>'


def _ad_page(ad: DemoAd, reviews: tuple[DemoReview, ...]) -> str:
    article = f'<article class="ad" data-ad-id="{_e(ad.ad_id)}">{_article_body(ad)}</article>'
    return _page(ad.title, f"{article}\n{_reviews_section(reviews)}")


# Builds the same markup as _article_body with DOM calls (textContent, so no HTML injection).
_JS_BEACON = (
    'try { fetch("' + PARTNER_URL + '/beacon", {method: "POST", body: "seen"}); } catch (e) {}'
)

_JS_RENDER = """
(function () {
  var ad = %s;
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  setTimeout(function () {
    var article = document.querySelector("article.ad");
    article.appendChild(el("h1", "ad-title", ad.title));
    var text = el("div", "ad-text");
    ad.paragraphs.forEach(function (p) { text.appendChild(el("p", null, p)); });
    article.appendChild(text);
    article.appendChild(el("span", "ad-city", ad.city));
    var posted = el("time", "ad-posted", ad.posted_human);
    posted.setAttribute("datetime", ad.posted_at);
    article.appendChild(posted);
    article.appendChild(el("span", "ad-phone", ad.phone));
    var images = el("div", "ad-images");
    ad.images.forEach(function (src) {
      var img = el("img", "ad-image");
      img.setAttribute("src", src);
      img.setAttribute("alt", "photo");
      images.appendChild(img);
    });
    article.appendChild(images);
  }, 50);
})();
"""


def _script_json(data: dict[str, Any]) -> str:
    """JSON that is safe inside ``<script>``: no ``</script>``, no HTML-significant chars."""
    text = json.dumps(data, ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _js_ad_page(ad: DemoAd, reviews: tuple[DemoReview, ...]) -> str:
    data = {
        "title": ad.title,
        "paragraphs": ad.text.split("\n\n"),
        "city": ad.city,
        "posted_at": ad.posted_at.isoformat(),
        "posted_human": human_date(ad.posted_at),
        "phone": ad.phone_display,
        "images": [f"/images/{name}" for name in ad.image_names],
    }
    script = _JS_RENDER % _script_json(data)
    # The article is empty on purpose: a crawler without JavaScript sees no ad here. Like a
    # real site, the page also loads a third party's tracker and sends it a beacon: a
    # browser that renders it for adwatch must refuse both (they are off the allowlist).
    main = (
        f'<article class="ad" data-ad-id="{_e(ad.ad_id)}"></article>\n'
        f"<script>{script}</script>\n"
        f'<script async src="{PARTNER_URL}/tracker.js"></script>\n'
        f"<script>{_JS_BEACON}</script>\n{_reviews_section(reviews)}"
    )
    return _page("Advertentie", main)


def _malformed_ad_page(ad: DemoAd) -> str:
    """A truncated page: no ``<title>``, no ``h1.ad-title``, unclosed tags, cut mid-attribute."""
    paragraphs = "".join(f"<p>{_e(p)}" for p in ad.text.split("\n\n"))
    first_image = _e(ad.image_names[0]) if ad.image_names else "x.jpg"
    return (
        '<!doctype html>\n<html lang="nl"><head><meta charset="utf-8">\n<body>\n'
        f'<header class="site-header"><p class="banner">{_e(BANNER)}\n'
        f'<main><article class="ad" data-ad-id="{_e(ad.ad_id)}">\n'
        f'<div class="ad-text">{paragraphs}\n'
        f'<span class="ad-city">{_e(ad.city)}\n'
        f'<span class="ad-phone">{_e(ad.phone_display)}\n'
        f'<div class="ad-images"><img class="ad-image" src="/images/{first_image[:4]}'
    )


def _simple_page(title: str, message: str) -> str:
    return _page(title, f"<h1>{_e(title)}</h1>\n<p>{_e(message)}</p>")


# --- request handling ---------------------------------------------------------------------


class _DemoHandler(BaseHTTPRequestHandler):
    server: DemoServer
    server_version = "adwatch-demo/1.0"

    def do_GET(self) -> None:
        self._dispatch(send_body=True)

    def do_HEAD(self) -> None:
        self._dispatch(send_body=False)

    def log_message(self, format: str, *args: Any) -> None:
        # One stderr line per request drowns test and crawl output; opt in with verbose.
        if self.server.verbose:
            super().log_message(format, *args)

    def _dispatch(self, *, send_body: bool) -> None:
        url = urlsplit(self.path)
        path = url.path
        if self.server.jsonld_site is not None:
            reply = self.server.jsonld_site.respond(path, parse_qs(url.query))
            self._send(reply.status, reply.body, reply.content_type, send_body)
            return
        if path == "/":
            self._send(HTTPStatus.FOUND, b"", "text/plain", send_body, location="/ads?page=1")
        elif path == "/robots.txt":
            self._send(HTTPStatus.OK, ROBOTS_TXT.encode(), "text/plain", send_body)
        elif path in ("/ads", "/ads/js"):
            self._list(path, parse_qs(url.query).get("page", ["1"])[-1], send_body)
        elif path == "/private/admin":
            self._html(HTTPStatus.OK, _simple_page("Admin", "admin area"), send_body)
        elif match := _AD_PATH.match(path):
            self._ad(match.group(1), send_body)
        elif match := _IMAGE_PATH.match(path):
            self._image(match.group(1), send_body)
        else:
            self._not_found(send_body)

    def _list(self, path: str, raw_page: str, send_body: bool) -> None:
        ads = self.server.content.listed_ads(javascript=path == "/ads/js")
        size = self.server.page_size
        last_page = max(1, -(-len(ads) // size))
        page = int(raw_page) if raw_page.isdigit() else 0
        if not 1 <= page <= last_page:
            self._not_found(send_body)
            return
        chunk = ads[(page - 1) * size : page * size]
        self._html(HTTPStatus.OK, _list_page(chunk, page, page < last_page, path), send_body)

    def _ad(self, ad_id: str, send_body: bool) -> None:
        ad = self.server.ads_by_id.get(ad_id)
        if ad is None:
            self._not_found(send_body)
            return
        reviews = self.server.content.reviews.get(ad_id, ())
        if ad_id == FAULT_HTTP_500:
            page = _simple_page("Internal Server Error", "Something went wrong (synthetic fault).")
            self._html(HTTPStatus.INTERNAL_SERVER_ERROR, page, send_body)
        elif ad_id == FAULT_MALFORMED:
            self._html(HTTPStatus.OK, _malformed_ad_page(ad), send_body)
        elif ad.requires_js:
            self._html(HTTPStatus.OK, _js_ad_page(ad, reviews), send_body)
        else:
            self._html(HTTPStatus.OK, _ad_page(ad, reviews), send_body)

    def _image(self, name: str, send_body: bool) -> None:
        images = self.server.content.images
        if name not in images:
            self._not_found(send_body)
            return
        # Fault images are served as image/jpeg too: that is the point of the fault.
        self._send(HTTPStatus.OK, images[name], "image/jpeg", send_body)

    def _not_found(self, send_body: bool) -> None:
        page = _simple_page("Not found", "There is no such page on this demo site.")
        self._html(HTTPStatus.NOT_FOUND, page, send_body)

    def _html(self, status: HTTPStatus, page: str, send_body: bool) -> None:
        self._send(status, page.encode("utf-8"), "text/html; charset=utf-8", send_body)

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        send_body: bool,
        *,
        location: str | None = None,
    ) -> None:
        # Validators like a real site's: a recrawl may ask "changed since?" (ETag).
        etag = f'"{hashlib.sha256(body).hexdigest()[:20]}"' if status == HTTPStatus.OK else None
        if etag is not None and self.headers.get("If-None-Match") == etag:
            status, body = HTTPStatus.NOT_MODIFIED, b""
        with self.server._tally:
            self.server.hits[urlsplit(self.path).path] += 1
            self.server.answers[(urlsplit(self.path).path, int(status))] += 1
            self.server.bytes_sent += len(body) if send_body else 0
        self.send_response(status)
        if status != HTTPStatus.NOT_MODIFIED:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        if etag is not None:
            self.send_header("ETag", etag)
        if location is not None:
            self.send_header("Location", location)
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)
