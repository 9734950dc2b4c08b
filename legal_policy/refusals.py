"""Refusals are facts too: every ``PolicyError`` met by a person is written to the audit log.

The front door that caught the error calls ``record_refusal`` in a transaction of its own,
after the refused change rolled back, so that the refusal stays even though the change
never happened.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from legal_policy.audit import AuditEvent
from legal_policy.audit_log import record_event
from legal_policy.errors import PolicyError

UNIDENTIFIED = "(no user given)"


def record_refusal(
    session: Session,
    error: PolicyError,
    *,
    actor: str | None,
    attempted: str,
    via: str,
    role: str | None = None,
) -> None:
    """Audit who was refused what, and why (the error's message; never data content)."""
    properties: dict[str, object] = {"refusal": type(error).__name__, "reason": str(error)}
    properties["via"] = via
    if role:
        properties["role"] = role
    record_event(
        session,
        AuditEvent(
            action="refused",
            actor=(actor or "").strip() or UNIDENTIFIED,
            subject=attempted,
            properties=properties,
            cases=(error.case,) if error.case else (),
        ),
    )
