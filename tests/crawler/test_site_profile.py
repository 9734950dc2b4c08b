"""Site profiles are validated on load, with errors that name file and field."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from crawler.errors import SiteProfileError
from crawler.site_profile import (
    FieldSpec,
    ImageSpec,
    SiteProfileModel,
    get_site_profile,
    load_site_profiles,
    origin_of,
    parse_site_profile,
)

VALID = """
key: sample
name: Sample
base_url: http://127.0.0.1:9999
start_paths: [/ads]
links: {ad_links: "a::attr(href)", ad_path_pattern: "^/ad/", list_path_pattern: "^/ads"}
fields: {container: article, title: h1, text: p}
"""


def test_bundled_demo_profile_loads() -> None:
    profile = load_site_profiles(None)["demo"]
    assert profile.config.obey_robots_txt is True
    assert profile.allowed_origins() == frozenset({"http://127.0.0.1:8765"})
    assert len(profile.sha256) == 64


def test_local_profile_overrides_bundled_and_adds(tmp_path: Path) -> None:
    (tmp_path / "sample.yaml").write_text(VALID)
    (tmp_path / "demo.yaml").write_text(VALID.replace("key: sample", "key: demo"))
    profiles = load_site_profiles(tmp_path)
    assert profiles["sample"].source.endswith("sample.yaml")
    assert profiles["demo"].config.base_url == "http://127.0.0.1:9999"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (VALID.replace("base_url: http://127.0.0.1:9999", "base_url: ftp://x"), "field base_url"),
        (VALID.replace('"^/ad/"', '"^/ad/("'), "field links.ad_path_pattern"),
        (VALID.replace("start_paths: [/ads]", "start_paths: []"), "field start_paths"),
        (VALID + "surprise: 1\n", "field surprise"),
        ("key: [unclosed", "not valid YAML"),
        ("- a list\n", "must be a mapping"),
    ],
)
def test_invalid_profile_names_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(SiteProfileError, match=r"bad\.yaml") as caught:
        load_site_profiles(tmp_path)
    assert message in str(caught.value)


def test_unknown_profile_lists_known_ones() -> None:
    with pytest.raises(SiteProfileError, match=r"no site profile named 'nope' \(known: .*demo"):
        get_site_profile("nope", None)


def test_origin_normalises_default_ports_and_case() -> None:
    assert origin_of("HTTP://Example.INVALID/x") == "http://example.invalid:80"
    assert origin_of("https://example.invalid/") == "https://example.invalid:443"


# --- richer profiles ----------------------------------------------------------------------


def test_bundled_profiles_keep_their_meaning() -> None:
    profiles = load_site_profiles(None)
    demo = profiles["demo"].config
    assert demo.links.list_patterns == ("^/ads$",)  # the one-pattern spelling still reads
    assert demo.links.discover_lists is False and demo.links.sitemap is None
    assert demo.links.page_cap is None
    assert demo.fields.posted_at is not None and demo.fields.posted_at.date_format == ("iso",)
    assert demo.fields.title == FieldSpec(css="h1.ad-title ::text")
    jsonld = profiles["demo-jsonld"].config
    assert jsonld.links.list_patterns == ("^/regio/[a-z-]+$", "^/nieuw$")
    assert jsonld.links.discover_lists and jsonld.links.sitemap == "/sitemap.xml"
    assert jsonld.fields.title.jsonld == "Product.name"
    assert jsonld.fields.posted_at is not None
    assert jsonld.fields.posted_at.date_format == ("relative", "%d-%m-%Y %H:%M")
    assert jsonld.fields.posted_at.timezone == "Europe/Amsterdam"
    assert jsonld.fields.images == ImageSpec(
        css="figure.foto img::attr(src)", exclude=("aside.gerelateerd",)
    )


RICH = """\
key: rich
name: Rich
base_url: http://127.0.0.1:9999
start_paths: [/]
render_javascript: false
links:
  ad_links: "a::attr(href)"
  ad_path_pattern: "^/ad/"
  list_path_patterns: ["^/a$", "^/b$"]
  discover_lists: true
  sitemap: /sitemap.xml
  page_cap: 50
fields:
  container: main
  title: {jsonld: Product.name}
  text: {css: "div ::text", exclude: [p.help, aside]}
  city: {xpath: ".//span/text()", regex: "^(\\\\w+)"}
  posted_at: {css: time, date_format: relative, timezone: Europe/London}
  images: img::attr(src)
