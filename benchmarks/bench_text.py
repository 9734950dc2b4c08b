"""Text matching on a synthetic, labelled ad corpus: boilerplate, MinHash LSH, verification.

Run: ``.venv/bin/python benchmarks/bench_text.py [--ads N] [--seed S] [--no-datasketch]``.

The corpus is seeded and templated. Each advertiser writes its own text from a small
Dutch or English grammar over ``adwatch.synthetic``'s vocabulary (so unrelated advertisers
share many phrases, as real ones do) and renders it into several ads with synonym swaps,
reordered and dropped sentences, typos, changed details and verbatim reposts. A few
agencies paste the same three or four sentences into the ads of many advertisers, every
site adds its footer, a few advertisers repost hundreds of times, and some ads are too
short to compare. The label is the advertiser; a true pair is two ads of one advertiser.

It reports signature throughput, LSH candidates and their recall, verification time,
precision and recall of text-only linking per threshold (with and without boilerplate
removal), a comparison with datasketch (skipped when it is not installed), memory, and
the cost extrapolated to 1M ads.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import platform
import random
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

import matching.text.minhash as text_module
from adwatch.synthetic.names import FIRST_NAMES
from adwatch.synthetic.phones import OPAQUE_COUNTRY_CODE
from adwatch.synthetic.places import CITY_NAMES
from adwatch.synthetic.vocabulary import (
    AGENCY_BLOCKS,
    DETAIL_FRAMES,
    INTRO_FRAMES,
    LANGUAGES,
    ORIGIN_COUNTRIES,
    SLOTS,
    SYNONYM_PAIRS,
    personal_sentence,
)
from matching.text import (
    LSH_BANDS,
    LSH_MAX_BUCKET,
    LSH_ROWS,
    MIN_TOKENS,
    NUM_PERM,
    TEXT_MATCH_THRESHOLD,
    BoilerplateModel,
    TextLSHIndex,
    sentence_key,
    signatures_to_array,
    split_sentences,
    text_signature,
    text_signatures,
    text_similarity,
)

T = TypeVar("T")

# --- the grammar: the words are adwatch.synthetic's ----------------------------------

Words = Mapping[str, Sequence[str]]

# Frames of this benchmark beside three shared detail frames and a shared intro frame:
# generic lines, so that unrelated advertisers share many phrases, as real ones do. Few
# may vary only in name, age and country (such lines read alike across advertisers): with
# all three shared intro frames here, and no city beside the district, text-only links
# between different advertisers were three times as common (20k ads, seeds 7 and 11).
_OWN_FRAMES: dict[str, tuple[str, ...]] = {
    "nl": (
        "Hoi, ik ben {name}, {age} jaar en net nieuw in {city}",
        "Hallo heren, mijn naam is {name} en ik ben {adj} en {adj}",
        "Nieuw in {city}, alleen {duration}",
        "Ik ben een {adj} meid uit {country} met {hair} haar",
        "Ik ontvang in een {place} in {city}, {district}",
        "Ook escort naar je hotel of huis in de regio {city}",
        "Je vindt mij {duration} in {city}, {district}",
        "Ik ben {adj}, {adj} en altijd {adj}",
        "Bij mij geen haast, ik neem de tijd voor je",
        "Een {adj} ontmoeting in een {mood} sfeer",
        "Lengte {height} cm en ik draag maat {size}",
        "Ik spreek {lang} en een beetje {lang}",
        "Hygiene en respect vind ik {important}",
        "Alleen bellen, geen {nocontact}",
        "Maak minstens {notice} van tevoren een afspraak",
        "Prijzen op aanvraag, betalen {pay}",
        "Na een lange dag {hobby} is een {mood} avond met {drink} het mooiste",
        "Mijn vrienden zeggen dat ik {adj} ben en veel van {hobby} hou",
        "Kom gezellig langs voor {drink} en een {mood} uurtje",
    ),
    "en": (
        "Hi, I am {name}, {age} years old and new in {city}",
        "Hello gentlemen, my name is {name} and I am {adj} and {adj}",
        "New in {city}, only {duration}",
        "I am a {adj} girl from {country} with {hair} hair",
        "I receive in a {place} in {city}, {district}",
        "Also outcall to your hotel or home in the {city} area",
        "You can find me {duration} in {city}, {district}",
        "I am {adj}, {adj} and always {adj}",
        "With me there is no rush, I take my time for you",
        "A {adj} meeting in a {mood} atmosphere",
        "Height {height} cm and I wear size {size}",
        "I speak {lang} and a little {lang}",
        "Hygiene and respect are {important} to me",
        "Calls only, no {nocontact}",
        "Please book at least {notice} in advance",
        "Prices on request, {pay}",
        "After a long day of {hobby} a {mood} evening with {drink} is the best",
        "My friends say I am {adj} and that I love {hobby}",
        "Come by for {drink} and a {mood} hour",
    ),
}
# Hair, availability and hobbies from the shared detail frames; the first intro frame.
FRAMES = {
    lang: (
        *_OWN_FRAMES[lang],
        INTRO_FRAMES[lang][0],
        *(DETAIL_FRAMES[lang][i] for i in (0, 2, 3)),
    )
    for lang in LANGUAGES
}


EXTRAS = ["Kusjes", "Tot snel!", "xx", "Kiss", "See you soon", "Groetjes", "Welkom", "Bye"]
# The shared agency blocks without their full stops: this grammar adds its own separators.
AGENCIES = [[sentence.rstrip(".") for sentence in block] for block in AGENCY_BLOCKS]
FOOTERS = [
    "Meld misbruik via de knop onderaan deze pagina",
    "Report abuse with the button below this ad",
    "Deze advertentie is geplaatst door een geverifieerde adverteerder",
    "Vermeld dat je mij op deze site hebt gevonden",
]


@dataclass(frozen=True, slots=True)
class Ad:
    ad_id: str
    advertiser: int
    owner: str
    text: str


class Corpus:
    """Seeded synthetic ads, labelled by advertiser."""

    def __init__(self, ads: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ads: list[Ad] = []
        advertiser = 0
        agency_members = 0
        while len(self.ads) < ads:
            kind = self.rng.random()
            count = min(1 + int(self.rng.expovariate(1 / 3.5)), 30)
            if kind < 0.002:  # prolific reposter: hundreds of ads, mostly verbatim
                count = self.rng.randint(250, 400)
            count = min(count, ads - len(self.ads))
            agency = None
            if kind > 0.85:
                agency = agency_members % len(AGENCIES)
                agency_members += 1
            self._advertiser(advertiser, count, agency, short=0.002 <= kind < 0.07)
            advertiser += 1
        self.advertisers = advertiser

    def _advertiser(self, advertiser: int, count: int, agency: int | None, short: bool) -> None:
        rng = self.rng
        lang = "en" if rng.random() < 0.3 else "nl"
        frames = FRAMES[lang]
        slots = SLOTS[lang]
        profile = {
            "name": rng.choice(FIRST_NAMES),
            "age": str(rng.randint(21, 39)),
            "city": rng.choice(CITY_NAMES),
            "country": rng.choice(ORIGIN_COUNTRIES[lang]),
            "height": str(rng.randint(155, 182)),
            "size": rng.choice(slots["size"]),
        }
        personal: list[str] = []
        if short:
            template = [self._fill(rng.choice(frames), profile, slots)]
        else:
            own = rng.randint(1, 2) if agency is not None else rng.randint(1, 3)
            generic = rng.randint(1, 2) if agency is not None else rng.randint(2, 4)
            personal = [personal_sentence(rng, lang) for _ in range(own)]
            template = [self._fill(f, profile, slots) for f in rng.sample(frames, generic)]
            template += personal
            rng.shuffle(template)
        phone = "".join(rng.choice("0123456789") for _ in range(8))
        # Owner as the engine derives it: the phone, else a photo, else the ad itself.
        owners = [f"phone:{advertiser}", f"image:{advertiser}", None]
        verbatim = 0.85 if count > 100 else 0.25
        first_text = None
        for number in range(count):
            ad_id = f"ad{len(self.ads)}"
            if first_text is not None and rng.random() < verbatim:
                text = first_text
            else:
                text = self._render(template, personal, profile, slots, frames, agency, phone)
                first_text = first_text or text
            owner = rng.choices(owners, weights=[80, 15, 5])[0] or f"ad:{ad_id}"
            self.ads.append(Ad(ad_id, advertiser, owner, text))
            del number

    def _fill(self, frame: str, profile: dict[str, str], slots: Words) -> str:
        out = []
        for part in frame.split("{"):
            if "}" in part:
                slot, rest = part.split("}", 1)
                out.append(profile.get(slot) or self.rng.choice(slots[slot]))
                out.append(rest)
            else:
                out.append(part)
        return "".join(out)

    def _render(
        self,
        template: list[str],
        personal: list[str],
        profile: dict[str, str],
        slots: Words,
        frames: Sequence[str],
        agency: int | None,
        phone: str,
    ) -> str:
        rng = self.rng
        sentences = [s for s in template if rng.random() > 0.12] or template[:1]
        if rng.random() < 0.15:  # a changed detail: one sentence rewritten afresh
            at = rng.randrange(len(sentences))
            sentences[at] = self._fill(rng.choice(frames), profile, slots)
        if rng.random() < 0.5:
            rng.shuffle(sentences)
        # Synonyms reword the generic lines; the advertiser's own sentences change only by
        # typos (swapping their words too cost 0.03 of text-link recall, over six seeds).
        sentences = [self._perturb(s, reword=s not in personal) for s in sentences]
        if rng.random() < 0.5:
            sentences.append(rng.choice(EXTRAS))
        if agency is not None:
            sentences = (
                [*AGENCIES[agency], *sentences] if agency % 2 else [*sentences, *AGENCIES[agency]]
            )
        if rng.random() < 0.8:
            contact = rng.choice(["Bel", "Call", "WhatsApp", "Tel"])
            sentences.insert(rng.randrange(len(sentences) + 1), f"{contact} {self._phone(phone)}")
        if rng.random() < 0.3:
            sentences.append(f"Meer foto's op www.{profile['name'].lower()}{phone[:3]}.nl")
        if rng.random() < 0.9:
            sentences.append(rng.choice(FOOTERS))
        separators = [". ", "! ", ".\n", " 💋 ", "\n- ", " * "]
        text = ""
        for sentence in sentences:
            text += sentence + rng.choice(separators)
        return text.strip()

    def _perturb(self, sentence: str, *, reword: bool) -> str:
        rng = self.rng
        words = []
        for word in sentence.split(" "):
            for a, b in SYNONYM_PAIRS if reword else ():
                if word.lower() in (a, b) and rng.random() < 0.3:
                    word = b if word.lower() == a else a
            if len(word) >= 4 and rng.random() < 0.03:
                i = rng.randrange(len(word) - 1)
                word = rng.choice(
                    [
                        word[:i] + word[i + 1 :],  # dropped letter
                        word[:i] + word[i + 1] + word[i] + word[i + 2 :],  # swapped letters
                        word[:i] + word[i] + word[i:],  # doubled letter
                    ]
                )
            words.append(word)
        return " ".join(words)

    def _phone(self, digits: str) -> str:
        # An unassigned country code: these numbers belong to no one.
        cc = OPAQUE_COUNTRY_CODE
        style = self.rng.randrange(3)
        if style == 0:
            return f"+{cc}-{digits}"
        if style == 1:
            return f"+{cc} {digits[:2]} {digits[2:5]} {digits[5:]}"
        return f"(+{cc}){digits}"


# --- measurements ------------------------------------------------------------------


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def traced(fn: Callable[[], T]) -> tuple[T, float, int]:
    """Result, seconds and peak traced bytes (numpy buffers included) of ``fn``."""
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, elapsed, peak


def bigrams(text: str) -> set[str]:
    words = text.split()
    return {f"{a} {b}" for a, b in itertools.pairwise(words)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


Pair = tuple[int, int]


def same_advertiser_pairs(ads: Sequence[Ad], usable: Sequence[bool]) -> set[Pair]:
    """True pairs: two usable ads of one advertiser."""
    by_advertiser: dict[int, list[int]] = defaultdict(list)
    for i, ad in enumerate(ads):
        if usable[i]:
            by_advertiser[ad.advertiser].append(i)
    return {(a, b) for members in by_advertiser.values() for a in members for b in members if a < b}


def machine() -> str:
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"machine: {model}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"numpy {np.__version__}"
    )


def self_join(index: TextLSHIndex, signatures: Sequence[bytes]) -> tuple[set[Pair], float]:
    keys = np.arange(len(signatures), dtype=np.int64)
    pairs, seconds = timed(lambda: index.candidate_pairs(keys, signatures_to_array(signatures)))
    return {(a, b) for a, b in pairs.tolist()}, seconds


def verify(texts: Sequence[str], pairs: Iterable[Pair]) -> tuple[dict[Pair, float], float]:
    return timed(lambda: {(a, b): text_similarity(texts[a], texts[b]) for a, b in pairs})


@dataclass
class Scored:
    """Verified candidates: every true pair, and a sample of the others standing for all."""

    true_scores: dict[Pair, float]
    false_scores: dict[Pair, float]
    false_total: int  # false candidates the sample stands for
    truth: int  # true pairs, found or not

    def at(self, threshold: float) -> tuple[float, float, int]:
        """Precision, recall and (estimated) number of links at ``threshold``."""
        tp = sum(score >= threshold for score in self.true_scores.values())
        sampled = sum(score >= threshold for score in self.false_scores.values())
        fp = sampled * self.false_total / max(len(self.false_scores), 1)
        links = tp + fp
        return tp / links if links else 1.0, tp / self.truth if self.truth else 1.0, round(links)

    def restrict(self, keep: Callable[[Pair], bool], truth: int) -> Scored:
        """The same estimate over the pairs ``keep`` accepts."""
        false_kept = {p: s for p, s in self.false_scores.items() if keep(p)}
        share = len(false_kept) / max(len(self.false_scores), 1)
        return Scored(
            {p: s for p, s in self.true_scores.items() if keep(p)},
            false_kept,
            round(self.false_total * share),
            truth,
        )


def score_candidates(
    texts: Sequence[str], candidates: set[Pair], truth: set[Pair], cap: int = 200_000
) -> tuple[Scored, float, int]:
    """Scores of all true candidates and of at most ``cap`` others; seconds; pairs scored."""
    false = sorted(candidates - truth)
    sample = random.Random(0).sample(false, min(len(false), cap))
    true_scores, true_seconds = verify(texts, candidates & truth)
    false_scores, false_seconds = verify(texts, sample)
    scored = Scored(true_scores, false_scores, len(false), len(truth))
    return scored, true_seconds + false_seconds, len(true_scores) + len(false_scores)


def with_floor(signatures: Sequence[bytes], texts: Sequence[str], floor: int) -> list[bytes]:
    """Signatures as if ``MIN_TOKENS`` were ``floor`` (>= the floor they were made with)."""
    return [s if len(t.split()) >= floor else b"" for s, t in zip(signatures, texts, strict=True)]


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    def __call__(self, name: str, value: str) -> None:
        self.rows.append((name, value))
        print(f"  {name:<60} {value}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ads", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--no-datasketch", action="store_true")
    args = parser.parse_args()
    report = Table()
    print(machine())
    corpus = Corpus(args.ads, args.seed)
    ads = corpus.ads
    n = len(ads)
    words = sum(len(ad.text.split()) for ad in ads) / n
    report("corpus", f"{n} ads, {corpus.advertisers} advertisers, {words:.0f} words/ad")

    # 1. Boilerplate: split, key, count distinct owners, reduce.
    sentence_lists, split_seconds = timed(lambda: [split_sentences(ad.text) for ad in ads])
    key_lists = [[sentence_key(s) for s in sentences] for sentences in sentence_lists]

    def fit() -> BoilerplateModel:
        model = BoilerplateModel()
        for ad, keys in zip(ads, key_lists, strict=True):
            model.observe(ad.owner, keys)
        return model

    model, fit_seconds, fit_peak = traced(fit)
    distinct_keys = {k for keys in key_lists for k in keys}
    boilerplate = sum(model.is_boilerplate(k) for k in distinct_keys)
    distinctive, reduce_seconds = timed(
        lambda: [" ".join(model.distinctive_sentences(s)) for s in sentence_lists]
    )
    report("split_sentences (normalised)", f"{n / split_seconds:,.0f} ads/s")
    report("BoilerplateModel.observe", f"{n / fit_seconds:,.0f} ads/s")
    report(
        "  sentence keys / stored rows / boilerplate keys",
        f"{len(distinct_keys)} / {len(model)} / {boilerplate}",
    )
    report("  peak traced memory", f"{fit_peak / 2**20:.1f} MB")
    report("distinctive_sentences", f"{n / reduce_seconds:,.0f} ads/s")
    shared = sum(
        1 for ad, text in zip(ads, distinctive, strict=True) if "ons bureau" in text
    ) + sum(1 for text in distinctive if "meld misbruik" in text)
    report("  agency / footer sentences left in distinctive texts", str(shared))

    # 2. Signatures, made with a low floor so that MIN_TOKENS can be swept below.
    signatures, sig_seconds = timed(lambda: text_signatures(distinctive))
    sample = distinctive[: min(n, 5000)]
    _, single_seconds = timed(lambda: [text_signature(t) for t in sample])
    report(
        f"text_signatures (batched, {NUM_PERM} permutations)",
        f"{n / sig_seconds:,.0f} ads/s ({sig_seconds / n * 1e6:.1f} µs/ad)",
    )
    report("text_signature (one at a time)", f"{single_seconds / len(sample) * 1e6:.1f} µs/ad")
    usable = [bool(s) for s in signatures]
    report(f"ads with a signature (MIN_TOKENS {MIN_TOKENS})", f"{sum(usable) / n:.1%}")
    low = 6
    saved, text_module.MIN_TOKENS = text_module.MIN_TOKENS, low
    low_signatures = text_signatures(distinctive)
    text_module.MIN_TOKENS = saved

    # 3. LSH self-join at the library's floor. Recall is given over three sets of true
    # pairs: different text; bigram Jaccard >= 0.3 (what LSH aims at); and those that pass
    # verification at TEXT_MATCH_THRESHOLD (what linking can use: "end to end").
    truth = same_advertiser_pairs(ads, usable)
    different = {(a, b) for a, b in truth if distinctive[a] != distinctive[b]}
    bigram_sets = {i: bigrams(distinctive[i]) for pair in different for i in pair}
    near = {(a, b) for a, b in different if jaccard(bigram_sets[a], bigram_sets[b]) >= 0.3}
    true_scores, _ = verify(distinctive, different)
    passing = {pair for pair, score in true_scores.items() if score >= TEXT_MATCH_THRESHOLD}
    report(
        "true pairs: different text / J >= 0.3 / pass verification",
        f"{len(different)} / {len(near)} / {len(passing)}",
    )

    def layout(label: str, index: TextLSHIndex) -> tuple[set[Pair], float]:
        found, seconds = self_join(index, signatures)
        report(
            label,
            f"{len(found):>9} pairs, recall {len(found & different) / len(different):.3f} / "
            f"{len(found & near) / len(near):.3f} / {len(found & passing) / len(passing):.3f}, "
            f"{seconds:.1f} s",
        )
        return found, seconds

    print("\n  LSH self-join: candidates, recall of different text / J >= 0.3 / end to end")
    index = TextLSHIndex()
    candidates, lsh_seconds = layout(
        f"{LSH_BANDS}x{LSH_ROWS}, max bucket {index.max_bucket} (defaults)", index
    )
    report("  buckets skipped", str(index.skipped_buckets))
    report("  candidates of one advertiser", f"{len(candidates & truth) / len(candidates):.3f}")
    for max_bucket in sorted({10, 50, 200} - {LSH_MAX_BUCKET}):
        layout(
            f"{LSH_BANDS}x{LSH_ROWS}, max bucket {max_bucket}", TextLSHIndex(max_bucket=max_bucket)
        )
    # 64x2 gives ~300 candidates per ad at 20k ads already: too slow to show at scale.
    for bands, rows in ((64, 2), (32, 4)) if n <= 50_000 else ((32, 4),):
        threshold = (1 / bands) ** (1 / rows)
        layout(
            f"{bands}x{rows} (threshold {threshold:.2f}), max bucket 200",
            TextLSHIndex(bands, rows, 200),
        )
    print()

    # 4. Verification and the threshold curve, for several MIN_TOKENS floors. Pairs of
    # identical distinctive text are left out: they are found and linked trivially.
    low_candidates, _ = self_join(TextLSHIndex(), low_signatures)
    low_truth = same_advertiser_pairs(ads, [bool(s) for s in low_signatures])
    differs = lambda pair: distinctive[pair[0]] != distinctive[pair[1]]  # noqa: E731
    scored, verify_seconds, verified = score_candidates(
        distinctive, {p for p in low_candidates if differs(p)}, {p for p in low_truth if differs(p)}
    )
    per_pair = verify_seconds / verified
    report("verification with text_similarity", f"{1 / per_pair:,.0f} pairs/s")
    floors = (low, 10, MIN_TOKENS)
    by_floor = {}
    for floor in floors:
        long_enough = [len(t.split()) >= floor for t in distinctive]
        floor_truth = sum(
            differs(p) for p in same_advertiser_pairs(ads, long_enough) if p in low_truth
        )
        by_floor[floor] = scored.restrict(
            lambda p, ok=long_enough: ok[p[0]] and ok[p[1]], floor_truth
        )
    print("\n  text-only linking, pairs of different text: precision / recall by MIN_TOKENS")
    print(f"  {'T':>5}" + "".join(f"{f'MIN_TOKENS {f}':>22}" for f in floors))
    for threshold in range(50, 100, 5):
        cells = ""
        for floor in floors:
            p, r, _ = by_floor[floor].at(threshold)
            cells += f"{p:>14.3f} / {r:.3f}"
        print(f"  {threshold:>5}{cells}")
    print()
    p, r, links = by_floor[MIN_TOKENS].at(TEXT_MATCH_THRESHOLD)
    report(
        f"linking at {TEXT_MATCH_THRESHOLD:g}, MIN_TOKENS {MIN_TOKENS}, different text",
        f"precision {p:.3f}, recall {r:.3f} ({links} links)",
    )

    # 5. The same without boilerplate removal: what the model buys.
    plain = [" ".join(sentences) for sentences in sentence_lists]
    plain_signatures = text_signatures(plain)
    plain_truth = same_advertiser_pairs(ads, [bool(s) for s in plain_signatures])
    plain_index = TextLSHIndex()
    plain_candidates, _ = self_join(plain_index, plain_signatures)
    plain_differs = lambda pair: plain[pair[0]] != plain[pair[1]]  # noqa: E731
    plain_scored, _, _ = score_candidates(
        plain,
        {p for p in plain_candidates if plain_differs(p)},
        {p for p in plain_truth if plain_differs(p)},
    )
    report(
        "without boilerplate removal: LSH candidates",
        f"{len(plain_candidates)} pairs, {plain_index.skipped_buckets} buckets skipped",
    )
    for threshold in sorted({75, TEXT_MATCH_THRESHOLD, 90}):
        p, r, links = plain_scored.at(threshold)
        report(
            f"  linking at {threshold:g}, different text",
            f"precision {p:.3f}, recall {r:.3f} ({links} links)",
        )

    # 6. The incremental index: add and query one at a time, and in bulk.
    def build() -> TextLSHIndex:
        built = TextLSHIndex()
        for i, sig in enumerate(signatures):
            built.add(i, sig)
        built.query(next(s for s in signatures if s))  # merges what is pending
        return built

    built, add_seconds, add_peak = traced(build)
    indexed = sum(usable)
    queries = [s for s in signatures if s][:2000]
    _, query_seconds = timed(lambda: [built.query(s) for s in queries])
    array = signatures_to_array(signatures)
    keys = np.arange(n, dtype=np.int64)
    _, bulk_seconds, bulk_peak = traced(lambda: TextLSHIndex().add_many(keys, array))
    per_query = query_seconds / len(queries)
    report(
        "TextLSHIndex.add one at a time (+ merge)",
        f"{add_seconds / indexed * 1e6:.1f} µs/ad, peak {add_peak / 2**20:.1f} MB",
    )
    report("TextLSHIndex.add_many", f"{bulk_seconds:.2f} s, peak {bulk_peak / 2**20:.1f} MB")
    report("TextLSHIndex.query", f"{per_query * 1e6:.0f} µs/query")

    # 7. datasketch, for the house rule "use a well-kept library before writing it".
    ds = None if args.no_datasketch else datasketch_figures(distinctive, report)

    # 8. 1M ads, extrapolated linearly: a lower bound for the self-join, whose candidates
    # grow faster than the ads (unrelated ads sharing slot-filled frames pile up).
    scale = 1_000_000 / n
    print(f"\n  extrapolated to 1M ads from {n}")
    report(
        "split + observe + distinctive",
        f"{(split_seconds + fit_seconds + reduce_seconds) * scale:.0f} s",
    )
    report(
        "BoilerplateModel memory (16 B per row + pending dict)",
        f"{len(model) * scale * 16 / 2**20:.0f} MB; measured here: {fit_peak / 2**20:.0f} MB peak",
    )
    report("text_signatures", f"{sig_seconds * scale:.0f} s on one core")
    report(
        "LSH self-join + verification (linear: a lower bound)",
        f"{lsh_seconds * scale:.0f} s + {len(candidates) * scale * per_pair:.0f} s",
    )
    report(
        "TextLSHIndex add one at a time / query every ad",
        f"{add_seconds * scale:.0f} s / {per_query * indexed * scale:.0f} s",
    )
    report(
        "TextLSHIndex memory (8 B per ad and band + 16 B per ad)",
        f"{1e6 * (8 * LSH_BANDS + 16) / 2**20:.0f} MB; measured here: "
        f"{bulk_peak / 2**20:.0f} MB peak for {indexed} ads",
    )
    if ds is not None:
        per_signature, per_insert, per_query_ds, peak_ds, inserted = ds
        report(
            "datasketch signatures / LSH insert / query every ad",
            f"{per_signature * 1e6:.0f} s / {per_insert * 1e6:.0f} s / {per_query_ds * 1e6:.0f} s",
        )
        report("datasketch MinHashLSH memory", f"{peak_ds * 1e6 / inserted / 2**20:.0f} MB traced")


def datasketch_figures(
    texts: Sequence[str], report: Table
) -> tuple[float, float, float, int, int] | None:
    """Per-ad signature, insert and query time and LSH memory of datasketch, if installed."""
    try:
        from datasketch import MinHash, MinHashLSH
    except ImportError:
        print("  datasketch not installed: comparison skipped (.venv/bin/pip install datasketch)")
        return None
    docs = [[s.encode() for s in bigrams(t)] for t in texts if len(t.split()) >= MIN_TOKENS]
    docs = docs[:20_000]

    def minhashes() -> list[MinHash]:
        out = []
        for doc in docs:
            m = MinHash(num_perm=NUM_PERM)
            m.update_batch(doc)
            out.append(m)
        return out

    hashes, seconds = timed(minhashes)
    per_signature = seconds / len(docs)
    mine, mine_seconds = timed(
        lambda: text_signatures([t for t in texts if len(t.split()) >= MIN_TOKENS][:20_000])
    )
    report(
        "datasketch MinHash.update_batch vs text_signatures",
        f"{per_signature * 1e6:.1f} µs/ad vs {mine_seconds / len(mine) * 1e6:.1f} µs/ad",
    )

    def build() -> MinHashLSH:
        lsh = MinHashLSH(threshold=0.3, num_perm=NUM_PERM)
        for i, m in enumerate(hashes):
            lsh.insert(i, m)
        return lsh

    lsh, insert_seconds, peak = traced(build)
    _, query_seconds = timed(lambda: [lsh.query(m) for m in hashes[:2000]])
    per_insert = insert_seconds / len(docs)
    per_query = query_seconds / min(len(docs), 2000)
    report(
        f"datasketch MinHashLSH(0.3): b={lsh.b} r={lsh.r}",
        f"insert {per_insert * 1e6:.1f} µs/ad, query {per_query * 1e6:.0f} µs, "
        f"peak {peak / 2**20:.1f} MB for {len(docs)} ads",
    )
    return per_signature, per_insert, per_query, peak, len(docs)


if __name__ == "__main__":
    main()
