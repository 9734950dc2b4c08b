"""Linking captured ads into candidate profiles in the database, inside their case.

Ads are linked only with ads of the same linking scope: their own case, and the cases it
is combined with (``legal_policy.registry.linking_scopes``). For each scope a matching
engine holds the linked ads with the profiles they already have (no re-linking): read
from the scope's snapshot under the data directory when that is current
(``adwatch.services.link_snapshots``), else rebuilt from the features kept per ad
(``ad_link_features``, computed when the ad was first linked). Only the new ads' features
are computed; only the profiles they touch are re-evaluated. When what
may be linked changes (cases combined or separated, ads purged) a scope is re-linked from
scratch with ``relink_cases``, keeping profile ids where profiles live on. Memberships,
profile events and indicator scores are written back in the caller's transaction, and the
change is audited.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import BigInteger, and_, cast, delete, func, insert, literal, select, text
from sqlalchemy.orm import Session

from adwatch.services.link_snapshots import (
    Checksum,
    LinkingDelta,
    LinkingState,
    LinkSnapshots,
    ScopeState,
)
from adwatch.services.scoring import score_profiles
from crawler.indicator_model import load_indicator_model
from legal_policy.access import AccessContext
from legal_policy.audit_log import record_event
from legal_policy.registry import case_ref, linking_scopes
from legal_policy.roles import Permission
from matching.engine import MatchConfig, MatchingEngine
from matching.evidence import BatchResult
from matching.features import (
    FEATURES_REVISION,
    TextObservation,
    build_features,
    pack_sentence_keys,
    unpack_sentence_keys,
)
from matching.indicators import IndicatorModel
from matching.records import AdFeatures, AdInput, ImageFingerprint
from matching.text import BoilerplateModel
from storage.models import (
    Ad,
    AdImage,
    AdLinkFeatures,
    AdPhone,
    CandidateProfile,
    Case,
    IdCounter,
    Phone,
    ProfileEventRecord,
    ProfileMembership,
    Site,
)
from storage.types import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LinkOutcome:
    """What linking a batch of ads changed."""

    ads_linked: int
    profiles_created: int
    profiles_grown: int
    profiles_merged: int
    profiles_split: int = 0
    ads_moved: int = 0

    def __add__(self, other: LinkOutcome) -> LinkOutcome:
        return LinkOutcome(
            self.ads_linked + other.ads_linked,
            self.profiles_created + other.profiles_created,
            self.profiles_grown + other.profiles_grown,
            self.profiles_merged + other.profiles_merged,
            self.profiles_split + other.profiles_split,
            self.ads_moved + other.ads_moved,
        )


NOTHING = LinkOutcome(0, 0, 0, 0)


def load_ad_inputs(
    session: Session, case_ids: Iterable[int], *, ad_ids: Collection[int] | None = None
) -> list[AdInput]:
    """Stored ads of some cases (or just ``ad_ids`` of them) as matcher input, images as
    their stored perceptual hashes, in ad id order.

    A field the legal basis dropped is stored as NULL and reaches the matcher empty.
    """
    inputs: list[AdInput] = []
    for where in _ad_filters(case_ids, ad_ids):
        images = _images(session, where)
        query = (
            select(Ad.id, Site.key, Ad.url, Ad.city, Ad.posted_at, Ad.title, Ad.text)
            .join(Site, Site.id == Ad.site_id)
            .where(where)
            .order_by(Ad.id)
        )
        inputs.extend(
            AdInput(
                ad_id=str(ad_id),
                site=site,
                url=url,
                city=city,
                posted_at=posted_at,
                title=title or "",
                text=text or "",
                images=tuple(images.get(ad_id, ())),
            )
            for ad_id, site, url, city, posted_at, title, text in session.execute(query)
        )
    return inputs


def stored_phones(
    session: Session, case_ids: Iterable[int], *, ad_ids: Collection[int] | None = None
) -> dict[str, tuple[str, ...]]:
    """The numbers the crawler stored for each ad of some cases (or just ``ad_ids`` of
    them), E.164 or a pseudonym, in the order the ad wrote them.

    Every ad gets an entry, empty when none was stored: the stored numbers are the ones
    the legal basis let adwatch keep, so text is never searched for more.
    """
    phones: dict[str, list[str]] = {}
    for where in _ad_filters(case_ids, ad_ids):
        phones.update((str(ad_id), []) for ad_id in session.scalars(select(Ad.id).where(where)))
        for ad_id, e164 in session.execute(
            select(AdPhone.ad_id, Phone.e164)
            .join(Phone, Phone.id == AdPhone.phone_id)
            .join(Ad, Ad.id == AdPhone.ad_id)
            .where(where)
            .order_by(AdPhone.ad_id, AdPhone.position, Phone.e164)
        ):
            phones[str(ad_id)].append(e164)
    return {ad_id: tuple(values) for ad_id, values in phones.items()}


def _ad_filters(case_ids: Iterable[int], ad_ids: Collection[int] | None) -> list[Any]:
    """WHERE clauses that select the ads, in chunks small enough for any database."""
    in_cases = Ad.case_id.in_(list(case_ids))
    if ad_ids is None:
        return [in_cases]
    ordered = sorted(ad_ids)
    return [
        and_(in_cases, Ad.id.in_(ordered[start : start + _CHUNK]))
        for start in range(0, len(ordered), _CHUNK)
    ]


_CHUNK = 500


def _images(session: Session, where: Any) -> dict[int, list[ImageFingerprint]]:
    """The selected ads' image fingerprints, in image order."""
    images: dict[int, list[ImageFingerprint]] = defaultdict(list)
    for ad_id, phash, variants, dhashes in session.execute(
        select(AdImage.ad_id, AdImage.phash, AdImage.phash_variants, AdImage.dhashes)
        .join(Ad, Ad.id == AdImage.ad_id)
        .where(where)
        .order_by(AdImage.ad_id, AdImage.position)
    ):
        images[ad_id].append(_fingerprint(phash, variants, dhashes))
    return images


