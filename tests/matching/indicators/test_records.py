"""Records: plain facts checked on construction, categories fixed in code."""

from __future__ import annotations

import pytest

from matching.indicators import PROTECTED_CATEGORIES, ProfileFacts
from tests.matching.indicators.examples import PHONE


def test_profile_facts_validate() -> None:
    with pytest.raises(ValueError, match="one entry per phone"):
        ProfileFacts(ad_count=1, phones=(PHONE,), phone_regions=())
    with pytest.raises(ValueError, match="negative"):
        ProfileFacts(ad_count=-1)


def test_protected_categories_are_fixed_in_code() -> None:
    assert {"nationality", "ethnic_origin", "origin"} == PROTECTED_CATEGORIES
