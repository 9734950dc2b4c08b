"""The systematic-collection monitor (Koops committee 2018: duration, volume, combination).

Per authorisation it measures days running, ads kept, distinct profiles and profiles that
link ads of more than one site. Growth since the last legal review that reaches a
catalogue threshold warns the legal officer and, when the catalogue says so, pauses crawls
under the authorisation until a legal officer reviews it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from legal_policy.audit import AuditEvent
from legal_policy.audit_log import record_event
from legal_policy.catalogue import MonitorThresholds
from storage.models import Ad, Authorisation, CrawlRun, ProfileMembership

MONITOR_ACTOR = "adwatch (systematic-collection monitor)"
FIGURES = ("days_running", "ads_kept", "distinct_profiles", "cross_site_links")


@dataclass(frozen=True, slots=True)
class MonitorStatus:
    """What the monitor measured for one authorisation, against its thresholds."""

    figures: Mapping[str, int]
    baseline: Mapping[str, int]
    thresholds: Mapping[str, int]
    crossed: tuple[str, ...]
    paused: bool

    def growth(self, name: str) -> int:
        """Growth of one figure since the last review."""
        return self.figures[name] - int(self.baseline.get(name, 0))


def crossed_thresholds(
    figures: Mapping[str, int], baseline: Mapping[str, int], thresholds: MonitorThresholds
) -> tuple[str, ...]:
    """The figures whose growth since the last review reached its threshold."""
    limits = thresholds.as_dict()
    return tuple(
        name for name in FIGURES if figures[name] - int(baseline.get(name, 0)) >= limits[name]
    )


def measure(session: Session, authorisation_id: int, now: datetime) -> dict[str, int]:
    """The four figures of one authorisation, now."""
    first_run = session.scalar(
        select(func.min(CrawlRun.started_at)).where(CrawlRun.authorisation_id == authorisation_id)
    )
    days = 0
    if first_run is not None:
        started = (
            first_run if isinstance(first_run, datetime) else datetime.fromisoformat(first_run)
        )
        started = started if started.tzinfo else started.replace(tzinfo=UTC)
        days = max(0, (now - started).days)
    ads_kept = session.scalar(
        select(func.count(Ad.id)).where(Ad.authorisation_id == authorisation_id)
    )
    profiles = (
        select(ProfileMembership.profile_id)
        .distinct()
        .join(Ad, Ad.id == ProfileMembership.ad_id)
        .where(Ad.authorisation_id == authorisation_id)
    )
    distinct_profiles = session.scalar(select(func.count()).select_from(profiles.subquery()))
    cross_site = session.scalar(
        select(func.count()).select_from(
            select(ProfileMembership.profile_id)
            .join(Ad, Ad.id == ProfileMembership.ad_id)
            .where(ProfileMembership.profile_id.in_(profiles))
            .group_by(ProfileMembership.profile_id)
            .having(func.count(distinct(Ad.site_id)) > 1)
            .subquery()
        )
    )
    return {
        "days_running": days,
        "ads_kept": int(ads_kept or 0),
        "distinct_profiles": int(distinct_profiles or 0),
        "cross_site_links": int(cross_site or 0),
    }


def monitor_status(
    session: Session, authorisation: Authorisation, thresholds: MonitorThresholds, now: datetime
) -> MonitorStatus:
    """The monitor's view of one authorisation (no change is made)."""
    figures = measure(session, authorisation.id, now)
    baseline = dict(authorisation.monitor_baseline or {})
    return MonitorStatus(
        figures=figures,
        baseline=baseline,
        thresholds=thresholds.as_dict(),
        crossed=crossed_thresholds(figures, baseline, thresholds),
        paused=authorisation.paused_at is not None,
    )


def apply_monitor(
    session: Session, authorisation: Authorisation, thresholds: MonitorThresholds, now: datetime
) -> MonitorStatus:
    """Measure, and pause crawls under the authorisation when a threshold is crossed and
    the catalogue says to pause (audited once, when the pause begins)."""
    status = monitor_status(session, authorisation, thresholds, now)
    if status.crossed and thresholds.pause_crawls_when_crossed and not status.paused:
        names = ", ".join(status.crossed)
        authorisation.paused_at = now
        authorisation.pause_reason = f"systematic-collection thresholds crossed: {names}"
        record_event(
            session,
            AuditEvent(
                action="authorisation.paused",
                actor=MONITOR_ACTOR,
                subject=f"authorisation:{authorisation.id}",
                properties={"crossed": list(status.crossed), "figures": dict(status.figures)},
                cases=(authorisation.case_number,),
            ),
        )
        status = MonitorStatus(
            status.figures, status.baseline, status.thresholds, status.crossed, True
        )
    return status
