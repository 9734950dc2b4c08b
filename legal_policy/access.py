"""Who is asking, and why: passed explicitly to every read of personal data."""

from __future__ import annotations

from dataclasses import dataclass

from legal_policy.errors import JustificationRequired


@dataclass(frozen=True, slots=True)
class AccessContext:
    """The person consulting data and the justification logged with the consultation."""

    actor: str
    justification: str | None = None


def require_justification(access: AccessContext, what: str) -> str:
    """The justification, or a refusal: consultations are logged with one (Wpg 32a, LED 25)."""
    justification = (access.justification or "").strip()
    if len(justification) < 3:
        raise JustificationRequired(
            f"consulting {what} is recorded in the audit log with a justification; "
            "give one (for example --justification 'case 2026-017: link review')"
        )
    return justification
