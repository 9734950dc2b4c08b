"""Site profiles are validated on load, with errors that name file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.errors import SiteProfileError
from crawler.site_profile import get_site_profile, load_site_profiles, origin_of

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
