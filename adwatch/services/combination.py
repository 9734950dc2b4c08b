"""Combining the data of two cases (LED art. 25), and reversing it, with re-linking."""

from __future__ import annotations

from sqlalchemy.orm import Session

from adwatch.services.link_snapshots import LinkSnapshots
from adwatch.services.linking import LinkOutcome, relink_cases
from legal_policy.access import AccessContext
from legal_policy.registry import combine_cases, get_case, separate_cases
from legal_policy.roles import Permission


def combine_and_relink(
    session: Session,
    access: AccessContext,
    case_a: str,
    case_b: str,
    reason: str,
    default_region: str,
    snapshots: LinkSnapshots | None,
) -> LinkOutcome:
    """Record the combination (legal officers) and link the two cases' ads together."""
    combination = combine_cases(session, access, case_a, case_b, reason)
    return relink_cases(
        session,
        access,
        (combination.case_a_id, combination.case_b_id),
        f"cases {case_a} and {case_b} combined: {reason.strip()}",
        permission=Permission.COMBINE_CASES,
        default_region=default_region,
        snapshots=snapshots,
    )


def separate_and_relink(
    session: Session,
    access: AccessContext,
    case_a: str,
    case_b: str,
    reason: str,
    default_region: str,
    snapshots: LinkSnapshots | None,
) -> LinkOutcome:
    """Reverse a combination (legal officers): afterwards no profile spans both cases."""
    separate_cases(session, access, case_a, case_b, reason)
    return relink_cases(
        session,
        access,
        (get_case(session, case_a).id, get_case(session, case_b).id),
        f"cases {case_a} and {case_b} separated again: {reason.strip()}",
        permission=Permission.COMBINE_CASES,
        default_region=default_region,
        snapshots=snapshots,
    )
