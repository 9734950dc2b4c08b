"""Text signals of shared authorship: distinctive sentences, MinHash LSH, edit similarity.

Ad texts are short, repetitive and written from a small vocabulary, and many unrelated
advertisers paste the same agency template or carry the same site footer. So text is
compared in three steps:

1. **Boilerplate removal** (``boilerplate``, over ``normalise``'s sentences). Texts are
   split into sentences, each normalised and keyed. ``BoilerplateModel`` counts for every
   sentence the *distinct owners* using it (an owner is the caller's best guess at one
   advertiser: a phone, else a photo, else the ad); a sentence used by ``min_owners`` or
   more owners is boilerplate and dropped. One advertiser reposting its own text 500 times
   stays one owner. This is the term-frequency idea of record linkage taken to its limit
   for sentences.
2. **Candidates by MinHash LSH** (``minhash``, ``lsh``) over word bigrams of the
   distinctive text: bigrams survive synonym swaps, reordered sentences and typos far
   better than trigrams (TECH_NOTES: 98 % vs 49 % of true near-duplicates), and banding
   with a threshold near 0.3 Jaccard keeps the candidate set small.
3. **Verification** (``verify``) with rapidfuzz ``ratio`` / ``token_sort_ratio`` (never
   ``token_set_ratio`` or partial ratios: they saturate on this kind of text).

Why MinHash and LSH are written here rather than taken from datasketch 2.0 (measured by
``benchmarks/bench_text.py``, 20k synthetic ads, one core): its ``MinHash.update_batch``
took 137 µs per ad against 11.5 µs for ``text_signatures`` on the same texts, and its
``MinHashLSH`` inserts at 258 µs per ad and keeps every band key as Python ``bytes`` in
dicts (112 MB traced for 15k ads, about 7 GB at 1M). The index here stores 8 bytes per
ad and band in sorted numpy arrays (0.33 GB at 1M ads), adds in 7 µs, counts distinct
signatures per bucket (so verbatim reposts do not fill buckets) and self-joins a whole
batch without a Python loop per ad (1M ads: 54 s). datasketch queries faster (42 µs
against 92 µs here). The hashes here come from fixed blake2b seeds, so stored signatures
stay comparable across processes, machines and numpy versions.
"""

from __future__ import annotations

from matching.text.boilerplate import BoilerplateModel, distinctive_text, owner_key
from matching.text.lsh import LSH_BANDS, LSH_MAX_BUCKET, LSH_ROWS, TextLSHIndex
from matching.text.minhash import (
    EMPTY_SLOT,
    MIN_TOKENS,
    NUM_PERM,
    empty_signature_rows,
    narrow_signatures,
    signature_similarity,
    signatures_agree,
    signatures_to_array,
    text_signature,
    text_signatures,
    widen_signatures,
)
from matching.text.normalise import normalise_text, sentence_key, split_sentences
from matching.text.verify import TEXT_MATCH_THRESHOLD, text_similarities, text_similarity

__all__ = [
    "EMPTY_SLOT",
    "LSH_BANDS",
    "LSH_MAX_BUCKET",
    "LSH_ROWS",
    "MIN_TOKENS",
    "NUM_PERM",
    "TEXT_MATCH_THRESHOLD",
    "BoilerplateModel",
    "TextLSHIndex",
    "distinctive_text",
    "empty_signature_rows",
    "narrow_signatures",
    "normalise_text",
    "owner_key",
    "sentence_key",
    "signature_similarity",
    "signatures_agree",
    "signatures_to_array",
    "split_sentences",
    "text_signature",
    "text_signatures",
    "text_similarities",
    "text_similarity",
    "widen_signatures",
]
