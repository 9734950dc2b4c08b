"""Site profiles: declarative descriptions of a preselected ad site.

Adding a site is configuration, not code: a YAML file with the start pages, link rules
(list-page patterns, list discovery, a sitemap, a page cap), field specifications (CSS,
XPath or a path into the page's JSON-LD, with a regex, excluded elements and date formats),
robots.txt and rendering choices, and rate limits. Every problem is refused on load with
the file, the line and the field; nothing set in a profile is silently ignored.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from cssselect import SelectorError
from cssselect.xpath import ExpressionError
from lxml import etree
from parsel.csstranslator import css2xpath
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from crawler.dates import ISO_8601, RELATIVE
from crawler.errors import SiteProfileError, UnknownSite
from legal_policy.authorisation_store import SiteRef

DEFAULT_TIMEZONE: Final = "Europe/Amsterdam"

# A path into JSON-LD: a schema.org type (or * for any) and one key or more.
_JSONLD_PATH: Final = re.compile(r"^(?:\*|[A-Za-z][A-Za-z0-9_]*)(?:\.@?[A-Za-z_][A-Za-z0-9_-]*)+$")
# Parsel's pseudo-elements: they select text or attributes, not elements.
_PSEUDO_ELEMENT: Final = re.compile(r"::(?:text|attr\([^)]*\))")
# Parsel registers these prefixes for XPath (EXSLT regular expressions and sets).
_XPATH_NAMESPACES: Final = {
    "re": "http://exslt.org/regular-expressions",
    "set": "http://exslt.org/sets",
}


# --- checks shared by the models ----------------------------------------------------------


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from exc
    return value


def _check_css(value: str) -> str:
    """A CSS selector in parsel's syntax (``::text`` and ``::attr()`` allowed)."""
    if not value.strip():
        raise ValueError("an empty CSS selector selects nothing")
    try:
        css2xpath(value)
    except (SelectorError, ExpressionError) as exc:
        raise ValueError(f"not a valid CSS selector: {exc}") from exc
    return value


def _check_element_css(value: str) -> str:
    """A CSS selector of elements: what is removed or scoped must be an element."""
    _check_css(value)
    if _PSEUDO_ELEMENT.search(value):
        raise ValueError(
            f"{value!r} selects text or an attribute, but this selector must select elements"
        )
    return value


def _check_xpath(value: str) -> str:
    try:
        etree.XPath(value, namespaces=_XPATH_NAMESPACES)
    except etree.XPathSyntaxError as exc:
        raise ValueError(f"not a valid XPath expression: {exc}") from exc
    # Fields are read inside the container; an absolute path would read the whole page
    # (footers, related ads) without saying so.
    if value.lstrip("( ").startswith("/"):
        raise ValueError(
            "an absolute XPath reads the whole page, not the ad: start it with ./ or .// "
            "(it is evaluated inside the container)"
        )
    return value


def _check_date_format(value: str) -> str:
    if value in (ISO_8601, RELATIVE):
        return value
    if "%" not in value:
        raise ValueError(
            f"{value!r} is neither {ISO_8601!r}, {RELATIVE!r} nor a strptime pattern "
            "(a pattern has % directives, such as %d-%m-%Y %H:%M)"
        )
    try:
        datetime.strptime("", value)
    except ValueError as exc:
        # Matching "" always fails; only a failure before matching means a bad pattern.
        if not str(exc).startswith("time data"):
            raise ValueError(f"not a valid strptime pattern: {exc}") from None
    if not re.search(r"%[YyG]", value):
        # strptime would silently put such dates in 1900.
        raise ValueError(f"{value!r} has no year (%Y or %y): dates without a year are not read")
    return value