"""


def parse(text: str) -> SiteProfileModel:
    return parse_site_profile(text.encode(), "rich.yaml").config


def test_field_specs_in_every_form() -> None:
    fields = parse(RICH).fields
    assert fields.title == FieldSpec(jsonld="Product.name")
    assert fields.text.exclude == ("p.help", "aside")
    assert fields.city == FieldSpec(xpath=".//span/text()", regex=r"^(\w+)")
    assert fields.posted_at is not None and fields.posted_at.date_format == ("relative",)
    assert fields.images == ImageSpec(css="img::attr(src)")


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "message"),
    [
        ("render_javascript: false", "render_javascript: true", 11, "links.sitemap", "sitemap"),
        ('["^/a$", "^/b$"]', '["^/a$", "("]', 9, "links.list_path_patterns", "regular exp"),
        (
            "  discover_lists: true\n",
            '  discover_lists: true\n  list_path_pattern: "^/c$"\n',
            9,
            "links.list_path_patterns",
            "not both",
        ),
        ('  list_path_patterns: ["^/a$", "^/b$"]\n', "", 6, "links", "list_path_patterns"),
        ("page_cap: 50", "page_cap: 0", 12, "links.page_cap", "greater than or equal to 1"),
        (
            "sitemap: /sitemap.xml",
            "sitemap: http://x.invalid/s.xml",
            11,
            "links.sitemap",
            "not a path",
        ),
        ("{jsonld: Product.name}", "{jsonld: Product}", 15, "fields.title.jsonld", "JSON-LD"),
        ("{jsonld: Product.name}", "{jsonld: P.name, css: h1}", 15, "fields.title", "exactly one"),
        ("{jsonld: Product.name}", "{}", 15, "fields.title", "exactly one"),
        ("{jsonld: Product.name}", "42", 15, "fields.title", "CSS selector string or a mapping"),
        (
            "exclude: [p.help, aside]",
            "exclude: [p.help, 'a::text']",
            16,
            "fields.text.exclude",
            "must select elements",
        ),
        ('".//span/text()"', '"//span/text()"', 17, "fields.city.xpath", "absolute XPath"),
        ('".//span/text()"', '".//span["', 17, "fields.city.xpath", "not a valid XPath"),
        ('regex: "^(\\\\w+)"', 'regex: "(("', 17, "fields.city.regex", "regular expression"),
        (
            "date_format: relative",
            "date_format: '%H:%M'",
            18,
            "fields.posted_at.date_format",
            "no year",
        ),
        (
            "date_format: relative",
            "date_format: '%Q %Y'",
            18,
            "fields.posted_at.date_format",
            "strptime",
        ),
        (
            "date_format: relative",
            "date_format: sometimes",
            18,
            "fields.posted_at.date_format",
            "neither",
        ),
        ("Europe/London", "Mars/Olympus", 18, "fields.posted_at.timezone", "IANA"),
        (
            "images: img::attr(src)",
            "images: {css: img, regex: x}",
            19,
            "fields.images.regex",
            "Extra inputs",
        ),
        (
            "city: {xpath",
            "city: {date_format: relative, xpath",
            17,
            "fields.city.date_format",
            "Extra inputs",
        ),
        (
            "container: main",
            "container: 'main::text'",
            14,
            "fields.container",
            "must select elements",
        ),
        ("container: main", "container: 'main[['", 14, "fields.container", "not a valid CSS"),
        ("start_paths: [/]", "start_paths: [//x.invalid/]", 4, "start_paths", "not a path"),
        (
            "  images: img::attr(src)\n",
            "  images: img::attr(src)\n  city: again\n",
            20,
            "fields.city",
            "given twice (first on line 17)",
        ),
    ],
)
def test_invalid_rich_profiles_name_file_line_and_field(
    old: str, new: str, line: int, field: str, message: str
) -> None:
    assert old in RICH
    with pytest.raises(SiteProfileError) as caught:
        parse(RICH.replace(old, new, 1))
    text = str(caught.value)
    assert text.startswith("rich.yaml: ")
    assert f"line {line}: field {field}: " in text
    assert message in text


# --- generated profiles -------------------------------------------------------------------

CSS = st.sampled_from(["h1", "div.x ::text", "a::attr(href)", "main > p:nth-child(2)", "*"])
ELEMENTS = st.lists(st.sampled_from(["aside", "p.help", "div.related", "footer"]), max_size=2)
SPECS = st.one_of(
    CSS,
    st.fixed_dictionaries({"css": CSS}, optional={"exclude": ELEMENTS, "regex": st.just("(\\w+)")}),
    st.fixed_dictionaries({"xpath": st.sampled_from([".//h1", "./p/text()", ".//a/@href"])}),
    st.fixed_dictionaries({"jsonld": st.sampled_from(["Product.name", "*.offers.price"])}),
)
DATE_SPECS = st.builds(
    lambda spec, formats: {**({"css": spec} if isinstance(spec, str) else spec), **formats},
    SPECS,
    st.fixed_dictionaries(
        {},
        optional={
            "date_format": st.sampled_from(["iso", "relative", ["relative", "%d-%m-%Y"]]),
            "timezone": st.sampled_from(["Europe/Amsterdam", "UTC", "Asia/Tokyo"]),
        },
    ),
)


@st.composite
def valid_profiles(draw: st.DrawFn) -> dict[str, Any]:
    fields: dict[str, Any] = {"container": draw(st.sampled_from(["main", "article.ad"]))}
    fields["title"] = draw(SPECS)
    fields["text"] = draw(SPECS)
    for name in ("city", "phone"):
        if draw(st.booleans()):
            fields[name] = draw(SPECS)
    if draw(st.booleans()):
        fields["posted_at"] = draw(DATE_SPECS)
    if draw(st.booleans()):
        fields["images"] = draw(
            st.one_of(CSS, st.fixed_dictionaries({"css": CSS}, optional={"exclude": ELEMENTS}))
        )
    links: dict[str, Any] = {"ad_links": draw(CSS), "ad_path_pattern": "^/ad/"}
    if draw(st.booleans()):
        links["list_path_pattern"] = "^/ads$"
    else:
        links["list_path_patterns"] = draw(
            st.lists(st.sampled_from(["^/a$", "^/b/", "^/c"]), min_size=1, max_size=3)
        )
    links.update(
        draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "next_page": CSS,
                    "discover_lists": st.booleans(),
                    "sitemap": st.sampled_from(["/sitemap.xml", "/s/index.xml.gz"]),
                    "page_cap": st.integers(min_value=1, max_value=10_000),
                },
            )
        )
    )
    profile: dict[str, Any] = {
        "key": "gen",
        "name": "Generated",
        "base_url": "http://127.0.0.1:9999",
        "start_paths": ["/"],
        "links": links,
        "fields": fields,
    }
    if draw(st.booleans()):
        profile["third_party"] = draw(ELEMENTS)
    # Rendering is refused with a sitemap; without one, either way is valid.
    profile["render_javascript"] = "sitemap" not in links and draw(st.booleans())
    order = draw(st.permutations(list(profile)))
    return {key: profile[key] for key in order}


def dump(profile: dict[str, Any], flow: bool) -> str:
    return yaml.safe_dump(profile, sort_keys=False, default_flow_style=None if flow else False)


@given(profile=valid_profiles(), flow=st.booleans())
def test_generated_valid_profiles_load(profile: dict[str, Any], flow: bool) -> None:
    config = parse_site_profile(dump(profile, flow).encode(), "gen.yaml").config
    assert config.links.page_cap == profile["links"].get("page_cap")
    title = profile["fields"]["title"]
    expected = FieldSpec(css=title) if isinstance(title, str) else FieldSpec(**title)
    assert config.fields.title == expected


# (path, value or DELETE, the field the error must name)
DELETE = object()
MUTATIONS: list[tuple[tuple[str, ...], Any, str]] = [
    (("links", "page_cap"), 0, "links.page_cap"),
    (("links", "page_cap"), "many", "links.page_cap"),
    (("links", "sitemap"), "https://elsewhere.invalid/sitemap.xml", "links.sitemap"),
    (("links", "ad_path_pattern"), "(", "links.ad_path_pattern"),
    (("links", "ad_links"), "a[[", "links.ad_links"),
    (("links", "discover_lists"), "sometimes", "links.discover_lists"),
    (("links", "surprise"), 1, "links.surprise"),
    (("links", "ad_path_pattern"), DELETE, "links.ad_path_pattern"),
    (("fields", "title"), DELETE, "fields.title"),
    (("fields", "title"), {"xpath": "//h1"}, "fields.title.xpath"),
    (("fields", "title"), {"css": "h1", "jsonld": "Product.name"}, "fields.title"),
    (("fields", "text"), {"css": "p", "exclude": ["p::text"]}, "fields.text.exclude"),
    (("fields", "city"), {"css": "a", "regex": "(("}, "fields.city.regex"),
    (("fields", "city"), {"css": "a", "timezone": "UTC"}, "fields.city.timezone"),
    (("fields", "phone"), {"jsonld": "no path"}, "fields.phone.jsonld"),
    (("fields", "posted_at"), {"css": "t", "date_format": "%d-%m"}, "fields.posted_at.date_format"),
    (("fields", "posted_at"), {"css": "t", "timezone": "Nowhere/X"}, "fields.posted_at.timezone"),
    (("fields", "images"), {"css": "img", "regex": "x"}, "fields.images.regex"),
    (("fields", "container"), "p::text", "fields.container"),
    (("fields", "colour"), "red", "fields.colour"),
    (("start_paths",), ["http://elsewhere.invalid/"], "start_paths"),
    (("concurrent_requests",), 99, "concurrent_requests"),
    (("key",), "Not A Key", "key"),
    (("key",), DELETE, "key"),
    (("render_javascript",), True, "links.sitemap"),  # with the sitemap the mutation sets
]


def _ancestor_line(text: str, profile: dict[str, Any], field: str) -> int:
    """The line the error must point at: the field's key, or the nearest key written."""
    path = field.split(".")
    node: Any = profile
    written: list[str] = []
    for part in path:
        if not isinstance(node, dict) or part not in node:
            break
        written.append(part)
        node = node[part]
    if not written:
        return 1
    # Walk the text the way a reader does: each key of the path after its parent's line.
    lines = text.splitlines()
    line = 0
    for part in written:
        line = next(
            n
            for n in range(line, len(lines))
            if re.search(rf"(^|[{{,\s]){re.escape(part)}:", lines[n])
        )
    return line + 1


