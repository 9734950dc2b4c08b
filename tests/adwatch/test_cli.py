"""The command line, driven in process against real databases and the demo site."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from adwatch.cli import run
from adwatch.cli.app_context import AppContext
from adwatch.demo.site import running_demo_site
from adwatch.services.demo import point_demo_profile_at
from adwatch.settings import Settings


class Cli:
    """Runs ``adwatch`` commands with the test's settings, capturing what they print."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        console = Console(record=True, width=200, force_terminal=False)
        errors = Console(record=True, width=200, stderr=True, force_terminal=False)
        context = AppContext(self.settings, console=console, error_console=errors)
        code = run(list(argv), obj=context)
        return code, console.export_text(), errors.export_text()


@pytest.fixture
def cli(settings: Settings) -> Cli:
    return Cli(settings)


AUTHORISE = (
    "authorisation", "add", "--case", "2026-017", "--legal-basis", "wpg-9",
    "--order-ref", "ORDER-17", "--officer", "J. Jansen", "--dpia", "DPIA-4", "--site", "demo",
)  # fmt: skip


def test_crawl_without_valid_authorisation_exits_2(cli: Cli) -> None:
    code, _, err = cli("crawl", "--authorisation", "99", "--site", "demo")
    assert code == 2
    assert "no authorisation with id 99" in err


def test_authorisation_add_list_show_revoke_and_refused_crawl(cli: Cli) -> None:
    code, out, _ = cli(*AUTHORISE)
    assert code == 0 and "registered authorisation 1" in out
    code, out, _ = cli("authorisation", "list")
    assert code == 0 and "2026-017" in out and "valid" in out
    code, out, _ = cli("authorisation", "show", "1")
    assert code == 0 and "DPIA-4" in out
    code, out, _ = cli("authorisation", "revoke", "1", "--reason", "order withdrawn")
    assert code == 0
    code, _, err = cli("crawl", "--authorisation", "1", "--site", "demo")
    assert code == 2
    assert "revoked" in err
    code, out, _ = cli("audit", "verify")
    assert code == 0 and "audit log intact" in out


def test_forbidden_purpose_and_unknown_basis_are_refused(cli: Cli) -> None:
    code, _, err = cli(*AUTHORISE, "--purpose", "administrative_inspection")
    assert code == 2 and "only be used for: criminal_investigation" in err
    args = list(AUTHORISE)
    args[args.index("wpg-9")] = "gdpr-6"
    code, _, err = cli(*args)
    assert code == 2 and "unknown legal basis 'gdpr-6'" in err


def test_profiles_list_needs_a_justification(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("profiles", "list", "--justification", " ")[0] == 2
    assert "justification" in capsys.readouterr().err
    code, out, _ = cli("profiles", "list", "-j", "case review")
    assert code == 0 and "no candidate profiles" in out


def test_crawl_prints_summary_with_problems_and_profiles_join_shared_phones(
    cli: Cli, settings: Settings
) -> None:
    with running_demo_site(port=0, seed=3, n_ads=16, faults=True) as base_url:
        point_demo_profile_at(settings, base_url)
        assert cli(*AUTHORISE)[0] == 0
        code, out, _ = cli("crawl", "--authorisation", "1", "--site", "demo")
    assert code == 0, out
    assert "crawl run 1: finished" in out
    assert "malformed_page" in out and "bad_image" in out and "http_error" in out
    code, out, _ = cli("profiles", "list", "-j", "case review", "--min-ads", "2")
    assert (code == 0 and "+44" in out) or "+61" in out
    code, out, _ = cli("runs", "list")
    assert code == 0 and "finished" in out


def test_schema_behind_is_exit_3(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'new.sqlite3'}")
    code, _, _ = Cli(settings)("runs", "list")
    assert code == 3


def test_demo_command_end_to_end(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var", operator="demo")
    code, out, _ = Cli(settings)("demo", "--port", "0", "--ads", "24")
    assert code == 0, out
    assert "candidate profiles that join two or more ads" in out
    assert "no candidate profiles match" not in out
