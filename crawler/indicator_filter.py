"""The indicator filter: only ads that match trafficking indicators are kept.

An ad scored below the authorisation's threshold by the ad-level indicator model leaves
nothing behind — no row, no blob, no WARC record, no log line, not even its images
fetched — only the run's count of such ads. The score of a kept ad is stored with it as an
assessment of the model (its version is recorded with the run), never as a fact.
"""

from __future__ import annotations

from crawler.context import CrawlContext
from crawler.items import AdCapture
from matching.indicators import score_ad


def keep_ad(context: CrawlContext, capture: AdCapture) -> bool:
    """Score the ad; True when it reaches the threshold (its score is put on the capture)."""
    score = score_ad(context.indicator_model, capture.title, capture.text)
    if score.score < context.indicator_threshold:
        context.report.ads_below_threshold += 1
        return False
    capture.indicator_score = score.score
    return True
