"""Site profiles: declarative descriptions of a preselected ad site.

Adding a site is configuration, not code: a YAML file with the start URLs, link rules,
field selectors, robots.txt and rendering choices, and rate limits.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from crawler.errors import SiteProfileError, UnknownSite
from legal_policy.authorisation_store import SiteRef


class LinkRules(BaseModel):
    """Which links the spider follows: CSS selectors plus URL path patterns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ad_links: str = Field(description="CSS selector of links to ad pages on a list page")
    next_page: str | None = Field(default=None, description="CSS selector of the next list page")
    ad_path_pattern: str = Field(description="Regex an ad page's path must match")
    list_path_pattern: str = Field(description="Regex a list page's path must match")

    @field_validator("ad_path_pattern", "list_path_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


class FieldSelectors(BaseModel):
    """CSS selectors (Scrapy/parsel syntax) of an ad page's fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    container: str
    title: str
    text: str
    city: str | None = None
    posted_at: str | None = None
    phone: str | None = None
    images: str | None = None


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
    links: LinkRules
    fields: FieldSelectors
    # Elements of a page that hold other people's words (reviews, comments): never kept.
    third_party: list[str] = Field(
        default_factory=list, description="CSS selectors of third-party content"
    )

    @field_validator("base_url", "extra_allowed_origins")
    @classmethod
    def _http_origin(cls, value: str | list[str]) -> str | list[str]:
        for url in [value] if isinstance(value, str) else value:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{url!r} is not an http(s) URL with a host")
        return value


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


def parse_site_profile(data: bytes, source: str) -> SiteProfile:
    """Parse and validate a profile; errors name the file, the line (for YAML) and the field."""
    try:
        raw = yaml.safe_load(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SiteProfileError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SiteProfileError(f"{source}: a site profile must be a mapping of fields")
    try:
        model = SiteProfileModel.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"field {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise SiteProfileError(f"{source}: {problems}") from exc
    return SiteProfile(model, source, hashlib.sha256(data).hexdigest())


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
