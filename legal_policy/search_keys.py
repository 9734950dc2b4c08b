"""Search keys the law allows: nationality or origin is never a search key on its own
(LED art. 10, 11(3): no profiling on special categories).

The protected vocabulary is the indicator model's own (its nationality, ethnic-origin and
origin phrase rules), so the rule and the indicators cannot drift apart.
"""

from __future__ import annotations

import re

from legal_policy.errors import SearchNotAllowed
from matching.indicators import IndicatorModel, PhrasesParams, fold_for_phrases

# Words that carry no search meaning of their own once a nationality is taken out.
_FILLER = frozenset(
    (
        *("a", "an", "and", "de", "een", "en", "from", "het", "in", "of", "or", "the"),
        *("uit", "van", "new", "nieuw", "nieuwe"),
        *("girl", "girls", "meisje", "meisjes", "vrouw", "vrouwen"),
        *("woman", "women", "lady", "ladies"),
    )
)


def check_text_search(query: str, model: IndicatorModel) -> None:
    """Refuse a text search whose only key is a nationality or an origin."""
    text = fold_for_phrases(query)
    remainder = text
    for rule in model.rules:
        if rule.protected and isinstance(rule.params, PhrasesParams):
            for pattern in rule.params.patterns:
                remainder = pattern.sub(" ", remainder)
    if remainder == text:
        return
    words = [w for w in re.findall(r"\w+", remainder) if w not in _FILLER]
    if not words:
        raise SearchNotAllowed(
            "a nationality or origin is never a search key on its own (LED art. 10 and 11): "
            "search by phone, text of the ad, city or site, and add it only as a refinement"
        )
