"""``adwatch match`` at the command line: exit codes, the skipped lines, the warnings."""

from __future__ import annotations

import json
from pathlib import Path

from adwatch.settings import Settings
from tests.adwatch.services.test_offline_match import line
from tests.support import Cli, adwatch_process


def _export(folder: Path, rows: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "ads.jsonl"
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return source


def test_an_export_of_which_no_line_can_be_read_exits_2_and_says_why(
    settings: Settings, tmp_path: Path
) -> None:
    source = _export(tmp_path / "export", ["{broken", line("a1", "x", [], posted_at="6-10-2026")])
    code, out, err = Cli(settings)("match", "-i", str(source), "-o", str(tmp_path / "p.jsonl"))
    assert code == 2
    assert "invalid JSON" in out and "not ISO 8601" in out  # the skipped lines, each
    assert "could be read" in err and "was not written" in err
    assert not (tmp_path / "p.jsonl").exists()


def test_a_run_that_skipped_most_lines_warns_on_stderr(settings: Settings, tmp_path: Path) -> None:
    rows = [line("a1", "Bel +44 20 7946 0101.", [])] + ["{broken"] * 3
    source = _export(tmp_path / "export", rows)
    output = tmp_path / "p.jsonl"
    code, _, err = Cli(settings)("match", "-i", str(source), "-o", str(output))
    assert code == 0
    assert "WARNING: 3 of 4 lines (75%) were skipped" in err
    assert [json.loads(x)["ad_id"] for x in output.read_text().splitlines()] == ["a1"]


def test_local_times_are_read_in_adwatch_timezone(settings: Settings, tmp_path: Path) -> None:
    source = _export(tmp_path / "export", [line("a1", "x", [], posted_at="2026-10-06T15:00")])
    code, out, err = Cli(settings.model_copy(update={"timezone": "Europe/Bucharest"}))(
        "match", "-i", str(source), "-o", str(tmp_path / "p.jsonl")
    )
    assert code == 0, err
    assert "1 (read as Europe/Bucharest time)" in out
    assert "WARNING" not in err


def test_the_output_may_not_overwrite_the_input(settings: Settings, tmp_path: Path) -> None:
    source = _export(tmp_path / "export", [line("a1", "x", [])])
    before = source.read_bytes()
    code, _, err = Cli(settings)("match", "-i", str(source), "-o", str(source))
    assert code == 2 and "is the input file" in err
    assert source.read_bytes() == before


def test_an_unknown_time_zone_is_refused(tmp_path: Path) -> None:
    misspelt = {"ADWATCH_TIMEZONE": "Europe/Amsterdm"}
    result = adwatch_process(tmp_path, "match", "-i", "x", "-o", "y", **misspelt)
    assert result.returncode == 2
    said = " ".join(result.stderr.split())
    assert "ADWATCH_TIMEZONE" in said and "not an IANA time zone" in said
    assert "Traceback" not in result.stderr
