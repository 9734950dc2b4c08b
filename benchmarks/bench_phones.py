"""Throughput of phone extraction over synthetic ad texts.

Run: ``.venv/bin/python benchmarks/bench_phones.py [--ads N]``. Texts are built from
``phonenumbers``' example numbers and fiction ranges, written in the obfuscated forms
that ``matching.phones`` undoes, with prices, dates and ages around them.
"""

from __future__ import annotations

import argparse
import platform
import random
import time

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from adwatch.synthetic.phones import DIGIT_WORDS
from matching.phones import extract_phones

FILLER = [
    "Nieuw in de stad, alleen deze week.",
    "Prijs 150 euro per uur, 250 euro voor twee uur.",
    "Beschikbaar van 12-05-2026 tot 19-05-2026.",
    "Ik ben 24 jaar, discreet en vriendelijk.",
    "Geen sms, alleen bellen of WhatsApp.",
]


def synthetic_texts(n: int, seed: int = 7) -> list[str]:
    """``n`` ad texts with one or two numbers each, a third of them obfuscated."""
    rng = random.Random(seed)
    regions = ["NL", "RO", "MD", "BG", "PL", "GB", "AU"]
    texts = []
    for _ in range(n):
        number = phonenumbers.example_number_for_type(rng.choice(regions), PhoneNumberType.MOBILE)
        assert number is not None
        written = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
        style = rng.randrange(3)
        if style == 1:
            written = " ".join(written.replace(" ", ""))
        elif style == 2:
            digits = phonenumbers.format_number(number, PhoneNumberFormat.E164)[1:]
            written = "+" + " ".join(DIGIT_WORDS["nl"][int(d)] for d in digits)
        texts.append(" ".join([*rng.sample(FILLER, 3), f"Bel {written}."]))
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ads", type=int, default=20_000)
    args = parser.parse_args()
    texts = synthetic_texts(args.ads)
    started = time.perf_counter()
    found = sum(len(extract_phones(t)) for t in texts)
    elapsed = time.perf_counter() - started
    print(
        f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    print(
        f"{args.ads} ads, {found} numbers found in {elapsed:.2f} s: {args.ads / elapsed:,.0f} ads/s"
    )


if __name__ == "__main__":
    main()
