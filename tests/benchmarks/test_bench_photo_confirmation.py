"""The photo-confirmation benchmark: pairs are found and labelled, and the rule it chose
removes more false links than true ones on both collections (no timing asserted)."""

from __future__ import annotations

from collections import Counter

import pytest

from benchmarks import bench_photo_confirmation as bench
from matching.images import DEFAULT_RADIUS
from matching.photos import CONFIRM_DHASH, CONFIRM_FROM


def _with_rule(table: dict[tuple[str, int], Counter[str]], kind: str) -> tuple[int, int]:
    """(pairs within the radius, pairs the rule links) of one kind."""
    within = linked = 0
    for (label, distance), counts in table.items():
        if label != kind or distance > DEFAULT_RADIUS:
            continue
        within += counts["pairs"]
        linked += counts[f"d{CONFIRM_DHASH}"] if distance >= CONFIRM_FROM else counts["pairs"]
    return within, linked


def test_synthetic_reposts_are_found_and_labelled() -> None:
    copies = bench.synthetic_copies(40)
    assert len(copies) == 40 * 7 and len({c.photo for c in copies}) == 40
    table = bench.tally(copies, 12)
    same, same_linked = _with_rule(table, "same")
    # Every photo's seven copies: most of the 21 pairs each are within the radius.
    assert same > 40 * 15 and same_linked >= same * 0.99
    assert all(counts["pairs"] >= counts["d20"] >= counts["d6"] for counts in table.values())


def test_on_the_hard_photos_the_rule_removes_false_links_and_keeps_most_true_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("skimage")
    assert not {"astronaut.png", "camera.png"} & set(bench.SKIMAGE_PHOTOS)  # no people
    copies = bench.skimage_copies()
    table = bench.tally(copies, 12)
    different, false_links = _with_rule(table, "different")
    same, kept = _with_rule(table, "same")
    assert different > 0 and false_links < different / 2
    assert kept > same * 0.9
    bench.report("skimage", copies, table)
    printed = capsys.readouterr().out
    assert f"| all | {same} | {kept} | {different} | {false_links} |" in printed
