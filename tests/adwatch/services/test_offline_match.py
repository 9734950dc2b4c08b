"""``adwatch match`` over a JSON-lines export: good ads linked, each kind of bad line skipped.

Images are drawn by the test (shapes and gradients); phone numbers come from fiction
ranges (UK drama +44 20 7946 0xxx, Australian ACMA +61 491 570 xxx).
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image, ImageDraw

from adwatch.services import offline_match
from adwatch.services.offline_match import MatchInputError, NothingToLink, match_jsonl

FOOTER = "Vragen over deze site? Helpdesk +44 20 7946 0999."


def picture(seed: int, *, mirrored: bool = False) -> bytes:
    image = Image.new("RGB", (320, 240), (20 * seed % 255, 90, 160))
    draw = ImageDraw.Draw(image)
    for n in range(6):
        x = (seed * 37 + n * 53) % 280
        y = (seed * 17 + n * 29) % 200
        draw.ellipse(
            (x, y, x + 30 + n * 7, y + 25 + seed % 9), fill=(255 - 30 * n, 40 * n % 255, 90)
        )
    draw.rectangle((0, 0, 60 + seed * 11 % 200, 40), fill=(250, 250, 240))
    if mirrored:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def line(ad_id: str, text: str, images: list[str], **overrides: object) -> str:
    record: dict[str, object] = {
        "ad_id": ad_id,
        "site": "demo",
        "url": f"http://127.0.0.1:8765/ad/{ad_id}",
        "city": "Utrecht",
        "posted_at": "2026-11-20T10:00:00+01:00",
        "title": "Nieuw in de stad",
        "text": text,
        "images": images,
    }
    record.update(overrides)
    return json.dumps(record)


@pytest.fixture
def export(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "p1.jpg").write_bytes(picture(1))
    (folder / "images" / "p1-mirror.jpg").write_bytes(picture(1, mirrored=True))
    (folder / "images" / "p2.jpg").write_bytes(picture(2))
    (folder / "images" / "p3.jpg").write_bytes(picture(3))
    (folder / "images" / "notes.jpg").write_bytes(b"this is a text file, not a photo")
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, "PNG")
    (folder / "images" / "bomb.png").write_bytes(bomb.getvalue())
    lines = [
        line("a1", f"Bel +44 20 7946 0101 voor een afspraak. {FOOTER}", ["images/p1.jpg"]),
        line("a2", f"Alleen deze week, +44 20 7946 0101. {FOOTER}", ["images/p2.jpg"]),
        line("a3", "Nieuwe foto's, vraag naar Mila.", ["images/p1-mirror.jpg"]),
        line("b1", f"Bel +61 491 570 110, discreet. {FOOTER}", ["images/p3.jpg"]),
        "{not json",
        line("c1", "geen afbeelding", []).replace('"city": "Utrecht", ', ""),
        line("c2", "tekst", [], posted_at="20-11-2026"),
        line("c3", "tekst", ["images/missing.jpg"]),
        line("c4", "tekst", ["images/notes.jpg"]),
        line("c5", "tekst", ["images/bomb.png"]),
        line("c6", "tekst", ["../outside.jpg"]),
        line("a1", "dubbel", []),
        line("c7", "tekst", [], title=12),
        "",
        line("d1", f"Alleen sms, +61 491 570 111. {FOOTER}", []),
    ]
    for n in range(4):  # more advertisers behind the same help desk make it a hub
        lines.append(line(f"h{n}", f"Bel +61 491 570 12{n}. {FOOTER}", []))
    path = folder / "ads.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_good_ads_are_linked_and_bad_lines_reported_with_their_number(
    export: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out" / "profiles.jsonl"
    outcome = match_jsonl(export, output, workers=1)

    problems = {p.line: p.message for p in outcome.problems}
    assert "invalid JSON" in problems[5]
    assert "missing field 'city'" in problems[6]
    assert "not ISO 8601" in problems[7]
    assert "missing.jpg cannot be read" in problems[8]
    assert "notes.jpg" in problems[9] and "not a recognised image" in problems[9]
    assert "bomb.png" in problems[10]
    assert "not inside the input's folder" in problems[11]
    assert "duplicate ad_id 'a1'" in problems[12]
    assert "field 'title' must be str, not a number" in problems[13]
    assert len(problems) == 9

    rows = [json.loads(x) for x in output.read_text(encoding="utf-8").splitlines()]
    profile = {row["ad_id"]: row["profile_id"] for row in rows}
    assert set(profile) == {"a1", "a2", "a3", "b1", "d1", "h0", "h1", "h2", "h3"}
    assert outcome.ads_linked == 9 and outcome.lines_read == 18
    # Same phone; and a mirrored copy of a1's photo brings in a3 which has no phone.
    assert profile["a1"] == profile["a2"] == profile["a3"]
    # The help desk in every footer links nobody.
    assert len({profile[a] for a in ("b1", "d1", "h0", "h1", "h2", "h3")}) == 6
    assert profile["b1"] != profile["a1"]
    a3 = next(row for row in rows if row["ad_id"] == "a3")
    assert a3["profile_size"] == 3
    assert any(e["kind"] == "image" and "looks like" in e["explanation"] for e in a3["evidence"])
    b1 = next(row for row in rows if row["ad_id"] == "b1")
    assert any(e["kind"] == "hub_phone" for e in b1["evidence"])


def test_a_missing_input_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MatchInputError, match="does not exist"):
        match_jsonl(tmp_path / "nope.jsonl", tmp_path / "out.jsonl")


def test_an_export_without_ads_is_refused_and_the_output_left_alone(tmp_path: Path) -> None:
    source = tmp_path / "ads.jsonl"
    source.write_text("\n\n", encoding="utf-8")
    output = tmp_path / "out.jsonl"
    output.write_text("an earlier run's profiles\n", encoding="utf-8")
    with pytest.raises(NothingToLink, match="holds no ads") as refused:
        match_jsonl(source, output)
    assert refused.value.outcome.lines_read == 0
    assert output.read_text(encoding="utf-8") == "an earlier run's profiles\n"


def test_an_export_of_which_no_line_can_be_read_is_refused_with_every_reason(
    tmp_path: Path,
) -> None:
    source = tmp_path / "ads.jsonl"
    source.write_text(
        "\n".join([line("a1", "x", [], posted_at="6-10-2026 15:00"), "{broken"]) + "\n",
        encoding="utf-8",
    )
    with pytest.raises(NothingToLink, match="2 skipped") as refused:
        match_jsonl(source, tmp_path / "out.jsonl")
    assert [p.line for p in refused.value.outcome.problems] == [1, 2]
    assert not (tmp_path / "out.jsonl").exists()


def test_local_times_without_a_zone_are_read_in_the_configured_zone(tmp_path: Path) -> None:
    # As ad sites show them: no offset. Every line is kept and the count reported once.
    source = tmp_path / "ads.jsonl"
    rows = [
        line("a1", "Bel +44 20 7946 0101.", [], posted_at="2026-10-06T15:00"),
        line("a2", "Bel +44 20 7946 0101.", [], posted_at="2026-10-06 16:30:00"),
        line("a3", "Bel +44 20 7946 0102.", [], posted_at="2026-10-06T15:00:00Z"),
    ]
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    outcome = match_jsonl(source, tmp_path / "out.jsonl")
    assert outcome.ads_linked == 3 and outcome.problems == []
    assert outcome.naive_times == 2 and outcome.timezone == "Europe/Amsterdam"
    assert not outcome.mostly_skipped

    parsed = offline_match._posted_at("2026-10-06T15:00", ZoneInfo("Europe/Amsterdam"))
    assert parsed == (datetime(2026, 10, 6, 13, 0, tzinfo=UTC), True)  # CEST is UTC+2
    winter = offline_match._posted_at("2026-12-06T15:00", ZoneInfo("Europe/Amsterdam"))
    assert winter[0] == datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
    assert offline_match._posted_at("2026-10-06T15:00", ZoneInfo("America/Chicago"))[0] == (
        datetime(2026, 10, 6, 20, 0, tzinfo=UTC)
    )


def test_the_output_may_not_be_the_input(tmp_path: Path) -> None:
    source = tmp_path / "ads.jsonl"
    source.write_text(line("a1", "x", []) + "\n", encoding="utf-8")
    (tmp_path / "alias.jsonl").symlink_to(source)
    for output in (source, tmp_path / "." / "ads.jsonl", tmp_path / "alias.jsonl"):
        with pytest.raises(MatchInputError, match="is the input file"):
            match_jsonl(source, output)
    assert source.read_text(encoding="utf-8") == line("a1", "x", []) + "\n"


def test_mistyped_fields_are_refused_with_what_was_found(tmp_path: Path) -> None:
    source = tmp_path / "ads.jsonl"
    rows = [
        line("a1", "x", []).replace('"ad_id": "a1"', '"ad_id": 13'),
        line("a2", "x", [], city=["Utrecht"]),
        line("a3", "x", [], phones="+44 20 7946 0101"),
        line("a4", "x", [], phones=["not a number"]),
        line("a5", "x", "p.jpg"),  # type: ignore[arg-type]
        line("a6", "x", [], site=True),
        line("ok", "x", []),
    ]
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    outcome = match_jsonl(source, tmp_path / "out.jsonl")
    problems = {p.line: p.message for p in outcome.problems}
    assert problems == {
        1: """field 'ad_id' must be str, not a number (write "13")""",
        2: "field 'city' must be str or null, not a list",
        3: "field 'phones' must be list, not a string",
        4: "phones[1] is not a valid phone number",
        5: "field 'images' must be list, not a string",
        6: "field 'site' must be str, not true or false",
    }
    assert outcome.ads_linked == 1 and outcome.mostly_skipped


def test_listed_phones_come_first_and_link_like_numbers_in_the_text(tmp_path: Path) -> None:
    source = tmp_path / "ads.jsonl"
    rows = [
        # The site's phone field; the text has none (masked, or never written there).
        line("a1", "Nieuw in de stad.", [], phones=["020 7946 0101", "+61 491 570 110"]),
        line("a2", "Bel [phone].", [], phones=["+44 20 7946 0101"]),
        line("a3", "Bel +61 491 570 110.", []),
        line("p1", "Bel [phone].", [], phones=["p:" + "ab" * 9]),
        line("p2", "Bel [phone].", [], phones=["p:" + "ab" * 9]),
    ]
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    outcome = match_jsonl(source, tmp_path / "out.jsonl", default_region="GB")
    assert outcome.problems == []
    profile = {
        row["ad_id"]: row["profile_id"]
        for row in map(json.loads, (tmp_path / "out.jsonl").read_text().splitlines())
    }
    assert profile["a1"] == profile["a2"] == profile["a3"]
    assert profile["p1"] == profile["p2"] != profile["a1"]


def test_an_images_folder_reached_through_a_symlink_is_followed(tmp_path: Path) -> None:
    kept_elsewhere = tmp_path / "storage" / "photos"
    kept_elsewhere.mkdir(parents=True)
    (kept_elsewhere / "p1.jpg").write_bytes(picture(1))
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "images").symlink_to(kept_elsewhere, target_is_directory=True)
    source = folder / "ads.jsonl"
    rows = [
        line("a1", "Geen nummer.", ["images/p1.jpg"]),
        line("a2", "Ook geen nummer.", ["images/../images/p1.jpg"]),
        line("x1", "x", ["images/../../storage/photos/p1.jpg"]),
        line("x2", "x", [str(kept_elsewhere / "p1.jpg")]),
    ]
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    outcome = match_jsonl(source, tmp_path / "out.jsonl", workers=1)
    assert {p.ad_id: "not inside the input's folder" in p.message for p in outcome.problems} == {
        "x1": True,
        "x2": True,
    }
    assert outcome.ads_linked == 2 and outcome.multi_ad_profiles == 1


def test_a_file_shared_by_several_ads_is_hashed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "export"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "p1.jpg").write_bytes(picture(1))
    (folder / "images" / "p2.jpg").write_bytes(picture(2))
    (folder / "images" / "bad.jpg").write_bytes(b"not a photo")
    source = folder / "ads.jsonl"
    rows = [
        line("a1", "Bel +44 20 7946 0101.", ["images/p1.jpg"]),
        line("a2", "Bel +44 20 7946 0102.", ["images/p1.jpg", "images/p2.jpg"]),
        line("a3", "Bel +44 20 7946 0103.", ["images/./p2.jpg"]),
        line("b1", "Bel +44 20 7946 0104.", ["images/p1.jpg", "images/bad.jpg"]),
        line("b2", "Bel +44 20 7946 0105.", ["images/bad.jpg"]),
    ]
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    hashed: list[str] = []
    real = offline_match._fingerprint_file

    def counting(path: Path) -> object:
        hashed.append(path.name)
        return real(path)

    monkeypatch.setattr(offline_match, "_fingerprint_file", counting)
    progress: list[tuple[str, int, int]] = []
    outcome = match_jsonl(
        source, tmp_path / "out.jsonl", workers=1, on_progress=lambda *a: progress.append(a)
    )

    assert sorted(hashed) == ["bad.jpg", "p1.jpg", "p2.jpg"]
    assert ("hashing images", 3, 3) in progress
    # Every ad that shows a refused file is skipped, with the file named.
    assert {p.ad_id for p in outcome.problems} == {"b1", "b2"}
    assert all("bad.jpg" in p.message for p in outcome.problems)
    assert outcome.ads_linked == 3 and outcome.images_hashed == 4
    rows_out = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len({row["profile_id"] for row in rows_out}) == 1  # a1-a2 by p1, a2-a3 by p2


def test_worker_processes_give_the_same_profiles_as_one_process(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    (folder / "images").mkdir(parents=True)
    rows = []
    for n in range(80):
        name = f"images/p{n}.jpg"
        (folder / name).write_bytes(picture(n % 40, mirrored=n >= 40))
        rows.append(line(f"a{n}", f"Advertentie {n}, geen nummer.", [name]))
    source = folder / "ads.jsonl"
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    one = match_jsonl(source, tmp_path / "one.jsonl", workers=1)
    two = match_jsonl(source, tmp_path / "two.jsonl", workers=2)
    assert one.images_hashed == two.images_hashed == 80
    assert (tmp_path / "one.jsonl").read_text() == (tmp_path / "two.jsonl").read_text()


def _partition(output: Path) -> set[frozenset[str]]:
    groups: dict[int, set[str]] = {}
    for record in map(json.loads, output.read_text().splitlines()):
        groups.setdefault(record["profile_id"], set()).add(record["ad_id"])
    return {frozenset(group) for group in groups.values()}


def test_the_export_is_read_twice_in_parts_and_links_as_in_one_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second pass holds one part of the texts at a time; parts of 7 lines give the
    same profiles and evidence as one part of everything (boilerplate counted over the
    whole export either way)."""
    from benchmarks.corpus import CorpusConfig, generate_ads, write_jsonl_corpus

    source = write_jsonl_corpus(generate_ads(CorpusConfig(n_ads=300, seed=5)), tmp_path / "c")
    whole = match_jsonl(source, tmp_path / "whole.jsonl", workers=1)
    monkeypatch.setattr(offline_match, "_PASS_CHUNK", 7)
    parts = match_jsonl(source, tmp_path / "parts.jsonl", workers=1)
    assert whole.ads_linked == parts.ads_linked == 300
    assert _partition(tmp_path / "whole.jsonl") == _partition(tmp_path / "parts.jsonl")
    assert len(_partition(tmp_path / "parts.jsonl")) < 300  # ads did link


def test_an_export_rewritten_between_the_two_passes_is_refused_and_nothing_written(
    export: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out.jsonl"
    output.write_text("an earlier output\n")

    def rewrite_before_linking(stage: str, done: int, total: int) -> None:
        if stage == "linking" and done == 0:
            lines = export.read_text().splitlines()
            export.write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")

    with pytest.raises(MatchInputError, match="changed while it was read"):
        match_jsonl(export, output, workers=1, on_progress=rewrite_before_linking)
    assert output.read_text() == "an earlier output\n"