def _fingerprint(
    phash: str, variants: list[str] | None, dhashes: list[str] | None
) -> ImageFingerprint:
    return ImageFingerprint(
        int(phash, 16),
        tuple(int(v, 16) for v in variants or ()),
        tuple(int(v, 16) for v in dhashes or ()),
    )


def link_unlinked_ads(
    session: Session,
    access: AccessContext,
    case_ids: Iterable[int],
    *,
    default_region: str = "NL",
    config: MatchConfig | None = None,
    indicator_model: IndicatorModel | None = None,
    snapshots: LinkSnapshots | None = None,
) -> LinkOutcome:
    """Link every ad of the given cases that has no profile yet, inside its linking scope.

    Linking follows a crawl: the user must be allowed to crawl for each case. With
    ``snapshots`` the engine of a scope is read from its snapshot when that is current
    (else rebuilt from the database) and written back afterwards, so that the cost grows
    with the new ads rather than with the store.
    """
    cases = _cases(session, case_ids)
    for case in cases.values():
        access.require(Permission.START_CRAWL, case_ref(case))
    _serialise_linking(session)
    scopes = {scope for scope in linking_scopes(session, cases).values()}
    outcome = NOTHING
    model = indicator_model or load_indicator_model()
    for scope in sorted(scopes, key=sorted):
        outcome += _link_scope(
            session, access, scope, default_region, config or MatchConfig(), model, snapshots
        )
    return outcome


