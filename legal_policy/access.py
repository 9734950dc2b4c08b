"""Who is asking, in which role, for which cases, and why: passed to every read and action.

An ``AccessContext`` is built once per request by the front door from the user registry
(``legal_policy.registry.load_access``) and handed explicitly to every service; there is no
global "current user". Its ``require`` and ``case_filter`` apply the role table of
``legal_policy.roles``; queries of personal data restrict themselves to ``case_filter``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from legal_policy.audit import AuditEvent
from legal_policy.errors import AccessDenied, JustificationRequired
from legal_policy.roles import GRANTS, Permission, Reach, Role, roles_with


@dataclass(frozen=True, slots=True)
class CaseRef:
    """A case as access decisions see it."""

    id: int
    number: str


@dataclass(frozen=True, slots=True)
class AccessContext:
    """The person acting, their role and open cases, and the justification they gave."""

    user: str
    role: Role
    cases: tuple[CaseRef, ...] = ()
    justification: str | None = None
    # Where the request came from (``cli:login@host``, ``web``), kept in audit entries.
    via: str = "cli"
    _member_ids: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_member_ids", frozenset(case.id for case in self.cases))

    def justified(self, justification: str | None) -> AccessContext:
        """The same person with a justification for what they are about to consult."""
        return replace(self, justification=justification)

    def is_member(self, case_id: int) -> bool:
        """Whether the user is a member of this (open) case."""
        return case_id in self._member_ids

    def reach(self, permission: Permission) -> Reach | None:
        """How far the user's role grants ``permission``; None when it does not."""
        return GRANTS[self.role].get(permission)

    def require(self, permission: Permission, case: CaseRef | None = None) -> None:
        """Refuse (``AccessDenied``) unless the role grants ``permission`` for ``case``."""
        reach = self.reach(permission)
        if reach is None:
            who = ", ".join(role.value for role in roles_with(permission)) or "no role"
            raise AccessDenied(
                f"{self.user} ({self.role.value}) may not {permission.value}; that is for: {who}",
                case=case.number if case else None,
            )
        if case is not None and reach is Reach.OWN_CASES and not self.is_member(case.id):
            raise AccessDenied(
                f"{self.user} is not a member of case {case.number} and may not "
                f"{permission.value} in it (need to know)",
                case=case.number,
            )

    def case_filter(self, permission: Permission) -> frozenset[int] | None:
        """Case ids the user may exercise ``permission`` in; None means every case.

        Raises ``AccessDenied`` when the role does not grant the permission at all.
        """
        self.require(permission)
        if self.reach(permission) is Reach.ALL_CASES:
            return None
        return self._member_ids

    def event(
        self,
        action: str,
        subject: str,
        *,
        properties: Mapping[str, Any] | None = None,
        cases: Iterable[str] = (),
        justification: str | None = None,
    ) -> AuditEvent:
        """An audit event by this person, with their role and channel recorded."""
        return AuditEvent(
            action=action,
            actor=self.user,
            subject=subject,
            properties={**(properties or {}), "role": self.role.value, "via": self.via},
            justification=justification,
            cases=tuple(sorted(set(cases))),
        )


SCHEDULER = "adwatch-scheduler"


def system_access(duty: str) -> AccessContext:
    """The access context of adwatch's scheduler doing a duty of the system itself (the
    daily purge); audited under its own name, never a person's."""
    return AccessContext(user=SCHEDULER, role=Role.SYSTEM, via=f"scheduler:{duty}")


def require_justification(access: AccessContext, what: str) -> str:
    """The justification, or a refusal: consultations are logged with one (Wpg 32a, LED 25)."""
    justification = (access.justification or "").strip()
    if len(justification) < 3:
        raise JustificationRequired(
            f"consulting {what} is recorded in the audit log with a justification; "
            "give one (for example --justification 'case 2026-017: link review')"
        )
    return justification
