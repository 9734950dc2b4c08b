"""Synthetic data for the demo site, the benchmarks and the tests: one source for all.

Nothing here is real: phone numbers come only from ranges reserved for fiction
(:mod:`.phones`), names are invented (:mod:`.names`), cities are places, not people
(:mod:`.places`), pictures are abstract colour fields and shapes, never a person
(:mod:`.photos`), and ad texts are plausible but never explicit (:mod:`.vocabulary`).
The lower layers (``crawler``, ``matching``, ``legal_policy``, ``storage``) never
import it.
"""

from adwatch.synthetic.names import FIRST_NAMES
from adwatch.synthetic.phones import (
    OBFUSCATED_FORMS,
    PLAIN_FORMS,
    SHARED_LINES,
    fiction_phone_pool,
    format_phone,
    is_fiction_phone,
)
from adwatch.synthetic.photos import PICTURE_SIZE, abstract_picture, jpeg_bytes
from adwatch.synthetic.places import CITIES, CITY_NAMES, City

__all__ = [
    "CITIES",
    "CITY_NAMES",
    "FIRST_NAMES",
    "OBFUSCATED_FORMS",
    "PICTURE_SIZE",
    "PLAIN_FORMS",
    "SHARED_LINES",
    "City",
    "abstract_picture",
    "fiction_phone_pool",
    "format_phone",
    "is_fiction_phone",
    "jpeg_bytes",
]
