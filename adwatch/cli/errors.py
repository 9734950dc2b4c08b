"""Domain errors → exit codes, in one place."""

from __future__ import annotations

from adwatch.services.offline_match import MatchInputError
from adwatch.services.profiles import ProfileNotFound
from crawler.errors import CrawlFailed, SiteProfileError
from legal_policy.errors import CatalogueError, PolicyError
from storage.db import SchemaNotReady

# Exit 2: refused or invalid input (the user can fix the command or the configuration).
# Exit 3: the database needs `adwatch db upgrade`. Exit 4: the crawl itself broke down.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (PolicyError, 2),
    (SiteProfileError, 2),
    (CatalogueError, 2),
    (ProfileNotFound, 2),
    (MatchInputError, 2),
    (SchemaNotReady, 3),
    (CrawlFailed, 4),
)


def exit_code_for(error: BaseException) -> int | None:
    """The exit code of a known domain error, or None for an unexpected one."""
    for error_type, code in EXIT_CODES:
        if isinstance(error, error_type):
            return code
    return None
