"""Ad texts shared by the text tests.

They are written here: plausible, never explicit, with invented first names and phone
numbers that belong to no one (06 0000 0000).
"""

from __future__ import annotations

from matching.text import BoilerplateModel, distinctive_text

LANA = (
    "Nieuw in Utrecht, alleen deze week! Ik ben Lana, 25 jaar, vriendelijk en discreet. "
    "In mijn vrije tijd verzamel ik oude platen en bak ik appeltaart voor de buren. "
    "Ik ontvang in een rustig appartement vlak bij het station. "
    "Na een drukke week geniet ik van een wandeling langs de gracht met een kop thee. "
    "Bel 06 0000 0000, geen sms."
)
# Synonyms swapped (nieuw/pas, vriendelijk/aardig, rustig/kalm), sentences reordered,
# two typos, another age and the phone written differently.
LANA_REWRITTEN = (
    "Ik ontvang in een kalm appartement vlak bij het station.\n"
    "Ik ben Lana, 26 jaar, aardig en discreet 💋 "
    "Na een drukke week geniet ik van een wandelng langs de gracht met een kop thee! "
    "Pas in Utrecht, alleen deze week. "
    "In mijn vrije tijd verzamel ik oude platen en bak ik appeltart voor de buren. "
    "Tel: 06-00000000"
)
BELLA = (
    "Hi, I am Bella, new in Amsterdam for a few days only. I am sweet, calm and always on "
    "time. Every morning I take photos of old bridges and I bake cinnamon bread for my "
    "neighbours. I receive in a quiet apartment near the park. Call me, no texts or hidden "
    "numbers."
)
BELLA_REWRITTEN = (
    "I receive in a quiet flat near the park * Hi, I am Bella, just arrived in Amsterdam for "
    "a few days only * Every morning I take pictures of old bridges and I bake cinamon bread "
    "for my neighbours * I am lovely, calm and always on time * Call me, no texts."
)
# Same genre, same city words and phrasing habits, another advertiser.
MIRA = (
    "Hoi heren, ik ben Mira uit Rotterdam en net terug van vakantie. Ik ontvang in een "
    "schone studio in het centrum. Mijn hobby's zijn dansen, koken en lange fietstochten "
    "langs de Maas. Afspraak graag een uur van tevoren maken. Ik spreek Nederlands en een "
    "beetje Spaans. Alleen bellen, geen anonieme nummers."
)
SOFIA = (
    "Hello gentlemen, I am Sofia, new in Amsterdam and available this week. I receive in a "
    "private studio near the station. I love dancing, yoga and long walks by the sea. "
    "Please book at least one hour in advance. Calls only, no hidden numbers."
)
AGENCY = (
    "Boek via ons bureau voor de beste service in heel Nederland. "
    "Al onze dames zijn gecontroleerd en betrouwbaar. "
    "Bel de receptie voor beschikbaarheid en prijzen. "
    "Wij zijn dagelijks geopend van 10 tot 02 uur."
)
AGENCY_OWN = {
    "noor": "Ik ben Noor, rustig en zorgzaam, en ik hou van oude Franse films. Op zondag "
    "maak ik lange fietstochten langs de rivier en daarna kook ik voor vrienden.",
    "yara": "Hallo, ik ben Yara en ik kom uit Spanje. Mijn vrienden zeggen dat ik grappig "
    "ben en veel van schilderen hou, vooral van zonsondergangen aan zee.",
    "ilse": "Ilse hier, sportief en spontaan. Ik zwem elke ochtend.",
    "fleur": "Ik ben Fleur, ik lees graag gedichten en drink graag thee.",
    "roos": "Roos is mijn naam, ik ben elegant en hou van reizen.",
}


def distinctive(text: str) -> str:
    return distinctive_text(text, BoilerplateModel())
