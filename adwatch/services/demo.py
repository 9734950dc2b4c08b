"""Pointing the bundled ``demo`` site profile at wherever the demo site runs."""

from __future__ import annotations

from importlib import resources

import yaml

from adwatch.settings import Settings

DEMO_OVERRIDE_MARKER = "# written by adwatch for a demo site on another port"


def point_demo_profile_at(settings: Settings, base_url: str) -> None:
    """Write a local ``demo`` profile override for ``base_url``, or remove a stale one."""
    bundled = resources.files("crawler") / "site_profiles" / "demo.yaml"
    config = yaml.safe_load(bundled.read_text(encoding="utf-8"))
    target = settings.resolved_site_profiles_dir / "demo.yaml"
    if config["base_url"].rstrip("/") == base_url.rstrip("/"):
        if target.exists() and target.read_text(encoding="utf-8").startswith(DEMO_OVERRIDE_MARKER):
            target.unlink()
        return
    config["base_url"] = base_url
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        DEMO_OVERRIDE_MARKER + "\n" + yaml.safe_dump(config, sort_keys=False), encoding="utf-8"
    )
