"""``adwatch runs show``, driven in process after a real crawl of the demo site on loopback:
the run's outcome and its WARC files with the SHA-256 of the bytes on disk, for those whose
role and case reach the run; everyone else is refused, audited under the run's case."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.demo.site import running_demo_server
from adwatch.services.demo import point_demo_profile_at
from adwatch.services.runs import RunNotFound, show_run
from adwatch.settings import Settings
from legal_policy.errors import AccessDenied
from storage.models import AuditEntry, WarcFile
from tests.conftest import People
from tests.support import Cli, authorise, crawl


@pytest.fixture
def run_id(
    settings: Settings, session_factory: sessionmaker[Session], people: People
) -> Iterator[int]:
    """A finished crawl of CASE-1 with its WARC files."""
    with running_demo_server(port=0, seed=7, n_ads=6, faults=True) as server:
        point_demo_profile_at(settings, server.base_url)
        authorisation_id = authorise(settings, session_factory, people.legal)
        outcome, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
    assert outcome.run.status == "finished" and outcome.run.ads_captured > 0
    yield outcome.run.run_id


def test_runs_show_lists_the_warc_files_with_the_sha256_of_the_file_on_disk(
    settings: Settings, session_factory: sessionmaker[Session], people: People, run_id: int
) -> None:
    with session_factory() as session:
        files = session.scalars(select(WarcFile).where(WarcFile.run_id == run_id)).all()
    assert files
    cli = Cli(settings)
    for user in ("investigator", "analyst", "legal"):
        code, out, err = cli.as_(user, "runs", "show", str(run_id))
        assert code == 0, err
        assert "finished" in out and "CASE-1" in out and "ads captured" in out
        assert "malformed_page: 1" in out and "http_error: 1" in out  # by kind, no URLs
        assert "/ad/" not in out
        assert str(settings.log_dir / f"run-{run_id}.log") in out
        for warc in files:
            on_disk = hashlib.sha256((settings.data_dir / warc.path).read_bytes()).hexdigest()
            line = next(line for line in out.splitlines() if warc.path in line)
            assert on_disk in line and str(warc.size) in line and str(warc.records) in line


def test_a_run_outside_ones_cases_is_refused_naming_its_case_and_audited(
    settings: Settings, session_factory: sessionmaker[Session], people: People, run_id: int
) -> None:
    code, out, err = Cli(settings).as_("other-analyst", "runs", "show", str(run_id))

    assert code == 2 and "CASE-1" in err and "sha256" not in out.lower()
    with session_factory() as session:
        refused = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "refused").order_by(AuditEntry.seq)
        ).all()
    assert [(entry.actor, entry.cases) for entry in refused] == [("other-analyst", "|CASE-1|")]
    with session_factory() as session, pytest.raises(AccessDenied) as denied:
        show_run(session, people("outsider"), run_id, log_dir=settings.log_dir)
    assert denied.value.case == "CASE-1"


def test_an_unknown_run_is_not_found(
    settings: Settings, session_factory: sessionmaker[Session], people: People, run_id: int
) -> None:
    with session_factory() as session, pytest.raises(RunNotFound):
        show_run(session, people.investigator, run_id + 1, log_dir=settings.log_dir)
