"""The words of synthetic ads, in Dutch and English, non-explicit by design.

Shared sentences (titles, openings, generic lines, contact lines, agency blocks) are what
unrelated advertisers have in common; the personal word lists, intro and detail frames
and their slots are what make an advertiser's text its own. Every table is keyed by
language (:data:`LANGUAGES`); placeholders are ``{name}``, ``{city}``, ``{phone}``,
``{other}`` (a second phone), ``{age}``, ``{country}`` and the slot names of
:data:`SLOTS`.
"""

from __future__ import annotations

import random
from typing import Final

__all__ = [
    "AGENCY_BLOCKS",
    "CONTACT_HINTS",
    "CONTACT_NONE",
    "CONTACT_ONE",
    "CONTACT_TWO",
    "DETAIL_FRAMES",
    "GENERIC_SENTENCES",
    "INTRO_FRAMES",
    "LANGUAGES",
    "OPENINGS",
    "ORIGIN_COUNTRIES",
    "PERSONAL_WORDS",
    "SLOTS",
    "SYNONYM_PAIRS",
    "TITLES",
    "personal_sentence",
]

LANGUAGES: Final = ("nl", "en")

TITLES: Final = {
    "nl": (
        "{name} – nieuw in {city}",
        "{name}, maar een paar dagen in {city}",
        "Lieve {name} in {city}",
        "Nieuw! {name} in {city}",
        "Deze week in {city}: {name}",
        "Gezellig gezelschap in {city} – {name}",
    ),
    "en": (
        "{name} – new in {city}",
        "{name}, only a few days in {city}",
        "Sweet company in {city}: {name}",
        "Discreet and friendly – {name}",
        "{name} visiting {city} this week",
        "New face in {city}! {name}",
    ),
}
OPENINGS: Final = {
    "nl": (
        "Nieuw in {city}, maar een paar dagen!",
        "Alleen deze week in {city}!",
        "Even op bezoek in {city}.",
        "Net aangekomen in {city}.",
    ),
    "en": (
        "New in {city} for a few days only.",
        "Only this week in {city}!",
        "Visiting {city} for a short time.",
        "Just arrived in {city}.",
    ),
}
# Lines that anyone might write: they link no two ads.
GENERIC_SENTENCES: Final = {
    "nl": (
        "Vriendelijk, discreet en altijd op tijd.",
        "Dag en nacht bereikbaar.",
        "Hotelbezoek mogelijk.",
        "Privé en schoon appartement vlak bij het centrum.",
        "Afspraken ook op korte termijn.",
        "Relaxed, spontaan en makkelijk in de omgang.",
        "Lief en stijlvol gezelschap voor een etentje of een drankje.",
        "Ik spreek Engels en een beetje Nederlands.",
    ),
    "en": (
        "Friendly, discreet and always on time.",
        "Available day and night.",
        "Hotel visits possible.",
        "Private and clean apartment near the centre.",
        "Appointments also at short notice.",
        "Relaxed, open-minded and easy to talk to.",
        "Sweet, elegant company for dinner or a drink.",
        "I speak English and a little Dutch.",
    ),
}
# The number is never the last word of its sentence: a following sentence that starts
# with "Een" or "One" must not read as one more spelled-out digit.
CONTACT_ONE: Final = {
    "nl": (
        "Bel of app {phone} voor een afspraak.",
        "Alleen WhatsApp: {phone} graag.",
        "Bereikbaar op {phone} vanaf de middag.",
        "Stuur een berichtje naar {phone} en ik reageer snel.",
    ),
    "en": (
        "Call or WhatsApp {phone} for an appointment.",
        "WhatsApp only: {phone} please.",
        "Reach me on {phone} from noon.",
        "Text {phone} and I will answer quickly.",
    ),
}
CONTACT_TWO: Final = {
    "nl": (
        "Bel {phone} of app {other} voor een afspraak.",
        "Telefoon {phone} en WhatsApp {other} graag.",
        "Bereikbaar op {phone} en op {other} vanaf de middag.",
    ),
    "en": (
        "Call {phone} or WhatsApp {other} for an appointment.",
        "Phone {phone} and WhatsApp {other} please.",
        "Reach me on {phone} and on {other} from noon.",
    ),
}
# For an ad that has no phone at all.
CONTACT_NONE: Final = {
    "nl": ("Stuur een bericht via de site.", "Reageer via het contactformulier."),
    "en": ("Send a message through the site.", "Reply through the contact form."),
}
# For an ad whose number is shown beside the text, not in it.
CONTACT_HINTS: Final = {
    "nl": (
        "Bel of app gerust.",
        "Geen anonieme nummers a.u.b.",
        "Stuur eerst een berichtje, ik reageer snel.",
    ),
    "en": (
        "Call or WhatsApp.",
        "No withheld numbers, please.",
        "Text me first, I will answer quickly.",
    ),
}
# Agency templates: each block is pasted into the ads of many unrelated advertisers.
AGENCY_BLOCKS: Final = (
    (
        "Boek via ons bureau voor de beste service in heel Nederland.",
        "Al onze dames zijn gecontroleerd en betrouwbaar.",
        "Bel de receptie voor beschikbaarheid en tarieven.",
    ),
    (
        "Welcome to the finest agency in the region.",
        "All our ladies are verified and discreet.",
        "Ask the reception about availability and rates.",
    ),
    (
        "Dit profiel wordt beheerd door een professioneel bureau.",
        "Discretie is bij ons gegarandeerd.",
        "Vraag naar onze weekendtarieven.",
        "Hotelbezoek in de hele Randstad mogelijk.",
    ),
    (
        "Our agency offers company across the Netherlands.",
        "Every booking is handled with complete discretion.",
        "Check the other profiles of our team as well.",
    ),
    (
        "Nieuwe dames elke week bij ons bureau.",
        "Bekijk ook de andere profielen van ons team.",
        "Reserveren kan telefonisch of via de website.",
    ),
    (
        "Premium agency service with a personal touch.",
        "Bookings by phone or through the website.",
        "Open every day until late.",
    ),
)

