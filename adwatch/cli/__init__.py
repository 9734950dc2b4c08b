"""The ``adwatch`` command line: one Typer sub-app per domain, thin over the services."""

from __future__ import annotations

import sys
import traceback
from datetime import UTC, datetime

import typer
from pydantic import ValidationError
from rich.console import Console

from adwatch.cli import (
    audit,
    authorisation,
    cases,
    crawl,
    db,
    demo,
    match,
    profiles,
    retention,
    runs,
    schedule,
    serve,
    users,
    worker,
)
from adwatch.cli.app_context import AppContext
from adwatch.cli.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    SettingsError,
    describe,
    exit_code_for,
)
from adwatch.settings import Settings, unknown_environment_settings
from legal_policy.errors import PolicyError
from legal_policy.refusals import record_refusal

app = typer.Typer(
    name="adwatch",
    help="Compliance-bounded ad crawler and ad matcher for human-trafficking investigations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    as_user: str | None = typer.Option(
        None,
        "--as",
        metavar="USER",
        help="The registered user to act as (default: ADWATCH_USER). Every action is "
        "checked against this user's role and cases, and audited under their name.",
    ),
) -> None:
    """Settings come from ADWATCH_* environment variables (see README)."""
    if ctx.obj is None:  # called as a library; `main` builds the context itself
        ctx.obj = AppContext(_settings_from_environment())
        ctx.call_on_close(ctx.obj.close)
    if as_user is not None:
        ctx.obj.as_user = as_user


app.add_typer(db.app, name="db")
app.add_typer(users.app, name="user")
app.add_typer(cases.app, name="case")
app.add_typer(authorisation.app, name="authorisation")
app.add_typer(profiles.app, name="profiles")
app.add_typer(profiles.ads_app, name="ads")
app.add_typer(runs.app, name="runs")
app.add_typer(audit.app, name="audit")
app.add_typer(retention.app, name="retention")
app.command("purge")(retention.purge_command)
app.command("crawl")(crawl.crawl_command)
app.command("worker")(worker.worker_command)
app.add_typer(schedule.app, name="schedule")
app.command("serve")(serve.serve_command)
app.command("demo-site")(demo.demo_site_command)
app.command("demo")(demo.demo_command)
app.command("match")(match.match_command)


def run(argv: list[str] | None = None, obj: AppContext | None = None) -> int:
    """Run the CLI and map domain errors to messages and exit codes; returns the exit code.

    A refusal (``PolicyError``) is also written to the audit log, in a transaction of its
    own after the refused change rolled back. Anything unexpected prints one line; its
    traceback (frames only, no values) goes to the internal-error log.
    """
    errors = obj.error_console if obj is not None else Console(stderr=True)
    if obj is not None:
        obj.command = _command_path(sys.argv[1:] if argv is None else argv)
    try:
        return _run(argv, obj, errors)
    finally:
        if obj is not None:
            obj.checkpoint()
            obj.close()


def _run(argv: list[str] | None, obj: AppContext | None, errors: Console) -> int:
    try:
        result = app(args=argv, obj=obj, standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    except (typer.Abort, KeyboardInterrupt):
        errors.print("[red]interrupted[/red]")
        return EXIT_INTERRUPTED
    except Exception as exc:  # mapped below; nothing unknown shows a traceback
        # Typer vendors Click; its usage errors know how to show themselves.
        if isinstance(exc, typer.TyperException) and hasattr(exc, "show"):
            exc.show()
            return int(getattr(exc, "exit_code", 2))
        context = obj
        code = exit_code_for(exc)
        if code is None:
            return _internal_error(errors, context, exc)
        errors.print(f"[bold red]error:[/bold red] {describe(exc)}", highlight=False, markup=True)
        if isinstance(exc, PolicyError) and context is not None:
            _audit_refusal(errors, context, exc)
        return code
    # Without standalone mode Click returns the code of `typer.Exit` instead of exiting.
    return result if isinstance(result, int) else 0


def _command_path(argv: list[str]) -> str:
    """``adwatch profiles show`` for ``--as x profiles show 3 -j …``: what a refusal names."""
    group = typer.main.get_command(app)
    path = ["adwatch"]
    tokens = iter(argv)
    for token in tokens:
        if token == "--as":
            next(tokens, None)
            continue
        if token.startswith("-"):
            continue
        commands = getattr(group, "commands", None)
        if not commands or token not in commands:
            break
        path.append(token)
        group = commands[token]
    return " ".join(path)


def _settings_from_environment() -> Settings:
    problems = unknown_environment_settings()
    if problems:
        raise SettingsError("; ".join(problems))
    try:
        return Settings()
    except ValidationError as exc:
        details = "; ".join(
            f"ADWATCH_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"invalid settings: {details}") from None


def _audit_refusal(errors: Console, context: AppContext, error: PolicyError) -> None:
    try:
        with context.session_factory.begin() as session:
            record_refusal(
                session,
                error,
                actor=context.acting_user,
                attempted=context.command,
                via=context.via,
                role=context.acting_role,
            )
    except Exception as exc:  # the refusal stands; say that it could not be logged
        errors.print(f"[yellow]warning:[/yellow] the refusal could not be audited: {describe(exc)}")


def _internal_error(errors: Console, context: AppContext | None, error: Exception) -> int:
    where = "standard error"
    # Frames and the exception's type only: a message may quote data (no content in logs).
    frames = "".join(traceback.format_list(traceback.extract_tb(error.__traceback__)))
    record = f"{datetime.now(UTC).isoformat()} {type(error).__qualname__}\n{frames}\n"
    if context is not None:
        try:
            log = context.settings.log_dir / "internal-errors.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("a", encoding="utf-8") as out:
                out.write(record)
            where = str(log)
        except OSError:
            pass
    if where == "standard error":
        sys.stderr.write(record)
    errors.print(
        f"[bold red]internal error:[/bold red] {type(error).__name__} (a bug in adwatch; "
        f"where it happened is in {where})",
        highlight=False,
    )
    return EXIT_INTERNAL


def main() -> None:
    """Console-script entry point."""
    try:
        context = AppContext(_settings_from_environment())
    except SettingsError as exc:
        Console(stderr=True).print(f"[bold red]error:[/bold red] {exc}", highlight=False)
        sys.exit(exit_code_for(exc))
    sys.exit(run(obj=context))
