"""``adwatch profiles`` and ``adwatch ads``: analysts consult, assess and export candidate
profiles and ads of their own cases (every read is audited with its justification)."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.table import Table

from adwatch.cli.app_context import AppContext
from adwatch.cli.render import print_profile_detail, print_profiles
from adwatch.services.ads import search_ads, show_ad
from adwatch.services.profiles import (
    SUBJECT_CATEGORIES,
    export_profiles,
    list_profiles,
    set_subject_category,
    show_profile,
)
from crawler.indicator_model import load_indicator_model
from legal_policy.errors import InvalidAssessment
from legal_policy.pseudonyms import load_or_create_key

app = typer.Typer(help="Candidate profiles: ads linked by shared evidence.", no_args_is_help=True)
ads_app = typer.Typer(help="Captured ads: show and search.", no_args_is_help=True)

JUSTIFICATION = typer.Option(
    ..., "--justification", "-j", help="Why you consult (written to the audit log)."
)


@app.command("list")
def list_(
    ctx: typer.Context,
    justification: str = JUSTIFICATION,
    case: str | None = typer.Option(None, "--case", help="Only this case (you must be a member)."),
    min_ads: int = typer.Option(1, min=1, help="Only profiles with at least this many ads."),
    limit: int = typer.Option(100, min=1, help="At most this many profiles."),
    rank: str = typer.Option(
        "ads", "--rank", help="Order: 'ads' (largest first) or 'score' (indicator score)."
    ),
) -> None:
    """Candidate profiles of your cases: ads, phones, cities, first and last seen, score."""
    if rank not in ("ads", "score"):
        raise typer.BadParameter("must be 'ads' or 'score'", param_hint="--rank")
    context: AppContext = ctx.obj
    access = context.access(justification)
    with context.session_factory.begin() as session:
        profiles = list_profiles(
            session, access, case_number=case, min_ads=min_ads, limit=limit, rank_by=rank
        )
    print_profiles(context.console, profiles)


@app.command("show")
def show(
    ctx: typer.Context,
    profile_id: int = typer.Argument(..., help="The profile's id (see `adwatch profiles list`)."),
    justification: str = JUSTIFICATION,
    why: bool = typer.Option(False, "--why", help="Explain, per ad, the evidence that links it."),
) -> None:
    """One profile: assessment, category history, movement timeline, history; --why explains."""
    context: AppContext = ctx.obj
    access = context.access(justification)
    with context.session_factory.begin() as session:
        detail = show_profile(session, access, profile_id)
    print_profile_detail(context.console, detail, why=why, zone=context.settings.zone)


@app.command("set-category")
def set_category(
    ctx: typer.Context,
    profile_id: int = typer.Argument(...),
    category: str = typer.Argument(..., help=f"One of: {', '.join(SUBJECT_CATEGORIES)}."),
    reason: str = typer.Option(..., help="Why you assess it so (written to the audit log)."),
) -> None:
    """Assess who a profile is about (its LED art. 6 data-subject category).

    An assessment, not a fact: every change is kept with its reason and audited.
    """
    context: AppContext = ctx.obj
    access = context.access()
    with context.session_factory.begin() as session:
        change = set_subject_category(session, access, profile_id, category, reason)
    context.console.print(
        f"profile {profile_id}: {change.previous.replace('_', ' ')} → "
        f"{change.category.replace('_', ' ')} (assessment by {change.by})"
    )


@app.command("export")
def export(
    ctx: typer.Context,
    output: Path = typer.Option(..., "--output", "-o", help="JSON-lines file to write."),
    justification: str = JUSTIFICATION,
    recipient: str = typer.Option(..., help="Who receives the export (audited)."),
    profile_ids: list[int] = typer.Option([], "--profile", help="A profile id; repeatable."),
    case: str | None = typer.Option(None, "--case", help="Every profile of this case."),
) -> None:
    """Export profiles with their ads (your cases only) as JSON lines.

    Audited as a disclosure with its recipient; the file appears only once the export is
    recorded.
    """
    context: AppContext = ctx.obj
    if not profile_ids and case is None:
        raise InvalidAssessment("name what to export: --profile ID (repeatable) or --case CASE")
    access = context.access(justification)
    partial = output.with_name(output.name + ".partial")
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with partial.open("w", encoding="utf-8") as out:
            with context.session_factory.begin() as session:
                written = export_profiles(
                    session,
                    access,
                    out,
                    profile_ids=profile_ids,
                    case_number=case,
                    recipient=recipient,
                )
            out.flush()
            os.fsync(out.fileno())
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    context.console.print(f"exported {written} profiles to {output} (recorded for {recipient})")


@ads_app.command("show")
def ad_show(
    ctx: typer.Context, ad_id: int = typer.Argument(...), justification: str = JUSTIFICATION
) -> None:
    """One captured ad as stored (after minimisation), with its origin and retention."""
    context: AppContext = ctx.obj
    access = context.access(justification)
    with context.session_factory.begin() as session:
        ad = show_ad(session, access, ad_id)
    table = Table(show_header=False, title=f"ad {ad.ad_id}")
    for label, value in (
        ("case", ad.case),
        ("site", ad.site),
        ("url", ad.url),
        ("captured", ad.captured_at.isoformat()),
        ("posted", ad.posted_at.isoformat() if ad.posted_at else "—"),
        ("city", ad.city or "—"),
        ("title", ad.title if ad.title is not None else "(not kept)"),
        ("text", ad.text if ad.text is not None else "(not kept)"),
        ("phones", "\n".join(f"{e164} (written {raw!r})" for e164, raw in ad.phones) or "—"),
        (
            "images",
            "\n".join(
                f"{i['position']}: {i['width']}x{i['height']} pHash {i['phash']} "
                f"{'blob ' + i['sha256'] if i['sha256'] else '(pixels not kept)'}"
                for i in ad.images
            )
            or "—",
        ),
        ("profile", str(ad.profile_id) if ad.profile_id else "not linked yet"),
        ("legal basis", ad.legal_basis),
        ("kept until", ad.expires_at.isoformat()),
        ("raw page", ad.raw_sha256 or "(not kept)"),
        ("minimisation", _describe_minimisation(ad.minimisation)),
    ):
        table.add_row(label, value)
    context.console.print(table, highlight=False)


@ads_app.command("search")
def ad_search(
    ctx: typer.Context,
    justification: str = JUSTIFICATION,
    phone: str | None = typer.Option(None, help="A phone number in any written form."),
    text: str | None = typer.Option(None, help="Words in the title or text."),
    city: str | None = typer.Option(None, help="A city, exactly."),
    case: str | None = typer.Option(None, "--case", help="Only this case (you must be a member)."),
    limit: int = typer.Option(100, min=1),
) -> None:
    """Search ads of your cases by phone, text or city (a nationality alone is refused)."""
    context: AppContext = ctx.obj
    access = context.access(justification)
    settings = context.settings
    key_file = settings.resolved_secret_key_file
    master_key = load_or_create_key(key_file) if key_file.exists() else None
    with context.session_factory.begin() as session:
        hits = search_ads(
            session,
            access,
            phone=phone,
            text=text,
            city=city,
            case_number=case,
            default_region=settings.default_phone_region,
            master_key=master_key,
            indicator_model=load_indicator_model(),
            limit=limit,
        )
    table = Table("ad", "case", "site", "city", "captured", "profile", "title")
    for hit in hits:
        table.add_row(
            str(hit.ad_id),
            hit.case,
            hit.site,
            hit.city or "—",
            f"{hit.captured_at:%Y-%m-%d %H:%M}",
            str(hit.profile_id or "—"),
            hit.title or "(not kept)",
        )
    context.console.print(table)
    context.console.print(f"{len(hits)} ads")


def _describe_minimisation(record: dict[str, object]) -> str:
    """The legal basis's rules as applied, and what they removed (names and counts)."""
    rules = record.get("rules") or {}
    applied = ", ".join(f"{field} {rule}" for field, rule in dict(rules).items())  # type: ignore[call-overload]
    dropped = ", ".join(record.get("dropped") or []) or "nothing"  # type: ignore[arg-type]
    counts = record.get("counts") or {}
    removed = ", ".join(f"{name}: {count}" for name, count in dict(counts).items() if count)  # type: ignore[call-overload]
    return f"rules: {applied or '—'}\ndropped: {dropped}\nremoved: {removed or 'nothing'}"