def relink_cases(
    session: Session,
    access: AccessContext,
    case_ids: Iterable[int],
    reason: str,
    *,
    permission: Permission,
    snapshots: LinkSnapshots | None,
    default_region: str = "NL",
    config: MatchConfig | None = None,
    indicator_model: IndicatorModel | None = None,
) -> LinkOutcome:
    """Re-link the linking scopes of the given cases from scratch (after a combination, its
    reversal or a purge). Profile ids are kept where profiles live on; a profile id is
    never held by two scopes. ``permission`` is what entitles the user to cause this.

    Every ad's features are computed again against its new scope. Snapshots of scopes
    that hold these cases are deleted (after a purge they hold deleted ads' data) and
    the new scopes' snapshots are written.
    """
    access.require(permission)
    _serialise_linking(session)
    wanted = set(case_ids)
    cases = _cases(session, wanted)
    scopes = sorted(set(linking_scopes(session, cases).values()), key=sorted)
    if snapshots is not None:
        snapshots.discard(wanted.union(*scopes))
    model = indicator_model or load_indicator_model()
    taken: set[int] = set()
    outcome = NOTHING
    for scope in scopes:
        linked = _memberships(session, scope)
        if not linked:
            continue
        engine = MatchingEngine(config, first_profile_id=_next_profile_id(session))
        boilerplate = BoilerplateModel()
        features, _ = _compute_features(
            session, scope, {int(i) for i in linked}, boilerplate, engine.config, default_region
        )
        engine.load(features, linked)
        result = engine.relink_all(reason, taken_ids=taken)
        taken.update(m.profile_id for m in result.memberships)
        _store(session, result, engine.config.version)
        score_profiles(session, {m.profile_id for m in result.memberships}, model)
        scope_outcome = _outcome(result, ads_linked=0)
        moved = sum(1 for m in result.memberships if linked[m.ad_id] != m.profile_id)
        scope_outcome = LinkOutcome(
            0,
            scope_outcome.profiles_created,
            scope_outcome.profiles_grown,
            scope_outcome.profiles_merged,
            scope_outcome.profiles_split,
            moved,
        )
        _audit(session, access, "profiles.relinked", scope, scope_outcome, reason=reason)
        if snapshots is not None:
            snapshots.save(
                LinkingState(engine, boilerplate), _scope_state(session, scope, engine.config)
            )
        outcome += scope_outcome
    return outcome


def _link_scope(
    session: Session,
    access: AccessContext,
    scope: frozenset[int],
    default_region: str,
    config: MatchConfig,
    model: IndicatorModel,
    snapshots: LinkSnapshots | None,
) -> LinkOutcome:
    unlinked = set(
        session.scalars(
            select(Ad.id).where(
                Ad.case_id.in_(scope),
                ~select(ProfileMembership.id).where(ProfileMembership.ad_id == Ad.id).exists(),
            )
        )
    )
    if not unlinked:
        return NOTHING
    before = _scope_state(session, scope, config)
    state = _linking_state(session, scope, config, default_region, snapshots, before)
    engine = state.engine
    engine.skip_profile_ids_below(_next_profile_id(session))
    features, observations = _compute_features(
        session,
        scope,
        unlinked,
        state.boilerplate,
        config,
        default_region,
        known_hubs=engine.hub_phones(),
    )
    result = engine.add(features)
    after = _after(before, _store(session, result, config.version))
    score_profiles(session, {m.profile_id for m in result.memberships}, model)
    outcome = _outcome(result, ads_linked=len(unlinked))
    _audit(session, access, "profiles.linked", scope, outcome)
    if snapshots is not None:
        delta = LinkingDelta(
            tuple(features),
            tuple(observations),
            {m.ad_id: m.profile_id for m in result.memberships},
        )
        snapshots.append(state, before, after, delta)
    return outcome


def _linking_state(
    session: Session,
    scope: frozenset[int],
    config: MatchConfig,
    default_region: str,
    snapshots: LinkSnapshots | None,
    expected: ScopeState,
) -> LinkingState:
    """The scope's engine with every linked ad, from its snapshot when that is current
    (``expected``), else rebuilt from the stored features (computing those of ads that
    have none)."""
    if snapshots is not None:
        state, why = snapshots.load(expected)
        if state is not None:
            return state
        log.info(
            "linking scope %s: rebuilding the engine from the database (%s)", sorted(scope), why
        )
    linked = _memberships(session, scope)
    boilerplate = BoilerplateModel()
    stored = _stored_features(session, scope, linked.keys())
    for _, observation in stored.values():
        boilerplate.observe_hashed(observation.owner, observation.sentence_keys)
    missing = {int(ad_id) for ad_id in linked if ad_id not in stored}
    if missing:
        computed, observations = _compute_features(
            session, scope, missing, boilerplate, config, default_region
        )
        stored.update((f.ad_id, (f, o)) for f, o in zip(computed, observations, strict=True))
    engine = MatchingEngine(config)
    engine.load([stored[ad_id][0] for ad_id in sorted(stored, key=int)], linked)
    return LinkingState(engine, boilerplate)