ORIGIN_COUNTRIES: Final = {
    "nl": (
        "Roemenie",
        "Hongarije",
        "Polen",
        "Spanje",
        "Brazilie",
        "Colombia",
        "Bulgarije",
        "Oekraine",
        "Italie",
    ),
    "en": (
        "Romania",
        "Hungary",
        "Poland",
        "Spain",
        "Brazil",
        "Colombia",
        "Bulgaria",
        "Ukraine",
        "Italy",
    ),
}
INTRO_FRAMES: Final = {
    "nl": (
        "{name} hier, {age} jaar en afkomstig uit {country}",
        "Hoi, ik ben {name}, {age} jaar en kom uit {country}",
        "Mijn naam is {name}, ik ben {age} en geboren in {country}",
    ),
    "en": (
        "{name} here, {age} years old and originally from {country}",
        "Hi, I am {name}, {age} years young and from {country}",
        "My name is {name}, I am {age} and born in {country}",
    ),
}
# Personal sentences, ``opener verb object, tail`` or ``opener verb object link verb
# object``: so many combinations that each advertiser's are (nearly) its own, yet they
# share function-word bigrams with everyone else's.
PERSONAL_WORDS: Final = {
    "nl": {
        "opener": (
            "Wat je moet weten is dat",
            "Eerlijk gezegd",
            "Stiekem",
            "Sinds kort",
            "In mijn vrije tijd",
            "Op zondag",
            "Meestal",
            "Soms",
            "Na een drukke week",
            "Elke ochtend",
            "Als het regent",
            "Vorige zomer",
            "Even over mij:",
            "Wist je dat",
            "Vroeger",
        ),
        "verb": (
            "verzamel ik",
            "maak ik",
            "zoek ik",
            "bewaar ik",
            "teken ik",
            "plan ik",
            "bak ik",
            "droom ik van",
            "praat ik graag over",
            "kijk ik naar",
            "luister ik naar",
            "schrijf ik over",
            "geniet ik van",
            "fotografeer ik",
            "lees ik graag over",
            "spaar ik voor",
            "leer ik over",
        ),
        "object": (
            "oude platen",
            "zelfgemaakte taart",
            "kleine reisjes",
            "Italiaanse films",
            "zeldzame planten",
            "verre steden",
            "vintage jurken",
            "Franse liedjes",
            "sterrenbeelden",
            "ansichtkaarten",
            "Griekse eilanden",
            "oude jazz",
            "kookboeken",
            "zonsondergangen aan zee",
            "kleurrijke sjaals",
            "Japanse thee",
            "gedichten",
            "oude kastelen",
            "paarden",
            "kunst uit Mexico",
        ),
        "link": ("en", "maar", "omdat", "terwijl", "want", "dus"),
        "tail": (
            "daar word ik blij van",
            "dat vindt niet iedereen leuk",
            "dat houdt me jong",
            "daar kan ik uren over vertellen",
            "dat deed mijn moeder ook",
            "dat is mijn kleine geheim",
            "dat ontspant me enorm",
            "daar heb ik nooit genoeg van",
            "dat leerde ik in het buitenland",
            "dat past bij mij",
        ),
    },
    "en": {
        "opener": (
            "What you should know is that",
            "To be honest",
            "Secretly",
            "Lately",
            "In my free time",
            "On sundays",
            "Mostly",
            "Sometimes",
            "After a busy week",
            "Every morning",
            "When it rains",
            "Last summer",
            "A little about me:",
            "Did you know",
            "When I was younger",
        ),
        "verb": (
            "I collect",
            "I make",
            "I look for",
            "I keep",
            "I draw",
            "I plan",
            "I bake",
            "I dream of",
            "I talk about",
            "I watch",
            "I listen to",
            "I write about",
            "I enjoy",
            "I photograph",
            "I read about",
            "I save for",
            "I learn about",
        ),
        "object": (
            "old records",
            "homemade cake",
            "short trips",
            "Italian films",
            "rare plants",
            "faraway cities",
            "vintage dresses",
            "French songs",
            "star signs",
            "postcards",
            "Greek islands",
            "old jazz",
            "cookbooks",
            "sunsets by the sea",
            "colourful scarves",
            "Japanese tea",
            "poems",
            "old castles",
            "horses",
            "Mexican art",
        ),
        "link": ("and", "but", "because", "while", "so", "since"),
        "tail": (
            "that makes me happy",
            "not everyone likes that",
            "it keeps me young",
            "I can talk about it for hours",
            "my mother did the same",
            "that is my little secret",
            "it relaxes me a lot",
            "I never get enough of it",
            "I learned that abroad",
            "it suits me",
        ),
    },
}