def _check_path(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        raise ValueError(
            f"{value!r} is not a path on the site (such as /ads?page=1): "
            "pages are always taken from base_url's origin"
        )
    return value


# --- fields -------------------------------------------------------------------------------


class FieldSpec(BaseModel):
    """Where a field of an ad page is read: a CSS selector, an XPath expression or a path
    into the page's JSON-LD (exactly one), optionally narrowed by a regex whose first group
    is kept, after removing the elements ``exclude`` selects.

    A plain string is a CSS selector. CSS and XPath are evaluated inside the container;
    JSON-LD paths (``Product.offers.price``) read the page's schema.org JSON-LD: the first
    top-level item of that type (``*`` for any), then one key per step.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    css: str | None = None
    xpath: str | None = None
    jsonld: str | None = None
    regex: str | None = None
    exclude: tuple[str, ...] = Field(
        default=(), description="CSS selectors of elements removed before reading the field"
    )

    @model_validator(mode="before")
    @classmethod
    def _selector_shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"css": data}
        if not isinstance(data, dict):
            raise ValueError(
                "a field is a CSS selector string or a mapping with css, xpath or jsonld"
            )
        return data

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        given = [name for name in ("css", "xpath", "jsonld") if getattr(self, name) is not None]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(f"give exactly one of css, xpath or jsonld (found: {found})")
        return self

    @field_validator("css")
    @classmethod
    def _css(cls, value: str | None) -> str | None:
        return None if value is None else _check_css(value)

    @field_validator("xpath")
    @classmethod
    def _xpath(cls, value: str | None) -> str | None:
        return None if value is None else _check_xpath(value)

    @field_validator("jsonld")
    @classmethod
    def _jsonld(cls, value: str | None) -> str | None:
        if value is not None and not _JSONLD_PATH.match(value):
            raise ValueError(
                f"{value!r} is not a JSON-LD path: a schema.org type (or *) and one key or "
                "more, separated by dots, such as Product.name or Product.offers.areaServed"
            )
        return value

    @field_validator("regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        return None if value is None else _check_regex(value)

    @field_validator("exclude")
    @classmethod
    def _exclude(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for selector in value:
            _check_element_css(selector)
        return value


class DateFieldSpec(FieldSpec):
    """The posted time: a field plus how to read it.

    ``date_format`` is ``iso`` (ISO 8601, the default), ``relative`` ("3 uur geleden",
    "gisteren 14:05", "2 days ago") or a strptime pattern with a year, or a list of these
    tried in order. Times without an offset are read in ``timezone``.
    """

    date_format: tuple[str, ...] = (ISO_8601,)
    timezone: str = DEFAULT_TIMEZONE

    @field_validator("date_format", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("date_format")
    @classmethod
    def _formats(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("give at least one date format")
        for item in value:
            _check_date_format(item)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA time zone (such as Europe/Amsterdam)"
            ) from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The time zone naive times are read in."""
        return ZoneInfo(self.timezone)


class ImageSpec(BaseModel):
    """The ad's own images: a CSS selector of their URLs inside the container, after
    removing the elements ``exclude`` selects (related ads' thumbnails, banners)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    css: str
    exclude: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _selector_shorthand(cls, data: Any) -> Any:
        return {"css": data} if isinstance(data, str) else data

    @field_validator("css")
    @classmethod
    def _css(cls, value: str) -> str:
        return _check_css(value)

    @field_validator("exclude")
    @classmethod
    def _exclude(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for selector in value:
            _check_element_css(selector)
        return value


class FieldSelectors(BaseModel):
    """Where an ad page's fields are: a container element and a specification per field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    container: str = Field(description="CSS selector of the element that holds the ad")
    title: FieldSpec
    text: FieldSpec
    city: FieldSpec | None = None
    posted_at: DateFieldSpec | None = None
    phone: FieldSpec | None = None
    images: ImageSpec | None = None

    @field_validator("container")
    @classmethod
    def _container(cls, value: str) -> str:
        return _check_element_css(value)

    def text_fields(self) -> Iterator[tuple[str, FieldSpec]]:
        """The text fields that are set, by the name a capture gives them."""
        for name, spec in (
            ("title", self.title),
            ("text", self.text),
            ("city", self.city),
            ("posted_at", self.posted_at),
            ("phones", self.phone),
        ):
            if spec is not None:
                yield name, spec


# --- links --------------------------------------------------------------------------------


class LinkRules(BaseModel):
    """Which pages the spider asks for: list pages (from the start pages, discovered, or
    from a sitemap), the ad pages they link to, and at most ``page_cap`` pages a run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ad_links: str = Field(description="CSS selector of links to ad pages on a list page")
    next_page: str | None = Field(default=None, description="CSS selector of the next list page")
    ad_path_pattern: str = Field(description="Regex an ad page's path must match")
    # The one-pattern spelling of profiles written before several were possible.
    list_path_pattern: str | None = Field(
        default=None, description="Regex a list page's path must match"
    )
    list_path_patterns: tuple[str, ...] = Field(
        default=(), description="Regexes of list pages' paths (any one matches)"
    )
    discover_lists: bool = Field(
        default=False,
        description="Follow links on the start pages whose paths match a list pattern",
    )
    sitemap: str | None = Field(
        default=None, description="Path of the site's sitemap (or sitemap index) on base_url"
    )
    page_cap: int | None = Field(
        default=None,
        ge=1,
        description="Pages a run fetches at most: lowers the authorisation's limit, never more",
    )

    @field_validator("ad_path_pattern", "list_path_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return None if value is None else _check_regex(value)

    @field_validator("list_path_patterns")
    @classmethod
    def _all_compile(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if value and info.data.get("list_path_pattern") is not None:
            raise ValueError("give list_path_pattern or list_path_patterns, not both")
        for pattern in value:
            _check_regex(pattern)
        return value

    @field_validator("ad_links", "next_page")
    @classmethod
    def _css(cls, value: str | None) -> str | None:
        return None if value is None else _check_css(value)

    @field_validator("sitemap")
    @classmethod
    def _sitemap_path(cls, value: str | None) -> str | None:
        return None if value is None else _check_path(value)

    @model_validator(mode="after")
    def _list_patterns_given(self) -> LinkRules:
        if self.list_path_pattern is None and not self.list_path_patterns:
            raise ValueError("give list_path_patterns (or list_path_pattern)")
        return self

    @property
    def list_patterns(self) -> tuple[str, ...]:
        """Every list-page pattern, whichever way the profile spelt them."""
        if self.list_path_pattern is not None:
            return (self.list_path_pattern,)
        return self.list_path_patterns


# --- the profile --------------------------------------------------------------------------


class AutoThrottleSpec(BaseModel):
    """Scrapy's AutoThrottle: the delay follows the site's response times, never below
    ``download_delay_seconds`` and never above ``max_delay_seconds``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_concurrency: float = Field(default=1.0, gt=0, le=16)
    start_delay_seconds: float = Field(default=1.0, ge=0)
    max_delay_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> AutoThrottleSpec:
        if self.max_delay_seconds < self.start_delay_seconds:
            raise ValueError("max_delay_seconds is below start_delay_seconds")
        return self


class SiteProfileModel(BaseModel):
    """The validated content of a site profile file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str
    base_url: str
    start_paths: list[str] = Field(min_length=1)
    extra_allowed_origins: list[str] = Field(
        default_factory=list, description="Image hosts and the like, as scheme://host[:port]"
    )
    obey_robots_txt: bool = True
    render_javascript: bool = False
    download_delay_seconds: float = Field(default=0.5, ge=0)
    concurrent_requests: int = Field(default=2, ge=1, le=16)
    # Off unless asked for (``true`` takes the defaults): a fixed delay is easier to
    # account for in an authorisation; a slow or busy site is better served by this.
    autothrottle: AutoThrottleSpec | None = None
    # Off unless a site needs them (an age gate); then kept per origin of this site only.
    cookies: bool = False
    user_agent: str | None = Field(
        default=None,
        pattern=r"^[\x20-\x7e]{1,200}$",
        description="User-Agent header of every request (default adwatch/<version>)",
    )
    links: LinkRules
    fields: FieldSelectors
    # Elements of a page that hold other people's words (reviews, comments): never kept.
    third_party: list[str] = Field(
        default_factory=list, description="CSS selectors of third-party content"
    )

    @field_validator("autothrottle", mode="before")
    @classmethod
    def _autothrottle(cls, value: object) -> object:
        if value is True:
            return {}
        if value is False:
            return None
        if value is None:
            raise ValueError("give true, false or a mapping of its settings")
        return value

    @field_validator("base_url", "extra_allowed_origins")
    @classmethod
    def _http_origin(cls, value: str | list[str]) -> str | list[str]:
        for url in [value] if isinstance(value, str) else value:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{url!r} is not an http(s) URL with a host")
        return value

    @field_validator("start_paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for path in value:
            _check_path(path)
        return value

    @field_validator("third_party")
    @classmethod
    def _third_party(cls, value: list[str]) -> list[str]:
        for selector in value:
            _check_element_css(selector)
        return value


def unsupported_combinations(model: SiteProfileModel) -> list[tuple[tuple[str, ...], str]]:
    """Settings that are valid alone but cannot work together: (field path, why)."""
    problems: list[tuple[tuple[str, ...], str]] = []
    if model.render_javascript and model.links.sitemap is not None:
        # Rendering sends page requests to a browser, which returns a DOM, not the
        # sitemap's XML: the sitemap would be read as empty, silently.
        problems.append(
            (
                ("links", "sitemap"),
                "a sitemap is not supported with render_javascript: true (rendered pages "
                "come back as a browser's DOM, not as the sitemap's XML): drop one of them",
            )
        )
    return problems


@dataclass(frozen=True, slots=True)
class SiteProfile:
    """A loaded site profile with where it came from and the hash of its bytes."""

    config: SiteProfileModel
    source: str
    sha256: str

    @property
    def key(self) -> str:
        """The site's short name, as authorisations refer to it."""
        return self.config.key

    def site_ref(self) -> SiteRef:
        """The site as an authorisation pins it: key, name, URL, hash and origins."""
        return SiteRef(
            self.key,
            self.config.name,
            self.config.base_url,
            self.sha256,
            self.allowed_origins(),
        )

    def allowed_origins(self) -> frozenset[str]:
        """Origins (scheme://host:port) the crawler may contact for this site."""
        return frozenset(
            origin_of(u) for u in [self.config.base_url, *self.config.extra_allowed_origins]
        )


def origin_of(url: str) -> str:
    """Normalised ``scheme://host:port`` of a URL (default ports made explicit)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


# --- reading a profile file ---------------------------------------------------------------

Location = tuple[str | int, ...]


def parse_site_profile(data: bytes, source: str) -> SiteProfile:
    """Parse and validate a profile; every error names the file, the line and the field."""
    try:
        text = data.decode("utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except UnicodeDecodeError as exc:
        raise SiteProfileError(f"{source}: not valid YAML: not UTF-8 ({exc})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise SiteProfileError(f"{source}: {where}not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or node is None:
        raise SiteProfileError(f"{source}: line 1: a site profile must be a mapping of fields")
    lines, duplicates = _lines_of(node)
    problems = [
        f"line {line}: field {_dotted(loc)}: given twice (first on line {first})"
        for loc, line, first in duplicates
    ]
    model = None
    try:
        model = SiteProfileModel.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"line {_line_for(lines, loc)}: field {_dotted(loc)}: {message}")
    if model is not None:
        for loc, message in unsupported_combinations(model):
            problems.append(f"line {_line_for(lines, loc)}: field {_dotted(loc)}: {message}")
    if problems or model is None:
        raise SiteProfileError(f"{source}: " + "; ".join(problems))
    return SiteProfile(model, source, hashlib.sha256(data).hexdigest())


def _dotted(loc: Location) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _lines_of(
    node: yaml.Node,
) -> tuple[dict[Location, int], list[tuple[Location, int, int]]]:
    """The 1-based line of every key and list item, and keys given twice in one mapping."""
    lines: dict[Location, int] = {(): node.start_mark.line + 1}
    duplicates: list[tuple[Location, int, int]] = []

    def walk(current: yaml.Node, loc: Location) -> None:
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                key = key_node.value
                if not isinstance(key, str) or key == "<<":
                    continue  # merge keys and non-scalar keys: errors fall back to the parent
                child = (*loc, key)
                line = key_node.start_mark.line + 1
                if child in lines:
                    # YAML keeps the last value silently; a profile must not say two things.
                    duplicates.append((child, line, lines[child]))
                    continue
                lines[child] = line
                walk(value_node, child)
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                child = (*loc, index)
                lines[child] = item.start_mark.line + 1
                walk(item, child)

    walk(node, ())
    return lines, duplicates


def _line_for(lines: dict[Location, int], loc: Location) -> int:
    """The line of ``loc``, or of its nearest ancestor written in the file (a missing key)."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def load_site_profiles(local_dir: Path | None) -> dict[str, SiteProfile]:
    """Bundled profiles, overridden by same-key profiles from ``local_dir``."""
    profiles: dict[str, SiteProfile] = {}
    bundled = resources.files("crawler") / "site_profiles"
    for entry in sorted(bundled.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            profile = parse_site_profile(entry.read_bytes(), f"bundled {entry.name}")
            profiles[profile.key] = profile
    if local_dir is not None and local_dir.is_dir():
        for path in sorted(local_dir.glob("*.yaml")):
            profile = parse_site_profile(path.read_bytes(), str(path))
            profiles[profile.key] = profile
    return profiles


def get_site_profile(key: str, local_dir: Path | None) -> SiteProfile:
    """The profile named ``key``, or a ``SiteProfileError`` listing the known ones."""
    profiles = load_site_profiles(local_dir)
    try:
        return profiles[key]
    except KeyError:
        known = ", ".join(sorted(profiles)) or "none"
        raise UnknownSite(f"no site profile named {key!r} (known: {known})") from None
