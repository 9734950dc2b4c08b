"""``adwatch audit``: legal officers read, export and verify the tamper-evident audit log."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from adwatch.cli.app_context import AppContext
from adwatch.cli.errors import EXIT_AUDIT_FAILED
from legal_policy.audit import ChainAnchor, InvalidAnchor, parse_anchor
from legal_policy.audit_reading import (
    AuditFilter,
    AuditLogVerification,
    audit_head,
    entry_record,
    export_case_log,
    list_entries,
    parse_time_bound,
    verify_audit_log,
    verify_export,
    write_checkpoint,
)
from legal_policy.checkpoints import CheckpointError, read_checkpoints

app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)

HEAD_HELP = (
    "A head written down earlier: SEQ:HASH (the entry at SEQ must still have HASH) or a bare "
    "HASH (it must be somewhere in the chain). Repeatable. Entries added since are fine."
)
TIME_HELP = "ISO 8601 date or time, e.g. 2026-11-30 or 2026-11-30T14:00; without a zone: UTC."


def _anchors(heads: list[str] | None) -> list[ChainAnchor]:
    try:
        return [parse_anchor(head, "--head") for head in heads or []]
    except InvalidAnchor as exc:
        raise typer.BadParameter(str(exc), param_hint="--head") from None


def _time(value: str | None, option: str, *, end: bool) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time_bound(value, end=end)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def _fail(context: AppContext, problems: tuple[str, ...], what: str) -> None:
    for problem in problems:
        context.error_console.print(Text(problem, style="red"))
    context.error_console.print(
        f"[bold red]{what} FAILED[/bold red] ({len(problems)} problems)", highlight=False
    )
    raise typer.Exit(EXIT_AUDIT_FAILED)


@app.command("verify")
def verify(
    ctx: typer.Context,
    head: list[str] | None = typer.Option(None, "--head", metavar="SEQ:HASH", help=HEAD_HELP),
    checkpoints: Path | None = typer.Option(
        None,
        "--checkpoints",
        metavar="FILE",
        help="The checkpoint file (default: ADWATCH_AUDIT_CHECKPOINT_FILE, else "
        "<data dir>/audit-checkpoints.jsonl).",
    ),
) -> None:
    """Check every link of the chain, every checkpoint and every --head given.

    Detects edited, deleted and reordered entries; deleted newest entries, an emptied log
    and a rewritten chain are detected below the newest checkpoint or head. Exit 1 when
    anything is wrong. Administrators and legal officers.
    """
    context: AppContext = ctx.obj
    anchors = _anchors(head)
    if checkpoints is not None and not checkpoints.exists():
        raise typer.BadParameter(f"{checkpoints} does not exist", param_hint="--checkpoints")
    access = context.access()
    path = checkpoints or context.settings.resolved_audit_checkpoint_file
    result = verify_audit_log(context.session_factory, access, checkpoint_file=path, heads=anchors)
    if not result.ok:
        _fail(context, result.problems, "audit log verification")
    _print_verified(context, result)


def _print_verified(context: AppContext, result: AuditLogVerification) -> None:
    chain, reading = result.chain, result.checkpoints
    context.console.print(
        f"[green]audit log intact[/green]: {chain.entries_checked} entries, head "
        f"{chain.head_seq}:{chain.head_hash}",
        highlight=False,
    )
    if reading.checkpoints:
        context.console.print(
            Text(
                f"checked against {len(reading.checkpoints)} checkpoints in {reading.path} "
                f"(newest at entry {reading.newest_seq})"
            )
        )
    if result.heads_given:
        context.console.print(f"the {result.heads_given} --head given are in the chain")
    if not result.can_detect_truncation:
        where = "no checkpoints in" if reading.found else "no checkpoint file at"
        context.error_console.print(
            Text(
                f"warning: {where} {reading.path}: deleting the newest entries, or emptying "
                "the log, cannot be detected; keep `adwatch audit checkpoint` lines or "
                "`adwatch audit head` outside the database and give them here",
                style="yellow",
            )
        )
    elif result.uncovered_entries and reading.checkpoints:
        context.console.print(
            f"the newest {result.uncovered_entries} entries are not yet covered by a "
            "checkpoint: their deletion could not be detected"
        )


@app.command("head")
def head(ctx: typer.Context) -> None:
    """Print the chain's head as SEQ:HASH, to keep outside the system (e.g. the case file)."""
    context: AppContext = ctx.obj
    access = context.access()
    context.console.out(str(audit_head(context.session_factory, access)), highlight=False)


@app.command("checkpoint")
def checkpoint(
    ctx: typer.Context,
    file: Path | None = typer.Option(
        None, "--file", metavar="FILE", help="The checkpoint file (default as for verify)."
    ),
    reason: str = typer.Option("manual checkpoint", help="Why, recorded with it."),
) -> None:
    """Append the chain's current head to the checkpoint file kept outside the database."""
    context: AppContext = ctx.obj
    access = context.access()
    path = file or context.settings.resolved_audit_checkpoint_file
    try:
        written = write_checkpoint(
            context.session_factory, access, path, f"{reason} ({access.user})"
        )
    except CheckpointError as exc:
        raise typer.BadParameter(str(exc), param_hint="--file") from None
    context.console.print(Text(f"checkpoint {written.seq}:{written.head_hash} appended to {path}"))


