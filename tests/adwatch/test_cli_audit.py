"""``adwatch audit`` and ``adwatch db upgrade``, driven in process against real databases."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.engine import make_url

from adwatch.settings import Settings
from legal_policy.audit_log import chain_head, verify_stored_chain
from storage.db import head_revision, make_engine, make_session_factory
from storage.models import AuditEntry
from tests.support import Cli

if TYPE_CHECKING:
    from tests.conftest import People

REPO = Path(__file__).resolve().parents[2]
ADWATCH = (sys.executable, "-c", "from adwatch.cli import main; main()")


@pytest.fixture
def cli(settings: Settings, people: People) -> Cli:
    return Cli(settings)


def _head(people: People) -> str:
    with people.session_factory() as session:
        return str(chain_head(session))


def _delete_last_entry(people: People) -> None:
    """As the database owner could: lift the protection, delete, put it back."""
    with people.session_factory.begin() as session:
        if session.get_bind().dialect.name == "sqlite":
            session.execute(text("DROP TRIGGER audit_entries_no_delete"))
            last = chain_head(session).seq
            session.execute(delete(AuditEntry).where(AuditEntry.seq == last))
            session.execute(
                text(
                    "CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries "
                    "BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END"
                )
            )
        else:
            session.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER ALL"))
            last = chain_head(session).seq
            session.execute(delete(AuditEntry).where(AuditEntry.seq == last))
            session.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER ALL"))


# --- head, checkpoint, verify ------------------------------------------------------------


def test_head_prints_seq_colon_hash(cli: Cli, people: People) -> None:
    code, out, _ = cli("--as", "legal", "audit", "head")
    assert code == 0 and out.strip() == _head(people)
    assert cli("--as", "admin", "audit", "head")[0] == 0


def test_head_and_verify_are_refused_to_analysts_and_the_refusal_is_audited(
    cli: Cli, people: People
) -> None:
    code, _, err = cli("--as", "analyst", "audit", "verify")
    assert code == 2 and "may not verify the audit log" in err
    with people.session_factory() as session:
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()
    assert (last.action, last.actor, last.subject) == ("refused", "analyst", "adwatch audit verify")


def test_verify_without_checkpoints_passes_but_says_what_it_cannot_see(cli: Cli) -> None:
    code, out, err = cli("--as", "legal", "audit", "verify")
    assert code == 0 and "audit log intact" in out
    assert "no checkpoint file at" in err and "cannot be detected" in err


def test_checkpoint_then_verify_then_deletion_fails_with_exit_1(
    cli: Cli, people: People, settings: Settings
) -> None:
    code, out, _ = cli("--as", "legal", "audit", "checkpoint", "--reason", "weekly")
    assert code == 0 and _head(people) in out
    line = json.loads(settings.resolved_audit_checkpoint_file.read_text())
    assert f"{line['seq']}:{line['head_hash']}" == _head(people)
    assert line["reason"] == "weekly (legal)"
    code, out, err = cli("--as", "legal", "audit", "verify")
    assert code == 0 and "checked against 1 checkpoints" in out and err == ""
    _delete_last_entry(people)
    code, _, err = cli("--as", "legal", "audit", "verify")
    assert code == 1
    assert "the newest entries were deleted" in err and "verification FAILED" in err


def test_verify_with_kept_heads_and_another_checkpoint_file(
    cli: Cli, people: People, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = _head(people)
    elsewhere = tmp_path / "usb" / "checkpoints.jsonl"
    assert cli("--as", "legal", "audit", "checkpoint", "--file", str(elsewhere))[0] == 0
    cli("--as", "legal", "audit", "list")  # appends an entry: the kept head stays valid
    args = ("--as", "legal", "audit", "verify", "--checkpoints", str(elsewhere))
    code, out, _ = cli(*args, "--head", kept, "--head", kept.split(":")[1])
    assert code == 0 and "the 2 --head given are in the chain" in out
    assert "the newest 1 entries are not yet covered by a checkpoint" in out
    seq, digest = kept.split(":")
    code, _, err = cli(*args, "--head", f"{int(seq) - 1}:{digest}")
    assert code == 1 and "--head: entry" in err
    code, _, _ = cli(*args, "--head", "12:nothex")
    assert code == 2 and "64-digit hex" in capsys.readouterr().err  # a usage error


def test_a_checkpoint_file_that_cannot_be_written_or_found_is_a_usage_error(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    code, _, _ = cli("--as", "legal", "audit", "checkpoint", "--file", str(blocker / "c.jsonl"))
    assert code == 2 and "cannot open checkpoint file" in capsys.readouterr().err
    code, _, _ = cli("--as", "legal", "audit", "verify", "--checkpoints", str(tmp_path / "typo"))
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_malformed_checkpoint_lines_fail_verification_without_crashing(
    cli: Cli, settings: Settings
) -> None:
    path = settings.resolved_audit_checkpoint_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"{not json\n")
    code, _, err = cli("--as", "legal", "audit", "verify")
    assert code == 1 and "line 1: not a checkpoint" in err


# --- list ---------------------------------------------------------------------------------


def test_list_as_json_lines_and_as_a_table(cli: Cli) -> None:
    code, out, _ = cli("--as", "legal", "audit", "list", "--json", "--case", "CASE-1")
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and records
    assert all("CASE-1" in r["cases"] for r in records)
    assert {"entry_hash", "prev_hash", "properties"} <= set(records[0])
    code, out, _ = cli(
        "--as", "legal", "audit", "list", "--actor", "admin", "--limit", "2", "--json"
    )
    assert code == 0 and [json.loads(line)["actor"] for line in out.splitlines()] == ["admin"] * 2
    code, out, _ = cli("--as", "legal", "audit", "list", "--action", "case.added")
    assert code == 0 and "case:CASE-1" in out and "case:CASE-2" in out and "user:" not in out
    code, out, _ = cli(
        "--as", "legal", "audit", "list", "--from", "2001-01-01", "--to", "2001-01-02"
    )
    assert code == 0 and "no audit entries match" in out


def test_list_refuses_bad_times_and_other_roles(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = cli("--as", "legal", "audit", "list", "--from", "yesterday")
    assert code == 2 and "not an ISO 8601 date or time" in capsys.readouterr().err
    code, _, err = cli("--as", "admin", "audit", "list")
    assert code == 2 and "may not read and export the audit log" in err


def test_list_help_says_times_without_zone_are_utc(cli: Cli) -> None:
    result = subprocess.run(
        [*ADWATCH, "audit", "list", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert "without a zone: UTC" in " ".join(result.stdout.split())


# --- export -------------------------------------------------------------------------------


def test_export_and_verify_export(
    cli: Cli, people: People, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "case-1-audit.jsonl"
    export = ("--as", "legal", "audit", "export", "--case", "CASE-1", "--output", str(output))
    code, _, _ = cli(*export)
    assert code == 2 and "--justification" in capsys.readouterr().err  # a disclosure needs one
    code, out, _ = cli(*export, "-j", "OM request 17", "--recipient", "OM Rotterdam")
    assert code == 0 and "of case CASE-1 in full" in out
    code, out, _ = cli("audit", "verify-export", str(output))
    assert code == 0 and "export intact: case CASE-1" in out
    code, _, _ = cli(*export, "-j", "again")
    assert code == 2 and "never overwrites" in capsys.readouterr().err
    lines = output.read_bytes().splitlines()
    i = next(i for i, line in enumerate(lines) if json.loads(line)["type"] == "entry")
    entry = json.loads(lines[i])
    entry["subject"] = "something else"
    lines[i] = json.dumps(entry).encode()
    output.write_bytes(b"\n".join(lines) + b"\n")
    code, _, err = cli("audit", "verify-export", str(output))
    assert code == 1 and "export verification FAILED" in err


def test_verify_export_needs_neither_database_nor_user(
    cli: Cli, people: People, tmp_path: Path
) -> None:
    output = tmp_path / "e.jsonl"
    args = ("--as", "legal", "audit", "export", "--case", "CASE-2", "-o", str(output), "-j", "x y")
    assert cli(*args)[0] == 0
    # Nothing listens on port 1: any use of the database would fail with exit 5.
    offline = Settings(
        data_dir=tmp_path / "offline",
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
    )
    code, out, err = Cli(offline)("audit", "verify-export", str(output))
    assert (code, err) == (0, "") and "export intact" in out


# --- parallel commands --------------------------------------------------------------------


def test_twelve_parallel_cli_commands_that_write_all_succeed(
    settings: Settings, people: People
) -> None:
    if not settings.resolved_database_url.startswith("sqlite"):
        # ~20 s of CPU for twelve CLI start-ups; on PostgreSQL the same race is covered by
        # tests/legal_policy/test_audit_concurrency.py (twelve processes, record_event).
        pytest.skip("SQLite only: there every command contends for the one write lock")
    env = {
        "PATH": "/usr/bin:/bin",
        "ADWATCH_DATA_DIR": str(settings.data_dir),
        "ADWATCH_DATABASE_URL": settings.resolved_database_url,
        "ADWATCH_USER": "legal",
    }
    with people.session_factory() as session:
        before = chain_head(session).seq
    processes = [
        subprocess.Popen(
            [*ADWATCH, "audit", "list", "--limit", "1"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(12)
    ]
    failures = [p.communicate(timeout=300)[1] for p in processes if p.wait(timeout=300) != 0]
    assert failures == []
    with people.session_factory() as session:
        result = verify_stored_chain(session)
        listed = session.scalars(select(AuditEntry.action).where(AuditEntry.seq > before)).all()
    assert result.ok and listed.count("audit.listed") == 12


# --- db upgrade ---------------------------------------------------------------------------


@pytest.fixture
def app_role(postgres_url: str) -> Iterator[str]:
    name = f"adwatch_cli_{uuid.uuid4().hex[:10]}"
    admin = "host=127.0.0.1 port=5432 user=postgres dbname="
    with psycopg.connect(admin + "postgres", autocommit=True) as connection:
        connection.execute(f'CREATE ROLE "{name}" LOGIN')
    try:
        yield name
    finally:
        with psycopg.connect(
            admin + (make_url(postgres_url).database or ""), autocommit=True
        ) as connection:
            connection.execute(f'DROP OWNED BY "{name}"')
        with psycopg.connect(admin + "postgres", autocommit=True) as connection:
            connection.execute(f'DROP ROLE IF EXISTS "{name}"')


@pytest.mark.postgres
def test_db_upgrade_grants_the_application_role_and_warns_about_postgres(
    postgres_url: str, app_role: str, tmp_path: Path
) -> None:
    app_url = make_url(postgres_url).set(username=app_role).render_as_string(hide_password=False)
    settings = Settings(
        data_dir=tmp_path, database_url=app_url, migration_database_url=postgres_url
    )
    code, out, err = Cli(settings)("db", "upgrade")
    head = head_revision(postgres_url)
    assert code == 0 and f"database at revision {head}" in out
    assert f"granted {app_role}" in out and err == ""
    engine = make_engine(app_url)
    try:
        with make_session_factory(engine)() as session:
            assert verify_stored_chain(session).ok  # the application can read the log
    finally:
        engine.dispose()
    code, _, err = Cli(Settings(data_dir=tmp_path, database_url=postgres_url))("db", "upgrade")
    assert code == 0 and "warning:" in err and "a superuser" in err


def test_db_upgrade_on_sqlite_notes_that_it_has_no_roles(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    code, out, err = Cli(settings)("db", "upgrade")
    assert code == 0 and "SQLite has no database roles" in out and err == ""
