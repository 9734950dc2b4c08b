"""Per-case phone pseudonyms: a safe key file, linkable inside a case, unlinkable across cases."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from legal_policy.pseudonyms import (
    KEY_BYTES,
    PSEUDONYM_LENGTH,
    PseudonymKeyError,
    case_key,
    load_or_create_key,
    pseudonymise_phone,
)

# Ofcom drama numbers (London 020 7946 0xxx) and ACMA fiction mobiles only.
FICTION_NUMBERS = (
    "+442079460000",
    "+442079460123",
    "+442079460998",
    "+61491570156",
    "+61491570157",
    "+61491570158",
    "+61491570159",
)
MASTER = bytes(range(KEY_BYTES))
# The registry's case-number syntax.
CASE_NUMBERS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,20}", fullmatch=True)


# --- the key file -------------------------------------------------------------------------


def test_key_file_is_created_owner_only_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret.key"
    key = load_or_create_key(path)
    assert len(key) == KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == key.hex() + "\n"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_key(path) == key
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret.key"]


def test_new_keys_are_random(tmp_path: Path) -> None:
    assert load_or_create_key(tmp_path / "a.key") != load_or_create_key(tmp_path / "b.key")


def test_file_is_owner_only_even_under_a_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        load_or_create_key(tmp_path / "secret.key")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o666])
def test_key_that_group_or_others_may_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "secret.key"
    load_or_create_key(path)
    path.chmod(mode)
    with pytest.raises(PseudonymKeyError, match=rf"mode {mode:04o}.*chmod 600"):
        load_or_create_key(path)
    # Refused, not repaired or replaced: the file is as it was.
    assert stat.S_IMODE(path.stat().st_mode) == mode


@pytest.mark.parametrize(
    "content",
    [b"", b"\n", b"ab" * (KEY_BYTES - 1), b"ab" * (KEY_BYTES + 1), b"zz" * KEY_BYTES, b"\xff" * 64],
    ids=["empty", "newline", "short", "long", "not-hex", "binary"],
)
def test_malformed_key_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "secret.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(PseudonymKeyError, match="not a pseudonym key"):
        load_or_create_key(path)
    assert path.read_bytes() == content


def test_existing_key_file_is_read_as_written(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text(MASTER.hex().upper() + "\n")
    path.chmod(0o400)
    assert load_or_create_key(path) == MASTER


def test_a_directory_is_no_key_file(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        load_or_create_key(tmp_path)


def test_concurrent_creators_all_get_the_one_key_that_won(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    start = threading.Barrier(8)
    keys: list[bytes] = []

    def create() -> None:
        start.wait()
        keys.append(load_or_create_key(path))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert path.read_text() == keys[0].hex() + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.key"]


# --- case keys and pseudonyms -------------------------------------------------------------


def test_case_keys_are_derived_per_case_and_per_master_key() -> None:
    first = case_key(MASTER, "2026-TEST-001")
    assert len(first) == KEY_BYTES
    assert case_key(MASTER, "2026-TEST-001") == first
    assert case_key(MASTER, "2026-TEST-002") != first
    assert case_key(bytes(reversed(MASTER)), "2026-TEST-001") != first


def test_case_key_refuses_a_short_master_key_or_no_case() -> None:
    with pytest.raises(PseudonymKeyError, match="master key has 16 bytes"):
        case_key(MASTER[:16], "2026-TEST-001")
    with pytest.raises(ValueError, match="case number"):
        case_key(MASTER, "")


def test_pseudonym_fits_the_phone_column_and_hides_the_number() -> None:
    pseudonym = pseudonymise_phone(case_key(MASTER, "2026-TEST-001"), "+442079460123")
    assert len(pseudonym) == PSEUDONYM_LENGTH == 20
    assert pseudonym.startswith("p:")
    int(pseudonym[2:], 16)  # hex
    assert "79460123" not in pseudonym


def test_pseudonyms_are_equal_inside_a_case_and_differ_across_cases() -> None:
    one, two = case_key(MASTER, "2026-TEST-001"), case_key(MASTER, "2026-TEST-002")
    first = {n: pseudonymise_phone(one, n) for n in FICTION_NUMBERS}
    again = {n: pseudonymise_phone(one, n) for n in FICTION_NUMBERS}
    other = {n: pseudonymise_phone(two, n) for n in FICTION_NUMBERS}
    assert first == again
    assert len(set(first.values())) == len(FICTION_NUMBERS)  # distinct numbers stay distinct
    assert not set(first.values()) & set(other.values())


def test_the_master_key_itself_gives_other_pseudonyms_than_a_case_key() -> None:
    # Domain separation: a pseudonym made with the wrong key never matches a case's.
    number = FICTION_NUMBERS[0]
    assert pseudonymise_phone(MASTER, number) != pseudonymise_phone(
        case_key(MASTER, "2026-TEST-001"), number
    )


@pytest.mark.parametrize("written", ["+44 20 7946 0123", "02079460123", "442079460123", "p:00"])
def test_only_e164_is_pseudonymised(written: str) -> None:
    # Each written form would otherwise get a pseudonym of its own.
    with pytest.raises(ValueError, match=r"E\.164") as raised:
        pseudonymise_phone(case_key(MASTER, "2026-TEST-001"), written)
    assert written not in str(raised.value)


def test_pseudonymise_refuses_a_short_key() -> None:
    with pytest.raises(PseudonymKeyError):
        pseudonymise_phone(b"short", FICTION_NUMBERS[0])


@given(
    number=st.sampled_from(FICTION_NUMBERS),
    cases=st.tuples(CASE_NUMBERS, CASE_NUMBERS),
)
def test_any_two_cases_give_unrelated_pseudonyms(number: str, cases: tuple[str, str]) -> None:
    first, second = (pseudonymise_phone(case_key(MASTER, c), number) for c in cases)
    assert (first == second) == (cases[0] == cases[1])
