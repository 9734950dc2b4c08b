"""The demo site over real HTTP on loopback: URL contract, markup contract, faults, refusals."""

from __future__ import annotations

import io
import json
import re
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from html.parser import HTMLParser

import pytest
from PIL import Image

from adwatch.demo.content import (
    BAD_IMAGE_NAME,
    FAULT_AD_IDS,
    FAULT_BAD_IMAGE,
    FAULT_HTTP_500,
    FAULT_MALFORMED,
    DemoAd,
    generate_demo_content,
    human_date,
)
from adwatch.demo.site import (
    BANNER,
    PARTNER_URL,
    SITE_NAME,
    DemoServer,
    make_demo_server,
    running_demo_server,
    running_demo_site,
)

# --- helpers ------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def fetch(url: str, method: str = "GET") -> Reply:
    """One real HTTP request; error statuses are returned, not raised; redirects not followed."""
    request = urllib.request.Request(url, method=method)
    try:
        with _OPENER.open(request, timeout=10) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, error.headers, error.read())


_VOID = {"img", "meta", "br", "hr", "link", "input"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    parent: Node | None = None
    children: list[Node | str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def walk(self) -> Iterator[Node]:
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.walk()

    def select(self, tag: str, cls: str | None = None) -> list[Node]:
        return [n for n in self.walk() if n.tag == tag and (cls is None or cls in n.classes)]

    def one(self, tag: str, cls: str | None = None) -> Node:
        found = self.select(tag, cls)
        assert len(found) == 1, (tag, cls, len(found))
        return found[0]


class _TreeBuilder(HTMLParser):
    """Just enough of an HTML tree to check the selectors the site profile relies on."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.stack[-1])
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def list_links(page: Node) -> list[str]:
    return [a.attrs["href"] for a in page.one("ul", "ad-list").select("a", "ad-link")]


def crawl_list(base: str, path: str) -> tuple[list[str], int]:
    """Follow ``a.next`` from page 1; return the ad links in order and the number of pages."""
    url: str | None = f"{base}{path}?page=1"
    links: list[str] = []
    pages = 0
    while url:
        reply = fetch(url)
        assert reply.status == 200, url
        page = parse(reply.text)
        links += list_links(page)
        pages += 1
        following = page.select("a", "next")
        url = f"{base}{following[0].attrs['href']}" if following else None
    return links, pages


def assert_article_matches(article: Node, ad: DemoAd) -> None:
    assert article.attrs["data-ad-id"] == ad.ad_id
    assert article.one("h1", "ad-title").text() == ad.title
    paragraphs = [p.text() for p in article.one("div", "ad-text").select("p")]
    assert paragraphs == ad.text.split("\n\n")
    assert article.one("span", "ad-city").text() == ad.city
    posted = article.one("time", "ad-posted")
    assert posted.attrs["datetime"] == ad.posted_at.isoformat()
    assert posted.text() == human_date(ad.posted_at)
    assert article.one("span", "ad-phone").text() == ad.phone_display
    images = [img.attrs["src"] for img in article.one("div", "ad-images").select("img")]
    assert images == [f"/images/{name}" for name in ad.image_names]


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[DemoServer]:
    with running_demo_server(seed=7, n_ads=40) as running:
        yield running


@pytest.fixture(scope="module")
def faulty() -> Iterator[DemoServer]:
    with running_demo_server(seed=7, n_ads=40, faults=True) as running:
        yield running


# --- plain site ---------------------------------------------------------------------------


def test_running_demo_site_yields_a_loopback_base_url_and_stops() -> None:
    with running_demo_site(seed=3, n_ads=8) as base:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base)
        assert fetch(f"{base}/robots.txt").status == 200
        port = int(base.rsplit(":", 1)[1])
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_server_exposes_its_ground_truth(server: DemoServer) -> None:
    assert server.content.ads == generate_demo_content(seed=7, n_ads=40).ads
    assert server.base_url.startswith("http://127.0.0.1:")


def test_robots_txt(server: DemoServer) -> None:
    reply = fetch(f"{server.base_url}/robots.txt")
    assert reply.status == 200
    assert reply.headers.get_content_type() == "text/plain"
    assert reply.text == "User-agent: *\nDisallow: /private/\n"


def test_root_redirects_to_the_first_list_page(server: DemoServer) -> None:
    reply = fetch(f"{server.base_url}/")
    assert reply.status == 302
    assert reply.headers["Location"] == "/ads?page=1"


def test_pagination_lists_every_static_ad_exactly_once(server: DemoServer) -> None:
    links, pages = crawl_list(server.base_url, "/ads")
    expected = [f"/ad/{ad.ad_id}" for ad in server.content.static_ads]
    assert sorted(links) == sorted(expected)
    assert len(links) == len(set(links))
    assert pages == -(-len(expected) // 10)
    assert not any(ad.requires_js for ad in server.content.ads if f"/ad/{ad.ad_id}" in links)
    assert fetch(f"{server.base_url}/ads?page={pages + 1}").status == 404


@pytest.mark.parametrize("query", ["page=0", "page=-1", "page=abc", "page=999"])
def test_bad_list_pages_are_404(server: DemoServer, query: str) -> None:
    assert fetch(f"{server.base_url}/ads?{query}").status == 404


def test_list_page_markup(server: DemoServer) -> None:
    reply = fetch(f"{server.base_url}/ads?page=1")
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert reply.text.startswith("<!doctype html>")
    assert '<meta charset="utf-8">' in reply.text
    page = parse(reply.text)
    assert SITE_NAME in page.one("title").text()
    assert page.one("p", "banner").text() == BANNER
    teasers = page.one("ul", "ad-list").select("li", "ad-teaser")
    assert len(teasers) == 10
    first = server.content.static_ads[0]
    assert teasers[0].one("a", "ad-link").text() == first.title
    assert teasers[0].one("span", "teaser-city").text() == first.city
    following = page.one("a", "next")
    assert following.attrs == {"class": "next", "rel": "next", "href": "/ads?page=2"}
    footer = page.one("footer", "site-footer")
    hrefs = {a.attrs["href"] for a in footer.select("a")}
    assert {"/private/admin", "http://partner.invalid/ads"} <= hrefs
    assert footer.one("a", "partner").text() == "Partner site"


def test_last_list_page_has_no_next_link(server: DemoServer) -> None:
    _, pages = crawl_list(server.base_url, "/ads")
    page = parse(fetch(f"{server.base_url}/ads?page={pages}").text)
    assert page.select("a", "next") == []


def test_every_static_ad_page_carries_its_fields(server: DemoServer) -> None:
    for ad in server.content.static_ads:
        reply = fetch(f"{server.base_url}/ad/{ad.ad_id}")
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
        page = parse(reply.text)
        assert ad.title in page.one("title").text()
        assert_article_matches(page.one("article", "ad"), ad)
        # Reviews and the help desk number live outside the article.
        reviews = page.one("section", "reviews")
        assert reviews.one("h2").text() == "Reviews"
        assert "+44 20 7946 0999" in page.one("footer", "site-footer").text()
        assert "+44 20 7946 0999" not in page.one("article", "ad").text()


def test_reviews_are_served_outside_the_article(server: DemoServer) -> None:
    with_reviews = [ad for ad in server.content.static_ads if server.content.reviews[ad.ad_id]]
    assert with_reviews
    ad = with_reviews[0]
    page = parse(fetch(f"{server.base_url}/ad/{ad.ad_id}").text)
    authors = [n.text() for n in page.one("section", "reviews").select("span", "review-author")]
    assert authors == [r.author for r in server.content.reviews[ad.ad_id]]
    assert not page.one("article", "ad").select("div", "review")


def test_images_are_served_as_jpeg(server: DemoServer) -> None:
    names = sorted({name for ad in server.content.ads for name in ad.image_names})
    for name in names:
        reply = fetch(f"{server.base_url}/images/{name}")
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "image/jpeg"
        assert reply.body == server.content.images[name]
        Image.open(io.BytesIO(reply.body)).verify()


@pytest.mark.parametrize(
    "path", ["/ad/a9999", "/ad/nope", "/images/missing.jpg", "/nowhere", "/ads/", "/ad/"]
)
def test_unknown_paths_are_404(server: DemoServer, path: str) -> None:
    reply = fetch(f"{server.base_url}{path}")
    assert reply.status == 404
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"


def test_private_admin_exists_for_the_robots_check(server: DemoServer) -> None:
    reply = fetch(f"{server.base_url}/private/admin")
    assert reply.status == 200
    assert "admin area" in reply.text


def test_head_sends_headers_only(server: DemoServer) -> None:
    reply = fetch(f"{server.base_url}/ads?page=1", method="HEAD")
    assert reply.status == 200
    assert reply.body == b""
    assert int(reply.headers["Content-Length"]) > 0


def test_requests_are_not_logged_unless_verbose(
    server: DemoServer, capfd: pytest.CaptureFixture[str]
) -> None:
    fetch(f"{server.base_url}/ads?page=1")
    fetch(f"{server.base_url}/nowhere")
    assert capfd.readouterr().err == ""


# --- JavaScript-only ads ------------------------------------------------------------------


def test_js_ads_are_listed_only_on_their_own_list(server: DemoServer) -> None:
    links, _ = crawl_list(server.base_url, "/ads/js")
    assert sorted(links) == sorted(f"/ad/{ad.ad_id}" for ad in server.content.js_ads)
    static_links, _ = crawl_list(server.base_url, "/ads")
    assert set(links).isdisjoint(static_links)


def test_js_ad_pages_have_an_empty_article_in_the_raw_html(server: DemoServer) -> None:
    assert server.content.js_ads
    for ad in server.content.js_ads:
        reply = fetch(f"{server.base_url}/ad/{ad.ad_id}")
        assert reply.status == 200
        page = parse(reply.text)
        article = page.one("article", "ad")
        assert article.children == []
        assert ad.title not in page.one("title").text()
        script = _render_script(page)
        assert re.search(r"setTimeout\(function \(\) \{.*\}, 50\)", script.text(), re.S)
        assert "</" not in script.text()
        # Like a real site it loads a third party's tracker and sends it a beacon (which a
        # browser rendering the page for adwatch must refuse).
        loaded = [s.attrs["src"] for s in page.select("script") if "src" in s.attrs]
        assert loaded == [f"{PARTNER_URL}/tracker.js"]
        assert any("/beacon" in s.text() for s in page.select("script"))


def _render_script(page: Node) -> Node:
    """The inline script that renders the ad (not the tracker, not the beacon)."""
    found = [s for s in page.select("script") if "src" not in s.attrs and "setTimeout" in s.text()]
    assert len(found) == 1
    return found[0]


_FAKE_DOM = """
const nodes = [];
function make(tag) {
  const node = {tag, className: "", textContent: "", attrs: {}, children: [],
    appendChild(child) { this.children.push(child); },
    setAttribute(key, value) { this.attrs[key] = value; }};
  return node;
}
const article = make("article");
globalThis.document = {
  createElement: make,
  querySelector: (sel) => (sel === "article.ad" ? article : null),
};
const script = require("fs").readFileSync(0, "utf8");
eval(script);
setTimeout(() => console.log(JSON.stringify(article)), 200);
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_js_ad_script_fills_the_article_with_the_same_fields(server: DemoServer) -> None:
    ad = server.content.js_ads[0]
    script = _render_script(parse(fetch(f"{server.base_url}/ad/{ad.ad_id}").text)).text()
    done = subprocess.run(
        ["node", "-e", _FAKE_DOM], input=script, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    filled = json.loads(done.stdout)
    by_class = {child["className"]: child for child in filled["children"]}
    assert by_class["ad-title"]["textContent"] == ad.title
    paragraphs = [p["textContent"] for p in by_class["ad-text"]["children"]]
    assert paragraphs == ad.text.split("\n\n")
    assert by_class["ad-city"]["textContent"] == ad.city
    assert by_class["ad-posted"]["attrs"]["datetime"] == ad.posted_at.isoformat()
    assert by_class["ad-phone"]["textContent"] == ad.phone_display
    sources = [img["attrs"]["src"] for img in by_class["ad-images"]["children"]]
    assert sources == [f"/images/{name}" for name in ad.image_names]


# --- faults -------------------------------------------------------------------------------


def test_faults_are_listed_on_page_one(faulty: DemoServer) -> None:
    links = list_links(parse(fetch(f"{faulty.base_url}/ads?page=1").text))
    assert {f"/ad/{ad_id}" for ad_id in FAULT_AD_IDS} <= set(links)
    all_links, _ = crawl_list(faulty.base_url, "/ads")
    expected = [f"/ad/{ad.ad_id}" for ad in faulty.content.listed_ads()]
    assert sorted(all_links) == sorted(expected)


def test_fault_malformed_page_has_no_title(faulty: DemoServer) -> None:
    reply = fetch(f"{faulty.base_url}/ad/{FAULT_MALFORMED}")
    assert reply.status == 200
    assert "<title" not in reply.text
    assert "ad-title" not in reply.text
    assert "</html>" not in reply.text


def test_fault_bad_image_is_served_as_jpeg_but_is_not_one(faulty: DemoServer) -> None:
    ad = faulty.content.ad(FAULT_BAD_IMAGE)
    assert ad is not None
    page = parse(fetch(f"{faulty.base_url}/ad/{FAULT_BAD_IMAGE}").text)
    assert_article_matches(page.one("article", "ad"), ad)
    reply = fetch(f"{faulty.base_url}/images/{BAD_IMAGE_NAME}")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "image/jpeg"
    with pytest.raises(OSError):
        Image.open(io.BytesIO(reply.body))
    good = [name for name in ad.image_names if name != BAD_IMAGE_NAME]
    assert good and fetch(f"{faulty.base_url}/images/{good[0]}").status == 200


def test_fault_error_returns_500(faulty: DemoServer) -> None:
    assert fetch(f"{faulty.base_url}/ad/{FAULT_HTTP_500}").status == 500


def test_no_faults_without_faults_mode(server: DemoServer) -> None:
    for ad_id in FAULT_AD_IDS:
        assert fetch(f"{server.base_url}/ad/{ad_id}").status == 404
    assert fetch(f"{server.base_url}/images/{BAD_IMAGE_NAME}").status == 404


# --- binding ------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "10.0.0.1", "example.org", "::", ""])
def test_non_loopback_hosts_are_refused(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        make_demo_server(host, 0)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_hosts_are_accepted(host: str) -> None:
    server = make_demo_server(host, 0)
    try:
        assert str(server.server_address[0]).startswith("127.")
    finally:
        server.server_close()


def test_ipv6_loopback_is_accepted_when_available() -> None:
    try:
        server = make_demo_server("::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert server.base_url.startswith("http://[::1]:")
    finally:
        server.server_close()


def test_page_size_is_honoured() -> None:
    with running_demo_server(seed=4, n_ads=12, page_size=3) as running:
        links, pages = crawl_list(running.base_url, "/ads")
        assert len(links) == len(running.content.static_ads)
        assert pages == -(-len(links) // 3)
    with pytest.raises(ValueError, match="page_size"):
        make_demo_server(page_size=0)