@given(profile=valid_profiles(), mutation=st.sampled_from(MUTATIONS), flow=st.booleans())
def test_every_invalid_generated_profile_is_refused_with_file_line_and_field(
    profile: dict[str, Any], mutation: tuple[tuple[str, ...], Any, str], flow: bool
) -> None:
    path, value, field = mutation
    profile = copy.deepcopy(profile)
    if path == ("render_javascript",):
        profile["links"]["sitemap"] = "/sitemap.xml"
    parent = profile
    for part in path[:-1]:
        parent = parent[part]
    if value is DELETE:
        parent.pop(path[-1], None)
    else:
        parent[path[-1]] = value
    text = dump(profile, flow)
    with pytest.raises(SiteProfileError) as caught:
        parse_site_profile(text.encode(), "gen.yaml")
    message = str(caught.value)
    assert message.startswith("gen.yaml: line ")
    line = _ancestor_line(text, profile, field)
    assert f"line {line}: field {field}: " in message, (message, text)


def test_autothrottle_is_off_unless_asked_for_and_refuses_what_it_cannot_honour() -> None:
    assert parse(RICH).autothrottle is None
    assert parse(RICH + "autothrottle: false\n").autothrottle is None
    defaults = parse(RICH + "autothrottle: true\n").autothrottle
    assert defaults is not None
    assert (defaults.target_concurrency, defaults.start_delay_seconds) == (1.0, 1.0)
    assert defaults.max_delay_seconds == 30.0
    tuned = parse(RICH + "autothrottle: {target_concurrency: 2, max_delay_seconds: 5}\n")
    assert tuned.autothrottle is not None and tuned.autothrottle.max_delay_seconds == 5
    for bad, message in (
        ("autothrottle:\n", "give true, false or a mapping"),
        ("autothrottle: {max_delay_seconds: 0.5}\n", "below start_delay_seconds"),
        ("autothrottle: {target_concurency: 2}\n", "Extra inputs"),
        ("autothrottle: {target_concurrency: 0}\n", "greater than 0"),
    ):
        with pytest.raises(SiteProfileError, match=message) as caught:
            parse(RICH + bad)
        assert ": field autothrottle" in str(caught.value)