def _compute_features(
    session: Session,
    scope: frozenset[int],
    ad_ids: Collection[int],
    boilerplate: BoilerplateModel,
    config: MatchConfig,
    default_region: str,
    *,
    known_hubs: Collection[str] = frozenset(),
) -> tuple[list[AdFeatures], list[TextObservation]]:
    """Features of these ads of the scope against ``boilerplate`` (which observes them),
    kept in the database over any kept before (an ad taken out of its profile keeps its
    features; a relinking computes them again against the new scope)."""
    observations: list[TextObservation] = []
    features = build_features(
        load_ad_inputs(session, scope, ad_ids=ad_ids),
        default_region=default_region,
        known_phones=stored_phones(session, scope, ad_ids=ad_ids),
        boilerplate=boilerplate,
        hub_degree=config.phone_hub_degree,
        known_hubs=known_hubs,
        observations=observations,
    )
    ids = sorted(ad_ids)
    for start in range(0, len(ids), _CHUNK):
        session.execute(
            delete(AdLinkFeatures).where(AdLinkFeatures.ad_id.in_(ids[start : start + _CHUNK]))
        )
    rows = [feature_row(f, o) for f, o in zip(features, observations, strict=True)]
    for start in range(0, len(rows), 5000):
        session.execute(insert(AdLinkFeatures), rows[start : start + 5000])
    return features, observations


def feature_row(feature: AdFeatures, observation: TextObservation) -> dict[str, Any]:
    """An ``ad_link_features`` row of an ad's features (without its assessment)."""
    return {
        "ad_id": int(feature.ad_id),
        "revision": FEATURES_REVISION,
        "owner_key": f"{observation.owner:016x}",
        "sentence_keys": pack_sentence_keys(observation.sentence_keys),
        "distinctive_text": feature.distinctive_text,
        "distinctive_share": feature.distinctive_share,
        "text_signature": feature.text_signature,
    }


def _stored_features(
    session: Session, scope: frozenset[int], linked: Iterable[str]
) -> dict[str, tuple[AdFeatures, TextObservation]]:
    """Stored features of the scope's linked ads made by this feature revision."""
    wanted = set(linked)
    phones = stored_phones(session, scope)
    images = _images(session, Ad.case_id.in_(scope))
    found: dict[str, tuple[AdFeatures, TextObservation]] = {}
    for row in session.execute(
        select(
            Ad.id,
            Site.key,
            Ad.city,
            Ad.posted_at,
            AdLinkFeatures.owner_key,
            AdLinkFeatures.sentence_keys,
            AdLinkFeatures.distinctive_text,
            AdLinkFeatures.distinctive_share,
            AdLinkFeatures.text_signature,
        )
        .join(Site, Site.id == Ad.site_id)
        .join(AdLinkFeatures, AdLinkFeatures.ad_id == Ad.id)
        .where(Ad.case_id.in_(scope), AdLinkFeatures.revision == FEATURES_REVISION)
    ):
        ad_id = str(row.id)
        if ad_id not in wanted:
            continue
        features = AdFeatures(
            ad_id=ad_id,
            site=row.key,
            city=row.city,
            posted_at=row.posted_at,
            phones=phones.get(ad_id, ()),
            images=tuple(images.get(row.id, ())),
            distinctive_text=row.distinctive_text,
            text_signature=bytes(row.text_signature),
            distinctive_share=row.distinctive_share,
        )
        found[ad_id] = (
            features,
            TextObservation(int(row.owner_key, 16), unpack_sentence_keys(bytes(row.sentence_keys))),
        )
    return found


