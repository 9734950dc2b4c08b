"""Trafficking indicators: the former ``matching/indicators.py``, moved whole into
``kinds.py`` so that its history follows the split into modules."""

from matching.indicators.kinds import *  # noqa: F403
from matching.indicators.kinds import __all__ as __all__
