"""Domain errors → exit codes, in one place.

0 success · 1 audit verification failed (only that) · 2 refused or invalid input ·
3 database schema behind or ahead of this adwatch · 4 the crawl worker broke down ·
5 database unavailable or unreadable · 6 internal error (a bug; details in the internal log)
· 130 interrupted.
"""

from __future__ import annotations

from sqlalchemy.exc import DatabaseError, DBAPIError, InterfaceError, OperationalError

from adwatch.services.ads import AdNotFound
from adwatch.services.offline_match import MatchInputError
from adwatch.services.profiles import ProfileNotFound
from adwatch.services.runs import RunNotFound
from crawler.errors import CrawlFailed, SiteProfileError
from legal_policy.checkpoints import CheckpointError
from legal_policy.errors import CatalogueError, PolicyError
from storage.db import DatabaseUnavailable, SchemaNotReady, describe_dbapi_error

EXIT_OK = 0
EXIT_AUDIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_SCHEMA = 3
EXIT_CRAWL_FAILED = 4
EXIT_DATABASE = 5
EXIT_INTERNAL = 6
EXIT_INTERRUPTED = 130


class SettingsError(ValueError):
    """The environment holds an ``ADWATCH_`` variable that is not a setting."""


EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (PolicyError, EXIT_REFUSED),
    (SiteProfileError, EXIT_REFUSED),
    (CatalogueError, EXIT_REFUSED),
    (ProfileNotFound, EXIT_REFUSED),
    (AdNotFound, EXIT_REFUSED),
    (RunNotFound, EXIT_REFUSED),
    (MatchInputError, EXIT_REFUSED),
    (SettingsError, EXIT_REFUSED),
    (CheckpointError, EXIT_REFUSED),
    (SchemaNotReady, EXIT_SCHEMA),
    (CrawlFailed, EXIT_CRAWL_FAILED),
    (DatabaseUnavailable, EXIT_DATABASE),
)


def exit_code_for(error: BaseException) -> int | None:
    """The exit code of a known domain error, or None for an unexpected one."""
    for error_type, code in EXIT_CODES:
        if isinstance(error, error_type):
            return code
    if isinstance(error, OperationalError | InterfaceError):
        return EXIT_DATABASE  # the server went away, the file is locked or unreadable
    if isinstance(error, DatabaseError) and "not a database" in str(error.orig or ""):
        return EXIT_DATABASE
    return None


def describe(error: BaseException) -> str:
    """The one line printed for a known error (no SQL, no parameters)."""
    if isinstance(error, DBAPIError):
        return describe_dbapi_error(error)
    return str(error)