# The checksum's mixed sum, term by term: plain sums stay equal when two ads swap profiles.
_MIX_AD, _MIX_PROFILE, _MIX_MODULUS = 2654435761, 40503, 1000000007


def _checksum_term(ad_id: int, profile_id: int) -> int:
    """One membership's term of the mixed sum, as ``_scope_state`` computes it in SQL."""
    return (ad_id * _MIX_AD + profile_id * _MIX_PROFILE) % _MIX_MODULUS


def _after(before: ScopeState, change: Checksum) -> ScopeState:
    """The scope's state once a batch's memberships, which changed the checksum by
    ``change``, are written (what summing over the scope again would give)."""
    count, ads, profiles, mixed = (a + b for a, b in zip(before.checksum, change, strict=True))
    return replace(before, checksum=(count, ads, profiles, mixed))


def _scope_state(session: Session, scope: frozenset[int], config: MatchConfig) -> ScopeState:
    """What the scope's snapshot must have been taken at to be current."""
    ad_id = cast(ProfileMembership.ad_id, BigInteger)
    profile_id = cast(ProfileMembership.profile_id, BigInteger)
    mixed_term = (
        ad_id * literal(_MIX_AD, BigInteger) + profile_id * literal(_MIX_PROFILE, BigInteger)
    ) % literal(_MIX_MODULUS, BigInteger)
    count, ad_sum, profile_sum, mixed = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(ad_id), 0),
            func.coalesce(func.sum(profile_id), 0),
            func.coalesce(func.sum(mixed_term), 0),
        )
        .select_from(ProfileMembership)
        .join(Ad, Ad.id == ProfileMembership.ad_id)
        .where(Ad.case_id.in_(scope))
    ).one()
    return ScopeState(
        config.version,
        FEATURES_REVISION,
        tuple(sorted(scope)),
        (int(count), int(ad_sum), int(profile_sum), int(mixed)),
    )


# Any constant works; it only has to be the same for every linking transaction.
_POSTGRES_LINKING_LOCK = 0x6C696E6B


def _serialise_linking(session: Session) -> None:
    """One linking transaction at a time: two crawls ending together would otherwise both
    link the same unlinked ads. (SQLite's writing transactions are serial already.)"""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_LINKING_LOCK})


def _outcome(result: BatchResult, *, ads_linked: int) -> LinkOutcome:
    return LinkOutcome(
        ads_linked=ads_linked,
        profiles_created=result.count("created"),
        profiles_grown=result.count("grown"),
        profiles_merged=result.count("merged"),
        profiles_split=result.count("split"),
    )


def _audit(
    session: Session,
    access: AccessContext,
    action: str,
    scope: frozenset[int],
    outcome: LinkOutcome,
    *,
    reason: str | None = None,
) -> None:
    numbers = session.scalars(select(Case.number).where(Case.id.in_(scope))).all()
    record_event(
        session,
        access.event(
            action,
            "profiles",
            properties={
                "ads_linked": outcome.ads_linked,
                "ads_moved": outcome.ads_moved,
                "profiles_created": outcome.profiles_created,
                "profiles_grown": outcome.profiles_grown,
                "profiles_merged": outcome.profiles_merged,
                "profiles_split": outcome.profiles_split,
                "method": "matching.engine",
            },
            cases=numbers,
            justification=reason,
        ),
    )


def _cases(session: Session, case_ids: Iterable[int]) -> dict[int, Case]:
    wanted = set(case_ids)
    return {case.id: case for case in session.scalars(select(Case).where(Case.id.in_(wanted)))}


def _memberships(session: Session, scope: frozenset[int]) -> dict[str, int]:
    return {
        str(ad_id): profile_id
        for ad_id, profile_id in session.execute(
            select(ProfileMembership.ad_id, ProfileMembership.profile_id)
            .join(Ad, Ad.id == ProfileMembership.ad_id)
            .where(Ad.case_id.in_(scope))
        )
    }


PROFILE_IDS = "candidate_profiles"


