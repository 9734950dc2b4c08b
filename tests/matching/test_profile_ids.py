"""Stable profile ids across re-clustering (``matching.profile_ids``)."""

from __future__ import annotations

from matching.profile_ids import NO_PROFILE, Inheritance, inherit_ids


def test_a_grown_profile_keeps_its_id_and_new_ads_alone_get_none() -> None:
    assert inherit_ids([[7, 7, NO_PROFILE], [NO_PROFILE]]) == [
        Inheritance(7, (), (7,)),
        Inheritance(None, (), ()),
    ]


def test_a_merge_keeps_the_id_of_the_profile_it_holds_most_of() -> None:
    (merged,) = inherit_ids([[4, 9, 9, NO_PROFILE]])
    assert merged == Inheritance(9, (4,), (4, 9))


def test_equal_shares_go_to_the_lower_id() -> None:
    assert inherit_ids([[9, 4]])[0].keep == 4


def test_a_split_leaves_the_id_with_the_larger_part_and_names_its_origin() -> None:
    larger, smaller = inherit_ids([[5, 5, 5], [5]])
    assert larger.keep == 5
    assert smaller == Inheritance(None, (), (5,))


def test_a_split_into_equal_parts_leaves_the_id_with_the_first_cluster() -> None:
    first, second = inherit_ids([[5, 5], [5, 5]])
    assert (first.keep, second.keep) == (5, None)


def test_an_id_held_by_another_scope_is_never_inherited() -> None:
    (cluster,) = inherit_ids([[3, 3]], taken={3})
    assert cluster == Inheritance(None, (), (3,))
