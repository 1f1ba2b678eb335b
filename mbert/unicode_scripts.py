"""The Unicode script of a character, a vocabulary entry or a text, from `unicodedata` character names.

Python's standard library has no script property, but a character's name starts with (or
contains) its script for every script in Wikipedia's languages: "LATIN SMALL LETTER A",
"DEVANAGARI VOWEL SIGN I", "CJK UNIFIED IDEOGRAPH-4E00". Digits, punctuation and symbols are
"Common"; combining marks without a script in their name ("COMBINING ACUTE ACCENT") take the
script of the letters around them."""

from __future__ import annotations

import unicodedata
from collections import Counter
from functools import lru_cache

from .fake import is_fake_character

# name words -> script; multi-word names first so "OL CHIKI" is not read as something else
_SCRIPTS = {
    "CJK": "Han", "IDEOGRAPHIC": "Han", "KANGXI": "Han", "HIRAGANA": "Hiragana", "KATAKANA": "Katakana",
    "KATAKANA-HIRAGANA": "Katakana", "HANGUL": "Hangul", "BOPOMOFO": "Bopomofo", "YI": "Yi",
    "LATIN": "Latin", "CYRILLIC": "Cyrillic", "GREEK": "Greek", "COPTIC": "Coptic", "ARMENIAN": "Armenian",
    "GEORGIAN": "Georgian", "HEBREW": "Hebrew", "ARABIC": "Arabic", "SYRIAC": "Syriac", "THAANA": "Thaana",
    "NKO": "Nko", "TIFINAGH": "Tifinagh", "ETHIOPIC": "Ethiopic", "CHEROKEE": "Cherokee",
    "CANADIAN": "Canadian Aboriginal", "DEVANAGARI": "Devanagari", "BENGALI": "Bengali",
    "GURMUKHI": "Gurmukhi", "GUJARATI": "Gujarati", "ORIYA": "Oriya", "TAMIL": "Tamil", "TELUGU": "Telugu",
    "KANNADA": "Kannada", "MALAYALAM": "Malayalam", "SINHALA": "Sinhala", "THAI": "Thai", "LAO": "Lao",
    "TIBETAN": "Tibetan", "MYANMAR": "Myanmar", "KHMER": "Khmer", "MONGOLIAN": "Mongolian",
    "JAVANESE": "Javanese", "BALINESE": "Balinese", "SUNDANESE": "Sundanese", "BUGINESE": "Buginese",
    "TAGALOG": "Tagalog", "VAI": "Vai", "BAMUM": "Bamum", "RUNIC": "Runic", "OGHAM": "Ogham",
    "GLAGOLITIC": "Glagolitic", "GOTHIC": "Gothic", "SAMARITAN": "Samaritan", "LIMBU": "Limbu",
    "LEPCHA": "Lepcha", "SAURASHTRA": "Saurashtra", "CHAM": "Cham", "ADLAM": "Adlam",
}
_TWO_WORD = {"OL CHIKI": "Ol Chiki", "TAI LE": "Tai Le", "NEW TAI": "New Tai Lue", "TAI THAM": "Tai Tham",
             "TAI VIET": "Tai Viet", "MEETEI MAYEK": "Meetei Mayek", "OLD ITALIC": "Old Italic"}
COMMON, INHERITED, UNKNOWN = "Common", "Inherited", "Unknown"
FAKE = "Fake"  # the letters and punctuation of mbert.fake's fake languages (Tangut, Yi, ... underneath)


@lru_cache(maxsize=65536)
def char_script(char: str) -> str:
    if is_fake_character(char):
        return FAKE
    category = unicodedata.category(char)
    if category[0] not in "LM":
        return COMMON  # digits, punctuation, symbols, separators
    name = unicodedata.name(char, "")
    if not name:
        return UNKNOWN
    words = name.split()
    if len(words) > 1 and " ".join(words[:2]) in _TWO_WORD:
        return _TWO_WORD[" ".join(words[:2])]
    for word in words:  # "FULLWIDTH LATIN ...", "MODIFIER LETTER CYRILLIC ..." name the script later
        if word in _SCRIPTS:
            return _SCRIPTS[word]
    return INHERITED if category[0] == "M" else COMMON


def entry_script(entry: str) -> str:
    """The script of a vocabulary entry: that of most of its letters (marks follow their letters)."""
    counts = Counter(char_script(c) for c in entry)
    letters = {s: n for s, n in counts.items() if s not in (COMMON, INHERITED)}
    if letters:
        return max(sorted(letters), key=letters.__getitem__)
    return COMMON


# ISO 15924 codes (the language registry's) -> the script names above that writing uses
ISO_15924 = {
    "Latn": ("Latin",), "Cyrl": ("Cyrillic",), "Grek": ("Greek",), "Armn": ("Armenian",),
    "Geor": ("Georgian",), "Hebr": ("Hebrew",), "Arab": ("Arabic",), "Deva": ("Devanagari",),
    "Beng": ("Bengali",), "Guru": ("Gurmukhi",), "Gujr": ("Gujarati",), "Taml": ("Tamil",),
    "Telu": ("Telugu",), "Knda": ("Kannada",), "Mlym": ("Malayalam",), "Thai": ("Thai",),
    "Mymr": ("Myanmar",), "Hans": ("Han",), "Hant": ("Han",), "Jpan": ("Han", "Hiragana", "Katakana"),
    "Kore": ("Hangul", "Han"),
}


def letter_scripts(text: str) -> Counter:
    """How many letters of `text` are in each script (digits, punctuation and marks not counted)."""
    counts = Counter(char_script(c) for c in text if c.isalpha())
    for other in (COMMON, INHERITED, UNKNOWN):
        counts.pop(other, None)
    return counts