def _next_profile_id(session: Session) -> int:
    """The next never-used profile id (ids of purged profiles are not given out again).

    The counter row is locked until the transaction ends, so two linking transactions
    (crawls of two cases at once) cannot hand out the same id.
    """
    counter = session.get(IdCounter, PROFILE_IDS, with_for_update=True)
    highest = session.scalar(select(func.max(CandidateProfile.id))) or 0
    return max(counter.next_value if counter is not None else 1, highest + 1)


def _advance_profile_ids(session: Session, used: set[int]) -> None:
    if not used:
        return
    counter = session.get(IdCounter, PROFILE_IDS, with_for_update=True)
    if counter is None:
        session.add(IdCounter(name=PROFILE_IDS, next_value=max(used) + 1))
    elif counter.next_value <= max(used):
        counter.next_value = max(used) + 1


def _store(session: Session, result: BatchResult, linkage_version: str) -> Checksum:
    """Write a batch's memberships, profiles and events; return how the memberships'
    checksum (``_scope_state``) changed, so that it need not be summed over the scope again."""
    now = utcnow()
    added = added_ad_sum = profile_sum = mixed_sum = 0
    needed = {m.profile_id for m in result.memberships} | {e.profile_id for e in result.events}
    existing = set(
        session.scalars(select(CandidateProfile.id).where(CandidateProfile.id.in_(needed)))
    )
    for profile_id in sorted(needed - existing):
        session.add(CandidateProfile(id=profile_id, created_at=now, updated_at=now))
    _advance_profile_ids(session, needed)
    session.flush()
    stored: dict[int, ProfileMembership] = {}
    ad_ids = [int(m.ad_id) for m in result.memberships]
    for start in range(0, len(ad_ids), 500):
        for row in session.scalars(
            select(ProfileMembership).where(
                ProfileMembership.ad_id.in_(ad_ids[start : start + 500])
            )
        ):
            stored[row.ad_id] = row
    for membership in result.memberships:
        evidence = [item.as_dict() for item in membership.evidence]
        ad_id = int(membership.ad_id)
        profile_sum += membership.profile_id
        mixed_sum += _checksum_term(ad_id, membership.profile_id)
        kept = stored.get(ad_id)
        if kept is None:
            added += 1
            added_ad_sum += ad_id
            session.add(
                ProfileMembership(
                    profile_id=membership.profile_id,
                    ad_id=ad_id,
                    linked_at=now,
                    evidence=evidence,
                    linkage_version=linkage_version,
                )
            )
        else:
            profile_sum -= kept.profile_id
            mixed_sum -= _checksum_term(ad_id, kept.profile_id)
            kept.profile_id = membership.profile_id
            kept.evidence = evidence
            kept.linked_at = now
            kept.linkage_version = linkage_version
    session.add_all(
        ProfileEventRecord(
            profile_id=event.profile_id,
            kind=event.kind,
            other_profile_id=event.other_profile_id,
            reason=event.reason,
            at=now,
        )
        for event in result.events
    )
    merged_into = {
        event.other_profile_id: event.profile_id
        for event in result.events
        if event.kind == "merged" and event.other_profile_id is not None
    }
    # One query for the absorbed profiles: a ``get`` each flushed the session each time.
    absorbed_ids = sorted(merged_into)
    for start in range(0, len(absorbed_ids), _CHUNK):
        for absorbed in session.scalars(
            select(CandidateProfile).where(
                CandidateProfile.id.in_(absorbed_ids[start : start + _CHUNK])
            )
        ):
            absorbed.merged_into_id = merged_into[absorbed.id]
            absorbed.updated_at = now
    holding = {m.profile_id for m in result.memberships}
    ordered = sorted(needed)
    for start in range(0, len(ordered), _CHUNK):
        for profile in session.scalars(
            select(CandidateProfile).where(CandidateProfile.id.in_(ordered[start : start + _CHUNK]))
        ):
            profile.updated_at = now
            if profile.id in holding:  # a profile that holds ads again is nobody's part
                profile.merged_into_id = None
    session.flush()
    return (added, added_ad_sum, profile_sum, mixed_sum)
