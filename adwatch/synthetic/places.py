"""Dutch cities where synthetic ads are placed, with their province and a weight."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["CITIES", "CITY_NAMES", "City"]


@dataclass(frozen=True, slots=True)
class City:
    """A city, its province and country, and how many ads it draws relative to others."""

    name: str
    province: str
    country: str
    weight: int  # big cities draw more ads, so unrelated advertisers pile up there


CITIES: Final = (
    City("Amsterdam", "Noord-Holland", "NL", 10),
    City("Rotterdam", "Zuid-Holland", "NL", 7),
    City("Den Haag", "Zuid-Holland", "NL", 6),
    City("Utrecht", "Utrecht", "NL", 6),
    City("Eindhoven", "Noord-Brabant", "NL", 4),
    City("Groningen", "Groningen", "NL", 3),
    City("Tilburg", "Noord-Brabant", "NL", 3),
    City("Almere", "Flevoland", "NL", 2),
    City("Breda", "Noord-Brabant", "NL", 2),
    City("Nijmegen", "Gelderland", "NL", 2),
    City("Arnhem", "Gelderland", "NL", 2),
    City("Haarlem", "Noord-Holland", "NL", 2),
    City("Enschede", "Overijssel", "NL", 2),
    City("Zwolle", "Overijssel", "NL", 2),
    City("Leiden", "Zuid-Holland", "NL", 2),
    City("Maastricht", "Limburg", "NL", 2),
    City("Dordrecht", "Zuid-Holland", "NL", 1),
    City("Den Bosch", "Noord-Brabant", "NL", 1),
    City("Venlo", "Limburg", "NL", 1),
    City("Deventer", "Overijssel", "NL", 1),
)
CITY_NAMES: Final = tuple(city.name for city in CITIES)