def personal_sentence(rng: random.Random, lang: str) -> str:
    """An advertiser's own sentence from :data:`PERSONAL_WORDS` (no final full stop):
    ``opener verb object link verb object`` or ``opener verb object, tail``."""
    words = PERSONAL_WORDS[lang]
    first = (
        f"{rng.choice(words['opener'])} {rng.choice(words['verb'])} {rng.choice(words['object'])}"
    )
    if rng.random() < 0.5:
        return f"{first} {rng.choice(words['link'])} {rng.choice(words['verb'])} " + rng.choice(
            words["object"]
        )
    return f"{first}, {rng.choice(words['tail'])}"


# Sentences about the person, filled from :data:`SLOTS`.
DETAIL_FRAMES: Final = {
    "nl": (
        "Ik heb {hair} haar, {eyes} ogen en een {body} figuur",
        "Ik ontvang in een {place} in {district}",
        "Beschikbaar van {day} tot {day}, {hours}",
        "Ik hou van {hobby}, {hobby} en een goed gesprek bij {drink}",
        "Lengte {height} cm en ik spreek {lang} en een beetje {lang}",
    ),
    "en": (
        "I have {hair} hair, {eyes} eyes and a {body} figure",
        "I receive in a {place} in the {district}",
        "Available from {day} to {day}, {hours}",
        "I love {hobby}, {hobby} and a good talk over {drink}",
        "Height {height} cm and I speak {lang} and a little {lang}",
    ),
}
SLOTS: Final = {
    "nl": {
        "adj": (
            "vriendelijk",
            "lief",
            "discreet",
            "spontaan",
            "sportief",
            "charmant",
            "elegant",
            "zorgzaam",
            "vrolijk",
            "open",
            "rustig",
            "geduldig",
            "speels",
            "verzorgd",
            "slim",
            "grappig",
            "warm",
            "attent",
            "hartelijk",
            "nieuwsgierig",
        ),
        "hair": ("blond", "donker", "bruin", "rood", "zwart", "lang", "kort", "krullend"),
        "eyes": ("blauwe", "groene", "bruine", "grijze"),
        "body": ("slank", "sportief", "vrouwelijk", "tenger"),
        "place": (
            "rustig appartement",
            "schone studio",
            "prive woning",
            "gezellige flat",
            "net appartement",
        ),
        "district": ("het centrum", "noord", "zuid", "oost", "west", "de buurt van het station"),
        "day": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
        "hours": ("van 10 tot 22 uur", "de hele dag", "s avonds", "overdag", "tot laat", "24 uur"),
        "duration": ("deze week", "een paar dagen", "tot zondag", "deze maand", "heel even"),
        "hobby": (
            "dansen",
            "koken",
            "reizen",
            "muziek",
            "lezen",
            "wandelen",
            "yoga",
            "zingen",
            "films",
            "fitness",
            "shoppen",
            "tekenen",
            "fotografie",
            "tuinieren",
            "zwemmen",
            "fietsen",
            "schilderen",
            "theater",
        ),
        "drink": ("koffie", "thee", "een wijntje", "iets fris"),
        "lang": (
            "Nederlands",
            "Engels",
            "Duits",
            "Spaans",
            "Roemeens",
            "Italiaans",
            "Pools",
            "Russisch",
            "Frans",
        ),
        "height": tuple(str(h) for h in range(155, 183)),
        "size": ("34", "36", "38", "40"),
        "notice": ("een uur", "twee uur", "een halve dag", "een dag"),
        "pay": ("contant", "alleen contant", "contant of tikkie", "vooraf betalen"),
        "nocontact": ("sms", "anonieme nummers", "mail", "berichten"),
        "important": ("heel belangrijk", "het belangrijkste", "vanzelfsprekend", "een must"),
        "mood": ("gezellige", "ontspannen", "rustige", "prettige", "warme"),
    },
    "en": {
        "adj": (
            "friendly",
            "sweet",
            "discreet",
            "spontaneous",
            "sporty",
            "charming",
            "elegant",
            "caring",
            "cheerful",
            "open",
            "calm",
            "patient",
            "playful",
            "classy",
            "smart",
            "funny",
            "warm",
            "attentive",
            "kind",
            "curious",
        ),
        "hair": ("blonde", "dark", "brown", "red", "black", "long", "short", "curly"),
        "eyes": ("blue", "green", "brown", "grey"),
        "body": ("slim", "sporty", "curvy", "petite"),
        "place": (
            "quiet apartment",
            "clean studio",
            "private home",
            "cosy flat",
            "nice place",
        ),
        "district": ("centre", "north", "south", "east", "west", "station area"),
        "day": ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
        "hours": (
            "from 10 to 22",
            "all day",
            "in the evening",
            "daytime",
            "until late",
            "24 hours",
        ),
        "duration": ("this week", "a few days", "until sunday", "this month", "a short time"),
        "hobby": (
            "dancing",
            "cooking",
            "travel",
            "music",
            "reading",
            "walking",
            "yoga",
            "singing",
            "films",
            "fitness",
            "shopping",
            "drawing",
            "photography",
            "gardening",
            "swimming",
            "cycling",
            "painting",
            "theatre",
        ),
        "drink": ("coffee", "tea", "a glass of wine", "a soft drink"),
        "lang": (
            "Dutch",
            "English",
            "German",
            "Spanish",
            "Romanian",
            "Italian",
            "Polish",
            "Russian",
            "French",
        ),
        "height": tuple(str(h) for h in range(155, 183)),
        "size": ("34", "36", "38", "40"),
        "notice": ("one hour", "two hours", "half a day", "a day"),
        "pay": ("cash", "cash only", "cash or bank app", "payment in advance"),
        "nocontact": ("sms", "hidden numbers", "emails", "texts"),
        "important": ("very important", "the most important", "a must", "essential"),
        "mood": ("relaxed", "cosy", "calm", "pleasant", "warm"),
    },
}
# Word swaps of a paraphrase, either way round; no word is in two pairs.
SYNONYM_PAIRS: Final = (
    ("blij", "vrolijk"),
    ("leuk", "fijn"),
    ("oude", "ouwe"),
    ("kleine", "korte"),
    ("graag", "vaak"),
    ("enorm", "heel erg"),
    ("rustig", "stil"),
    ("gezellige", "knusse"),
    ("schone", "nette"),
    ("vriendelijk", "aardig"),
    ("lief", "schattig"),
    ("nieuw", "pas"),
    ("beschikbaar", "bereikbaar"),
    ("afspraak", "date"),
    ("gezellig", "knus"),
    ("appartement", "appartementje"),
    ("meid", "dame"),
    ("mooiste", "fijnste"),
    ("heren", "mannen"),
    ("happy", "glad"),
    ("old", "vintage"),
    ("quiet", "calm"),
    ("clean", "tidy"),
    ("cosy", "snug"),
    ("love", "like"),
    ("talk", "chat"),
    ("lot", "great deal"),
    ("friendly", "nice"),
    ("sweet", "lovely"),
    ("new", "just arrived"),
    ("available", "open"),
    ("girl", "lady"),
    ("gentlemen", "guys"),
    ("apartment", "flat"),
    ("meeting", "encounter"),
    ("best", "greatest"),
)
