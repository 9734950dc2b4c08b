"""``adwatch retention`` and ``adwatch purge``, driven in process against real databases: what
the legal officer may do, and refusals that exit 2, change nothing and are audited."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.settings import Settings
from legal_policy.retention import hold_blob
from storage.blobstore import BlobStore
from storage.models import Ad, AuditEntry, Base, Case
from tests.conftest import People
from tests.support import Cli, Store, files_under


@dataclass(frozen=True)
class Data:
    """CASE-1 with an expired ad (its photo on disk) and a live one; CASE-2 with a live ad."""

    expired_ad: int
    live_ads: frozenset[int]
    expired_photo: Path


@pytest.fixture
def cli(settings: Settings, people: People) -> Cli:
    return Cli(settings)


@pytest.fixture
def data(settings: Settings, session_factory: sessionmaker[Session], people: People) -> Data:
    blobs = BlobStore(settings.blob_dir)
    photo = blobs.put(b"synthetic photo of an expired ad")
    case_1 = Store(session_factory, people.legal, "CASE-1")
    case_2 = Store(session_factory, people.legal, "CASE-2")
    expired_at = datetime.now(UTC) - timedelta(days=1)
    expired = case_1.ad("Vlieland", "Vlieland, alleen vandaag.", ("+442079460151",), photo=7,
                        expires_at=expired_at, blob=photo)  # fmt: skip
    with session_factory.begin() as session:
        hold_blob(session, sha256=photo, case_id=case_1.case_id, kind="image", size=32,
                  legal_basis="wpg-9", expires_at=expired_at)  # fmt: skip
    live = {
        case_1.ad("Utrecht", "Utrecht, rustig adres.", ("+442079460152",)),
        case_2.ad("Zwolle", "Zwolle centrum.", ("+442079460153",)),
    }
    case_1.link(people.investigator)
    case_2.link(people("other-investigator"))
    return Data(expired, frozenset(live), blobs.path_for(photo))


def tables(session_factory: sessionmaker[Session]) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table but the audit log, as sorted text."""
    with session_factory() as session:
        return {
            table.name: sorted(
                tuple(json.dumps(v, default=str, sort_keys=True) for v in row)
                for row in session.execute(select(table))
            )
            for table in Base.metadata.sorted_tables
            if table.name != "audit_entries"
        }


def data_files(settings: Settings) -> dict[Path, bytes]:
    """The blob store and run logs (the audit checkpoint file beside them grows by design)."""
    return {
        path: path.read_bytes()
        for root in (settings.blob_dir, settings.log_dir)
        for path in files_under(root)
    }


def audit_log(session_factory: sessionmaker[Session]) -> list[AuditEntry]:
    with session_factory() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def test_retention_show_and_set_as_the_legal_officer(
    cli: Cli, session_factory: sessionmaker[Session], data: Data
) -> None:
    """``retention show`` lists every basis with its period, counted from where, its legal
    maximum and the ads it holds, and warns of expired data; ``retention set`` changes a
    period with a reason, which ``show`` then names with the officer."""
    code, out, _ = cli.as_("legal", "retention", "show")
    assert code == 0, out
    wpg9 = next(line for line in out.splitlines() if "wpg-9" in line)
    assert "182" in wpg9 and "authorisation end" in wpg9 and "catalogue (182)" in wpg9
    assert "wpg-8" in out and "capture" in out and "365" in out
    assert "expired data waits for `adwatch purge`" in out

    code, out, _ = cli.as_("legal", "retention", "set", "wpg-9", "90",
                           "--reason", "review period set by the prosecutor")  # fmt: skip
    assert code == 0, out
    assert "wpg-9: retention 90 days; expiry recomputed for 3 ads" in out
    code, out, _ = cli.as_("legal", "retention", "show")
    wpg9 = next(line for line in out.splitlines() if "wpg-9" in line)
    assert " 90 " in wpg9 and "legal" in wpg9 and "review period set by the prosecutor" in wpg9
    [entry] = [e for e in audit_log(session_factory) if e.action == "retention.set"]
    assert entry.properties["previous_days"] == 182 and entry.properties["days"] == 90