@app.command("list")
def list_(
    ctx: typer.Context,
    actor: str | None = typer.Option(None, help="Only entries by this user."),
    case: str | None = typer.Option(None, help="Only entries concerning this case."),
    action: str | None = typer.Option(None, help="Only this action, e.g. profiles.consulted."),
    since: str | None = typer.Option(None, "--from", help=f"From this moment on. {TIME_HELP}"),
    until: str | None = typer.Option(
        None, "--to", help=f"Up to this moment; a bare date includes that day. {TIME_HELP}"
    ),
    limit: int = typer.Option(
        100, min=0, help="Show the newest this many matches (in chain order); 0 for all."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="JSON lines with every field, properties and hashes included."
    ),
    justification: str | None = typer.Option(
        None, "--justification", "-j", help="Why you consult the log (recorded)."
    ),
) -> None:
    """List audit entries (legal officers); the listing itself is audited."""
    context: AppContext = ctx.obj
    criteria = AuditFilter(
        actor=actor,
        case=case,
        action=action,
        since=_time(since, "--from", end=False),
        until=_time(until, "--to", end=True),
        limit=limit or None,
    )
    access = context.access(justification)
    entries = list_entries(context.session_factory, access, criteria)
    if as_json:
        for entry in entries:
            context.console.out(
                json.dumps(entry_record(entry), ensure_ascii=False), highlight=False
            )
        return
    table = Table("seq", "at (UTC)", "actor", "action", "subject", "cases", "justification")
    for entry in entries:
        table.add_row(
            str(entry.seq),
            f"{entry.at:%Y-%m-%d %H:%M:%S}",
            entry.actor,
            entry.action,
            entry.subject,
            ", ".join(entry.cases),
            entry.justification or "",
        )
    if table.row_count:
        context.console.print(table, markup=False)
        context.console.print("properties and hashes: --json")
    else:
        context.console.print("no audit entries match")


@app.command("export")
def export(
    ctx: typer.Context,
    case: str = typer.Option(..., help="The case whose entries are given in full."),
    output: Path = typer.Option(
        ..., "--output", "-o", metavar="FILE", help="The file to write (must not exist)."
    ),
    justification: str = typer.Option(
        ..., "--justification", "-j", help="Why the log is disclosed (recorded)."
    ),
    recipient: str | None = typer.Option(None, help="Who receives the export (recorded)."),
) -> None:
    """Export the chain for one case as JSON lines that verify on their own.

    Every entry appears in order: in full when it concerns the case, otherwise as a stub
    with only its place and hash. Legal officers; the export is audited with the file's
    SHA-256.
    """
    context: AppContext = ctx.obj
    access = context.access(justification)
    try:
        summary = export_case_log(
            context.session_factory, access, case, output, recipient=recipient
        )
    except FileExistsError:
        raise typer.BadParameter(
            f"{output} exists; an export never overwrites a file", param_hint="--output"
        ) from None
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot write {output}: {exc.strerror or exc}", param_hint="--output"
        ) from None
    context.console.print(
        Text(
            f"exported {summary.entries} entries ({summary.full_entries} of case "
            f"{summary.case} in full) through {summary.head} to {output}\n"
            f"sha256 {summary.sha256}"
        )
    )


@app.command("verify-export")
def verify_export_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., metavar="FILE", help="A file written by audit export."),
    head: list[str] | None = typer.Option(None, "--head", metavar="SEQ:HASH", help=HEAD_HELP),
    checkpoints: Path | None = typer.Option(
        None,
        "--checkpoints",
        metavar="FILE",
        help="A checkpoint file whose checkpoints within the export must match it.",
    ),
) -> None:
    """Check an export on its own: recomputed hashes, continuity, trailer. No database.

    With --checkpoints, every checkpoint written before the export must be in it (newer
    ones are skipped). Exit 1 when anything is wrong.
    """
    context: AppContext = ctx.obj
    anchors = _anchors(head)
    reading = None
    if checkpoints is not None:
        reading = read_checkpoints(checkpoints)
        if not reading.found:
            raise typer.BadParameter(f"{checkpoints} does not exist", param_hint="--checkpoints")
    result = verify_export(file, anchors, reading)
    problems = (reading.problems if reading else ()) + result.problems
    if problems:
        _fail(context, problems, "export verification")
    context.console.print(
        Text(
            f"export intact: case {result.case}, {result.entries} entries "
            f"({result.full_entries} in full), head {result.head}"
        )
    )
    if reading is not None:
        context.console.print(
            f"{result.checkpoints_checked} checkpoints written before the export are in it; "
            f"{result.checkpoints_newer} newer ones were not checked"
        )
