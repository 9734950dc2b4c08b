"""What linking says about each ad and profile: evidence records, memberships, profile
events, and the sentences an analyst reads (``Evidence.describe``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

EvidenceKind = Literal["phone", "image", "text", "hub_phone", "hub_image", "unconfirmed_image"]
EventKind = Literal["created", "grown", "merged", "split"]


@dataclass(frozen=True, slots=True)
class Evidence:
    """One reason an ad sits in its profile, as data; ``describe`` puts it in words."""

    kind: EvidenceKind
    other_ad_id: str | None
    phone: str | None = None
    image: int | None = None
    other_image: int | None = None
    distance: int | None = None
    score: float | None = None
    count: int | None = None
    # For an unconfirmed photo match: the dHash distance of the pairing (None: unknown).
    second_distance: int | None = None
    second_limit: int | None = None

    def describe(self) -> str:
        """The reason in one sentence."""
        if self.kind == "phone":
            others = f" and {self.count - 1} more" if self.count and self.count > 1 else ""
            return f"shares phone {self.phone} with ad {self.other_ad_id}{others} in this profile"
        if self.kind == "image":
            return (
                f"photo {_ordinal(self.image)} looks like photo {_ordinal(self.other_image)} "
                f"of ad {self.other_ad_id} (perceptual hash distance {self.distance} of 64)"
            )
        if self.kind == "text":
            return f"its distinctive text is {self.score:.0f}% similar to ad {self.other_ad_id}"
        if self.kind == "unconfirmed_image":
            if self.second_distance is None:
                why = "one of them has no difference hash (kept before 0010), so it is unconfirmed"
            else:
                why = (
                    f"the independent difference hash differs by {self.second_distance} bits "
                    f"(more than {self.second_limit})"
                )
            return (
                f"photo {_ordinal(self.image)} resembles photo {_ordinal(self.other_image)} of ad "
                f"{self.other_ad_id} (perceptual hash distance {self.distance} of 64), but {why}: "
                "not linked by this photo"
            )
        if self.kind == "hub_phone":
            return (
                f"phone {self.phone} also appears beside {self.count} other numbers; "
                "treated as a shared number (help desk, agency), not as identity"
            )
        return (
            f"photo {_ordinal(self.image)} also appears with at least {self.count} unrelated "
            "phone groups; treated as a stock photo, not as identity"
        )

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready form, with the sentence under ``explanation``."""
        data: dict[str, object] = {"kind": self.kind}
        names = ("other_ad_id", "phone", "image", "other_image", "distance", "score", "count")
        for name in (*names, "second_distance", "second_limit"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        data["explanation"] = self.describe()
        return data


@dataclass(frozen=True, slots=True)
class Membership:
    """An ad's place in a profile, with the evidence that put it there."""

    ad_id: str
    profile_id: int
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True, slots=True)
class ProfileEvent:
    """A profile created, grown, merged into another, or split off; with its reason."""

    kind: EventKind
    profile_id: int
    other_profile_id: int | None
    reason: str


@dataclass(slots=True)
class BatchResult:
    """What one ``add`` changed: memberships of new and moved ads, and profile events."""

    memberships: list[Membership] = field(default_factory=list)
    events: list[ProfileEvent] = field(default_factory=list)

    def count(self, kind: EventKind) -> int:
        """Number of events of one kind."""
        return sum(1 for e in self.events if e.kind == kind)


def _ordinal(position: int | None) -> str:
    return "?" if position is None else str(position + 1)
