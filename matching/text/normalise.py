"""Ad text made comparable: contacts stripped, case and accents folded, sentences split and keyed.

Phones, e-mails and URLs are compared as signals of their own, so their characters must not
make two texts look alike; they are removed before anything else.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from hashlib import blake2b

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Bare domains only for top-level domains that are not also Dutch or English words
# ("nieuw.de", "call.me" are sentence ends with a missing space, not addresses).
# A URL's trailing punctuation stays: it may end the sentence.
_URL = re.compile(
    r"(?:(?:https?://|www\.)\S*|\b(?:[a-z0-9-]+\.)+(?:nl|com|net|org|eu|io|uk|ro)\b(?:/\S*)?)"
    r"(?<![.,!?;:)\]])",
    re.IGNORECASE,
)
# Six or more digits, possibly split by spaces, dots, dashes, slashes or brackets: phones
# (compared separately, so their digits must not make texts similar) and the odd date.
_PHONE = re.compile(r"\+?\d(?:[ \t./()\-]{0,2}\d){5,}")
_NON_WORD = re.compile(r"[\W_]+")
_SENTENCE_BREAK = re.compile(
    r"\.(?!\d)|(?<!\d)\."  # a dot, unless between digits (1.5 uur)
    r"|[!?;…\n\r*•·●▪►◆■□★☆✓✔♥|~]+"
    r"|\s[-–—]+\s"
    r"|[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF]"  # emoji and dingbats
)


def _strip_contacts(text: str) -> str:
    text = _EMAIL.sub(" ", text)
    text = _URL.sub(" ", text)
    return _PHONE.sub(" ", text)


def _fold(text: str) -> str:
    """Casefold, strip accents, keep letters and digits: the part after contact removal."""
    text = text.casefold()
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
        text = unicodedata.normalize("NFKC", text)
    # Punctuation turned to spaces can reveal a phone written as 06,00,00,00,00.
    return " ".join(_PHONE.sub(" ", _NON_WORD.sub(" ", text)).split())


def normalise_text(text: str) -> str:
    """NFKC, casefolded, accents stripped, without URLs, e-mails and phone-like digit runs.

    Only letters and digits remain, single-spaced. Idempotent.
    """
    return _fold(_strip_contacts(unicodedata.normalize("NFKC", text)))


# A "sentence" of more words than this is a run-on text, an ad written without stops. It
# is cut where its own words say (content-defined chunking, as rsync and LBFS cut files),
# so that a passage pasted into many such ads, an agency's block, gives the same pieces
# wherever it starts and boilerplate counting finds it; uncut, every run-on ad would be one
# sentence that no two authors share, and a shared block would make their texts alike.
_RUN_ON_WORDS = 24
# A piece ends after a word pair whose CRC-32 is 0 modulo this (about 8 words a piece),
# holds at least the minimum and at most the maximum of words.
_PIECE_MODULUS = 8
_MIN_PIECE_WORDS = 4
_MAX_PIECE_WORDS = 32


def split_sentences(text: str) -> list[str]:
    """The raw text's sentences, each normalised; empty ones dropped.

    Contacts are removed before splitting so that the dots of a URL or a phone number do
    not cut a sentence. A run-on sentence (more than 24 words) comes back in pieces cut
    at word pairs chosen by their content, the same pieces in every text that holds it.
    """
    clean = _strip_contacts(unicodedata.normalize("NFKC", text))
    sentences = (_fold(part) for part in _SENTENCE_BREAK.split(clean))
    return [piece for sentence in sentences if sentence for piece in _cut_run_on(sentence)]


def _cut_run_on(sentence: str) -> list[str]:
    words = sentence.split(" ")
    if len(words) <= _RUN_ON_WORDS:
        return [sentence]
    pieces: list[str] = []
    start = 0
    for end in range(1, len(words)):
        size = end - start + 1
        if size >= _MAX_PIECE_WORDS or (
            size >= _MIN_PIECE_WORDS
            and zlib.crc32(f"{words[end - 1]} {words[end]}".encode()) % _PIECE_MODULUS == 0
        ):
            pieces.append(" ".join(words[start : end + 1]))
            start = end + 1
    if start < len(words):
        pieces.append(" ".join(words[start:]))
    return pieces


def sentence_key(sentence: str) -> int:
    """Stable unsigned 64-bit key of an (already normalised) sentence."""
    return int.from_bytes(blake2b(sentence.encode(), digest_size=8).digest(), "little")
