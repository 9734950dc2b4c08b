"""The command line, driven in process against real databases and the demo site."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from adwatch.demo.site import running_demo_site
from adwatch.services.demo import point_demo_profile_at
from adwatch.settings import Settings
from storage.db import make_engine, upgrade_database
from storage.models import AuditEntry, Authorisation, User
from tests.support import Cli, adwatch_process


@pytest.fixture
def cli(settings: Settings) -> Cli:
    return Cli(settings)


@pytest.fixture
def registry(cli: Cli) -> Cli:
    """Users of every role and case 2026-017, made through the CLI as a deployment would."""
    assert cli("user", "add", "admin", "--role", "administrator")[0] == 0  # bootstrap
    for name, role in (
        ("inv", "investigator"),
        ("ana", "analyst"),
        ("ana2", "analyst"),
        ("legal", "legal-officer"),
    ):
        assert cli.as_("admin", "user", "add", name, "--role", role)[0] == 0
    assert cli.as_("admin", "case", "add", "2026-017")[0] == 0
    assert cli.as_("admin", "case", "add", "2026-018")[0] == 0
    for member in ("inv", "ana"):
        assert cli.as_("admin", "case", "add-member", "2026-017", member)[0] == 0
    assert cli.as_("admin", "case", "add-member", "2026-018", "ana2")[0] == 0
    return cli


AUTHORISE = (
    "authorisation", "add", "--case", "2026-017", "--legal-basis", "wpg-9",
    "--order-ref", "ORDER-17", "--officer", "J. Jansen", "--dpia", "DPIA-4", "--site", "demo",
)  # fmt: skip


def refusals(session_factory: sessionmaker[Session]) -> list[AuditEntry]:
    with session_factory() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == "refused").order_by(AuditEntry.seq)
            )
        )


def test_bootstrap_then_only_administrators_manage_users(
    registry: Cli, session_factory: sessionmaker[Session]
) -> None:
    code, out, _ = registry.as_("admin", "user", "list")
    assert code == 0 and "legal-officer" in out and "2026-017" in out
    code, _, err = registry("user", "add", "mallory", "--role", "administrator")
    assert code == 2 and "--as USER" in err
    code, _, err = registry.as_("legal", "user", "add", "mallory", "--role", "administrator")
    assert code == 2 and "may not manage users" in err
    code, _, _ = registry.as_("admin", "user", "disable", "ana2")
    assert code == 0
    code, _, err = registry.as_("ana2", "case", "list")
    assert code == 2 and "disabled" in err
    with session_factory() as session:
        assert session.scalar(select(User.id).where(User.name == "mallory")) is None
        bootstrapped = session.scalar(
            select(AuditEntry).where(AuditEntry.action == "user.bootstrapped")
        )
        assert bootstrapped is not None and bootstrapped.actor == "admin"
    refused = refusals(session_factory)
    assert [(r.actor, r.subject) for r in refused] == [
        ("(no user given)", "adwatch user add"),
        ("legal", "adwatch user add"),
        ("ana2", "adwatch case list"),
    ]


def test_an_unknown_user_is_refused_and_the_attempt_audited(
    registry: Cli, session_factory: sessionmaker[Session]
) -> None:
    code, _, err = registry.as_("ghost", "profiles", "list", "-j", "looking around")
    assert code == 2 and "no user 'ghost'" in err
    [entry] = refusals(session_factory)
    assert entry.actor == "ghost" and entry.properties["refusal"] == "UnknownUser"
    assert entry.subject == "adwatch profiles list"


def test_every_refusal_of_a_person_is_audited_with_who_and_why(
    registry: Cli, session_factory: sessionmaker[Session]
) -> None:
    attempts = [
        # unknown authorisation
        ("inv", ("crawl", "--authorisation", "99", "--site", "demo"), "no authorisation"),
        # unknown site
        ("legal", (*AUTHORISE[:-1], "nope"), "no site profile named 'nope'"),
        # refused registrations: forbidden purpose, unknown basis, unknown case, wrong role
        ("legal", (*AUTHORISE, "--purpose", "administrative_inspection"), "only be used"),
        ("legal", tuple(a if a != "wpg-9" else "gdpr-6" for a in AUTHORISE), "gdpr-6"),
        ("legal", tuple(a if a != "2026-017" else "2026-999" for a in AUTHORISE), "no case"),
        ("ana", AUTHORISE, "may not register"),
        # refused consultations: outside one's case, wrong role, no justification
        ("ana", ("profiles", "list", "--case", "2026-018", "-j", "peek"), "not a member"),
        ("admin", ("profiles", "list", "-j", "peek"), "may not read ads"),
        ("ana", ("profiles", "list", "-j", " "), "justification"),
        ("ana", ("ads", "search", "--text", "roemeense", "-j", "search"), "nationality"),
        # acting outside one's role
        ("inv", ("purge",), "may not purge"),
        ("ana", ("case", "combine", "2026-017", "2026-018", "--reason", "x y z"), "combine"),
    ]
    for user, argv, message in attempts:
        code, _, err = registry.as_(user, *argv)
        assert code == 2, (argv, err)
        assert message in err, (argv, err)
    refused = refusals(session_factory)
    assert len(refused) == len(attempts)
    for entry, (user, _, message) in zip(refused, attempts, strict=True):
        assert entry.actor == user
        assert message in entry.properties["reason"]
    # The consultation outside one's case is filed under that case for the legal officer.
    assert any(entry.cases == "|2026-018|" for entry in refused)
    with session_factory() as session:
        assert session.scalar(select(Authorisation.id)) is None


def test_authorisation_add_list_show_amend_revoke_and_refused_crawl(
    registry: Cli, settings: Settings
) -> None:
    code, out, _ = registry.as_("legal", *AUTHORISE)
    assert code == 0 and "registered authorisation 1" in out and "profile SHA-256" in out
    code, out, _ = registry.as_("inv", "authorisation", "list")
    assert code == 0 and "2026-017" in out and "valid" in out
    code, out, _ = registry.as_("legal", "authorisation", "show", "1")
    assert code == 0 and "DPIA-4" in out and "systematic-collection monitor" in out
    code, out, _ = registry.as_("ana2", "authorisation", "show", "1")
    assert code == 2  # not their case
    code, out, _ = registry.as_("legal", "authorisation", "amend", "1", "--site", "demo")
    assert code == 2  # a review needs a reason
    code, out, _ = registry.as_(
        "legal", "authorisation", "amend", "1", "--site", "demo", "--reason", "re-reviewed"
    )
    assert code == 0 and "now pinned to" in out
    code, out, _ = registry.as_("legal", "authorisation", "revoke", "1", "--reason", "withdrawn")
    assert code == 0
    code, _, err = registry.as_("inv", "crawl", "--authorisation", "1", "--site", "demo")
    assert code == 2 and "revoked" in err


def test_crawl_prints_summary_with_problems_and_profiles_join_shared_phones(
    registry: Cli, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    with running_demo_site(port=0, seed=3, n_ads=16, faults=True) as base_url:
        point_demo_profile_at(settings, base_url)
        assert registry.as_("legal", *AUTHORISE)[0] == 0
        code, out, _ = registry.as_("inv", "crawl", "--authorisation", "1", "--site", "demo")
    assert code == 0, out
    assert "crawl run 1: finished" in out
    assert "malformed_page" in out and "bad_image" in out and "http_error" in out
    code, out, _ = registry.as_("ana", "profiles", "list", "-j", "case review", "--min-ads", "2")
    assert code == 0
    assert "+44" in out or "+61" in out
    code, out, _ = registry.as_("ana2", "profiles", "list", "-j", "case review")
    assert code == 0 and "no candidate profiles" in out
    code, out, _ = registry.as_("inv", "runs", "list")
    assert code == 0 and "finished" in out
    code, out, _ = registry.as_("ana", "ads", "show", "1", "-j", "case review")
    assert code == 0 and "2026-017" in out

    # An analyst of another case sees none of it, through any command; each try audited.
    attempts = (
        ("profiles", "show", "1", "-j", "peek"),
        ("ads", "show", "1", "-j", "peek"),
        ("ads", "search", "--case", "2026-017", "--text", "a", "-j", "peek"),
        ("profiles", "list", "--case", "2026-017", "-j", "peek"),
        (
            "profiles",
            "export",
            "--profile",
            "1",
            "-o",
            "x.jsonl",
            "-j",
            "peek",
            "--recipient",
            "prosecutor",
        ),
        ("profiles", "set-category", "1", "suspect", "--reason", "not my case"),
    )
    before = len(refusals(session_factory))
    for argv in attempts:
        code, out, _ = registry.as_("ana2", *argv)
        assert code == 2 and "2026-017" not in out, (argv, out)
    refused = refusals(session_factory)[before:]
    assert [entry.actor for entry in refused] == ["ana2"] * len(attempts)
    assert all(entry.cases == "|2026-017|" for entry in refused)
    assert not Path("x.jsonl").exists()


def test_a_retired_or_misspelt_setting_is_refused(tmp_path: Path) -> None:
    result = adwatch_process(tmp_path, "runs", "list", ADWATCH_OPERATOR="anyone")
    assert result.returncode == 2
    assert "ADWATCH_OPERATOR is not an adwatch setting" in result.stderr
    assert "ADWATCH_USER" in result.stderr
    assert "Traceback" not in result.stderr


def test_schema_behind_is_exit_3(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'new.sqlite3'}")
    code, _, err = Cli(settings)("--as", "x", "runs", "list")
    assert code == 3 and "adwatch db upgrade" in err


def test_schema_newer_than_the_code_is_exit_3(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    upgrade_database(url)
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    settings = Settings(data_dir=tmp_path, database_url=url)
    code, _, err = Cli(settings)("--as", "x", "runs", "list")
    assert code == 3 and "newer than this adwatch" in err
    code, _, err = Cli(settings)("db", "upgrade")
    assert code == 3 and "newer than this adwatch" in err


def test_a_corrupt_sqlite_file_is_one_line_and_exit_5(tmp_path: Path) -> None:
    path = tmp_path / "adwatch.sqlite3"
    path.write_bytes(b"this is not a database, it is a synthetic corrupt file\n" * 200)
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{path}")
    for argv in (("--as", "x", "runs", "list"), ("db", "upgrade"), ("db", "current")):
        code, out, err = Cli(settings)(*argv)
        assert code == 5, (argv, out, err)
        assert "database unavailable" in err and "not a database" in err
        assert "Traceback" not in err and len(err.strip().splitlines()) <= 2


def test_an_unreachable_postgresql_is_one_line_and_exit_5(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url="postgresql+psycopg://adwatch:secret-pw@127.0.0.1:1/adwatch",
    )
    for argv in (("--as", "x", "runs", "list"), ("db", "upgrade")):
        code, _, err = Cli(settings)(*argv)
        assert code == 5, (argv, err)
        assert "database unavailable" in err
        assert "secret-pw" not in err and "Traceback" not in err


def test_demo_command_end_to_end_runs_as_the_demo_users(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    code, out, err = Cli(settings)("demo", "--port", "0", "--ads", "24")
    assert code == 0, out + err
    assert "candidate profiles that join two or more ads" in out
    assert "no candidate profiles match" not in out
    # A second run in the same data directory reuses the demo registry. With the default
    # site, every kind of evidence has an example for a newcomer.
    code, out, err = Cli(settings)("demo", "--port", "0")
    assert code == 0, out + err
    examples = " ".join(out[out.index("8. each kind of evidence") :].split())
    for kind in ("a shared phone:", "a photo re-posted as a copy", "distinctive text",
                 "a hub number that links nothing"):  # fmt: skip
        assert kind in examples, kind
    engine = make_engine(settings.resolved_database_url)
    with engine.connect() as connection:
        actors = set(connection.execute(text("SELECT DISTINCT actor FROM audit_entries")).scalars())
    engine.dispose()
    assert {"demo-admin", "demo-legal", "demo-investigator", "demo-analyst"} <= actors
