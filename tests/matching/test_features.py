"""Features: phone order, hub numbers and who counts as an ad's author for boilerplate."""

from __future__ import annotations

from matching.features import build_features, owner_of
from matching.phones import hub_phones
from matching.records import AdInput

# Synthetic numbers: +31 85 is a Dutch business range, +31 6 12 34 5x x mobiles of nobody.
HELP_DESK = "+31851234567"
FOOTER = "Vragen over deze advertentie? Bel de helpdesk van de site, elke dag bereikbaar."


def _ad(ad_id: str, text: str) -> AdInput:
    return AdInput(ad_id, "demo", f"http://127.0.0.1/ad/{ad_id}", "Utrecht", None, "", text)


def test_a_number_beside_many_others_is_a_hub_and_a_pair_is_not() -> None:
    lists = [(f"+3161234560{i}", HELP_DESK) for i in range(5)] + [("+31612345670", "+31612345671")]
    assert hub_phones(lists) == {HELP_DESK}
    assert hub_phones(lists, degree=6) == set()
    assert hub_phones([(HELP_DESK,)] * 10) == set()  # printed alone, it is nobody's hub


def test_the_author_is_the_first_number_written_that_is_not_a_hub() -> None:
    ad = _ad("1", "")
    assert owner_of(ad, (HELP_DESK, "+31612345600"), {HELP_DESK}) == "phone:+31612345600"
    assert owner_of(ad, ("+31612345601", "+31612345600")) == "phone:+31612345601"
    assert owner_of(ad, (HELP_DESK,), {HELP_DESK}) == "ad:1"


def test_a_help_desk_written_first_in_every_ad_leaves_its_footer_boilerplate() -> None:
    # Six advertisers; the site prints its help desk before each one's own number.
    ads = [
        _ad(str(i), f"Nieuw in de stad, advertentie nummer {i} met eigen woorden. {FOOTER}")
        for i in range(6)
    ]
    known = {str(i): (HELP_DESK, f"+3161234560{i}") for i in range(6)}
    features = build_features(ads, known_phones=known)
    assert all("helpdesk" not in f.distinctive_text for f in features)
    # The footer is most of each ad: what is left is under half of its text.
    assert all(0.3 < f.distinctive_share < 0.5 for f in features)
    assert [f.phones for f in features] == [known[str(i)] for i in range(6)]  # order kept
    # Were the hub everyone's author, the footer would be one author's own words.
    as_one = build_features(ads, known_phones=known, hub_degree=100)
    assert all("helpdesk" in f.distinctive_text for f in as_one)
    assert all(f.distinctive_share == 1.0 for f in as_one)
