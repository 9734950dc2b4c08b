"""A log formatter that never writes what the crawler collects.

Scrapy's own logs a scraped or dropped item whole (its ``repr``, page bodies and image bytes
included) and at WARNING for drops: a recrawl would copy every unchanged ad into the run's
log. Here items are named by URL only, and drops by their reason.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import Spider
from scrapy.http import Response
from scrapy.logformatter import LogFormatter, LogFormatterResult
from twisted.python.failure import Failure


def _url_of(item: Any) -> str:
    return str(getattr(item, "url", "") or "(no URL)")


class ContentFreeLogFormatter(LogFormatter):
    """Scrapy's log formatter without item contents (URLs and reasons only)."""

    def scraped(
        self, item: Any, response: Response | Failure | None, spider: Spider
    ) -> LogFormatterResult:
        return {
            "level": logging.DEBUG,
            "msg": "Stored ad %(url)s",
            "args": {"url": _url_of(item)},
        }

    def dropped(
        self,
        item: Any,
        exception: BaseException,
        response: Response | Failure | None,
        spider: Spider,
    ) -> LogFormatterResult:
        # The reasons are adwatch's own sentences ("unchanged since ad 12"), never content.
        return {
            "level": logging.INFO,
            "msg": "Not stored: %(url)s (%(reason)s)",
            "args": {"url": _url_of(item), "reason": exception},
        }

    def item_error(
        self,
        item: Any,
        exception: BaseException,
        response: Response | Failure | None,
        spider: Spider,
    ) -> LogFormatterResult:
        return {
            "level": logging.ERROR,
            "msg": "Error processing the ad of %(url)s: %(type)s",
            "args": {"url": _url_of(item), "type": type(exception).__name__},
        }