@pytest.mark.parametrize(
    ("argv", "message", "refusal"),
    [
        (("--as", "analyst", "retention", "set", "wpg-9", "90", "--reason", "shorter please"),
         "may not set retention periods", "AccessDenied"),
        (("--as", "legal", "retention", "set", "wpg-9", "90"), "needs a reason",
         "InvalidRetention"),
        (("--as", "legal", "retention", "set", "wpg-9", "400", "--reason", "keep it longer"),
         "legal maximum", "InvalidRetention"),
        (("--as", "legal", "retention", "set", "gdpr-6", "90", "--reason", "another basis"),
         "unknown legal basis 'gdpr-6'", "UnknownLegalBasis"),
        (("--as", "analyst", "retention", "show"), "may not set retention periods",
         "AccessDenied"),
        (("--as", "analyst", "purge"), "may not purge", "AccessDenied"),
        (("--as", "investigator", "purge", "--dry-run"), "may not purge", "AccessDenied"),
        (("--as", "legal", "purge", "--case", "CASE-1"), "needs a reason", "InvalidRetention"),
        (("--as", "legal", "purge", "--case", "CASE-9", "--reason", "closed"), "CASE-9",
         "UnknownCase"),
    ],
)  # fmt: skip
def test_refusals_exit_2_change_nothing_and_are_audited(
    cli: Cli,
    settings: Settings,
    session_factory: sessionmaker[Session],
    data: Data,
    argv: tuple[str, ...],
    message: str,
    refusal: str,
) -> None:
    """Bad input or the wrong role: exit code 2 with a clear message; no row or file
    changes, and the one new audit entry is the refusal, naming who tried what and why."""
    before = tables(session_factory)
    files = data_files(settings)
    entries = len(audit_log(session_factory))

    code, out, err = cli(*argv)

    assert code == 2, out + err
    assert message in err
    assert tables(session_factory) == before
    assert data_files(settings) == files
    new = audit_log(session_factory)[entries:]
    assert [e.action for e in new] == ["refused"]
    assert new[0].actor == argv[1] and new[0].properties["refusal"] == refusal
    command = f"adwatch retention {argv[3]}" if argv[2] == "retention" else "adwatch purge"
    assert new[0].subject == command
    if refusal == "InvalidRetention" and "--case" in argv:  # filed under the case it named
        assert new[0].cases == "|CASE-1|"


def test_purge_dry_run_then_purge_then_purge_again(
    cli: Cli, settings: Settings, session_factory: sessionmaker[Session], data: Data
) -> None:
    """``purge --dry-run`` counts what would go and changes nothing; ``purge`` deletes the
    expired ad and its photo, keeps the live ads and prints the receipt's digests; a second
    ``purge`` deletes nothing."""
    before = tables(session_factory)
    code, out, _ = cli.as_("legal", "purge", "--dry-run")
    assert code == 0, out
    assert "dry run" in out and "nothing deleted" in out and "would delete" in out
    assert tables(session_factory) == before and data.expired_photo.exists()

    code, out, _ = cli.as_("legal", "purge")
    assert code == 0, out
    assert "receipt in the audit log" in out and "files deleted: 1" in out
    with session_factory() as session:
        assert set(session.scalars(select(Ad.id))) == data.live_ads
    assert not data.expired_photo.exists()
    [receipt] = [e for e in audit_log(session_factory) if e.action == "purge.receipt"]
    assert receipt.actor == "legal" and receipt.properties["counts"]["ads"] == 1
    assert "Vlieland" not in json.dumps(receipt.properties)

    after = tables(session_factory)
    code, out, _ = cli.as_("legal", "purge")
    assert code == 0 and "files deleted: 0" in out
    assert tables(session_factory) == after


def test_purge_case_closes_the_case_and_deletes_all_of_it(
    cli: Cli, session_factory: sessionmaker[Session], data: Data
) -> None:
    """``purge --case CASE-1 --reason …`` deletes every ad of CASE-1, live ones too, and
    closes it; CASE-2's ad stays."""
    code, out, _ = cli.as_("legal", "purge", "--case", "CASE-1", "--reason",
                           "case closed by the prosecutor")  # fmt: skip
    assert code == 0, out
    assert "case CASE-1 (closed)" in out
    with session_factory() as session:
        remaining = session.execute(select(Ad.id, Case.number).join(Case)).all()
        closed = session.scalars(select(Case.closed_at).where(Case.number == "CASE-1")).one()
    assert {number for _, number in remaining} == {"CASE-2"} and len(remaining) == 1
    assert closed is not None
