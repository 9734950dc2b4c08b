"""Linking by shared phone: incremental, id-stable, with evidence and recorded merges."""

from __future__ import annotations

from matching.linking import AdPhones, PhoneOwner, link_by_shared_phone

A = "+447700900101"
B = "+447700900102"
C = "+447700900103"


def test_new_ads_sharing_a_phone_form_one_new_profile() -> None:
    result = link_by_shared_phone(
        [AdPhones(1, (A,)), AdPhones(2, (A,)), AdPhones(3, (B,)), AdPhones(4, ())], {}
    )
    by_ad = {a.ad_id: a for a in result.assignments}
    assert by_ad[1].new_profile == by_ad[2].new_profile
    assert len({by_ad[1].new_profile, by_ad[3].new_profile, by_ad[4].new_profile}) == 3
    assert by_ad[2].evidence[0].describe() == f"shares phone {A} with ad 1"
    assert by_ad[4].evidence == ()
    assert [a.ad_id for a in result.assignments] == [1, 2, 3, 4]


def test_new_ad_joins_existing_profile_which_keeps_its_id() -> None:
    result = link_by_shared_phone([AdPhones(10, (A,))], {A: PhoneOwner(profile_id=7, ad_id=1)})
    (assignment,) = result.assignments
    assert assignment.profile_id == 7 and assignment.new_profile is None
    assert assignment.evidence[0].other_ad_id == 1
    assert result.merges == ()


def test_bridging_ad_merges_into_the_oldest_profile_and_says_why() -> None:
    result = link_by_shared_phone(
        [AdPhones(10, (A, B))],
        {A: PhoneOwner(profile_id=9, ad_id=1), B: PhoneOwner(profile_id=3, ad_id=2)},
        profile_order=[3, 9],
    )
    (assignment,) = result.assignments
    assert assignment.profile_id == 3
    (merge,) = result.merges
    assert (merge.survivor, merge.absorbed) == (3, 9)
    assert A in merge.reason and B in merge.reason


def test_unrelated_phones_do_not_link() -> None:
    result = link_by_shared_phone([AdPhones(1, (A,)), AdPhones(2, (C,))], {})
    assert result.assignments[0].new_profile != result.assignments[1].new_profile
