"""Fake languages (K et al. 2020; Dufter & Schütze 2020): a language's text with every character
replaced by one that no language of the 104-language mBERT registry writes in.

A fake code is `<base>-fake` or `<base>-fakeN` (N >= 2), e.g. `en-fake`, `en-fake2`, `de-fake`.
`fake_text(text, code)` maps a text of the base language to its fake copy; `real_text` inverts it.
The copy has the same words, word order, frequencies and sentence structure, but shares no
sub-word with the original (special tokens aside), because the mapping survives BERT's
normalisation and pre-tokenisation class by class:

| class (of the NFC text)                    | becomes                                              |
|--------------------------------------------|------------------------------------------------------|
| whitespace, control/format/private-use/unassigned (category Z*, C*), U+FFFD | itself: BERT turns them into spaces or drops them, so they never reach a vocabulary |
| CJK ideographs BERT spaces (U+4E00-9FFF, U+3400-4DBF, U+F900-FAFF) | CJK Extension B-D ideographs (U+20000-2B81D), which BERT spaces too |
| punctuation as BERT splits it (ASCII non-alphanumerics, category P*), 247 marks | punctuation (P*) of scripts no mBERT language uses (Tibetan, Samaritan, Siddham, ...) |
| letters, digits, marks and symbols in the source ranges below | letters (Lo) of Tangut, Yi, Egyptian hieroglyphs, Cuneiform, Anatolian hieroglyphs, Bamum, Khitan, Nüshu and Linear A |

Hangul syllables are first spelled as their jamo (so a Korean fake word is 2-3 times longer than
the real one); `real_text` composes them again. Everything else of a mapped class that lies outside
the tables (e.g. emoji outside U+1F300-1F9FF, Ethiopic, Ext B ideographs in the source) becomes
the class's one *fallback* character: still shared with no real language, but not invertible
(`real_text` gives U+FFFD); `unmapped_characters` counts them and `strict=True` refuses them.

The mapping is a pure function of the code point and the fake number (the tables below, plus
Python's Unicode database for a character's class), so any process recomputes it without storing
anything. Source index i of a class maps to target[(i + (N - 1) * core) mod len(target)]: within
one code it is one-to-one; codes with different numbers (`en-fake`, `de-fake2`) never share a
fake character for source indices below `core` (the Latin, Greek, Cyrillic, Armenian, Hebrew,
Arabic and Vietnamese-Latin letters U+0000-06FF and U+1E00-1EFF; the first 48 punctuation marks:
ASCII, Latin-1 and the commonest quotes and dashes; the CJK unified ideographs U+4E00-9FFF) as
long as the numbers differ by at most 5 (letters), 4 (punctuation) or 1 (ideographs). Codes with the
same number (`en-fake`, `de-fake`) share one fake script, as English and German share Latin.

Case: fake letters have no case. With a cased vocabulary (mBERT's) nothing changes; a lower-casing
vocabulary would merge "The"/"the" in the real text but not in the fake copy, so the vocabulary
stage refuses to train an uncased vocabulary on a corpus that holds a fake language.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from .errors import UserError

# N = 2..50, so each fake script has an ISO 15924 private-use code (Qaaa..Qabx)
_CODE = re.compile(r"^(?P<base>[A-Za-z0-9-]+?)-fake(?P<number>[2-9]|[1-4][0-9]|50)?$")

# --- the tables: (first, last) code points, inclusive. Changing them changes every fake corpus.

# letters, digits, marks and symbols of the mBERT languages' scripts and the common symbol blocks;
# the first two ranges (2,048 code points) are the core kept apart between fake numbers
_LETTER_SOURCE = (
    (0x0000, 0x06FF), (0x1E00, 0x1EFF),
    (0x0750, 0x077F), (0x08A0, 0x08FF), (0x0900, 0x0DFF), (0x0E00, 0x0E7F), (0x1000, 0x10FF),
    (0x1100, 0x11FF), (0x1C80, 0x1CBF), (0x1D00, 0x1DFF), (0x1F00, 0x1FFF), (0x2070, 0x27FF),
    (0x2900, 0x2BFF), (0x2C60, 0x2C7F), (0x2DE0, 0x2DFF), (0x3000, 0x33FF), (0xA640, 0xA69F),
    (0xA720, 0xA7FF), (0xA960, 0xA97F), (0xA980, 0xA9DF), (0xAB30, 0xAB6F), (0xD7B0, 0xD7FF),
    (0xFB00, 0xFDFF), (0xFE00, 0xFE0F), (0xFE20, 0xFE6F), (0xFE70, 0xFEFF), (0xFF00, 0xFFEF),
    (0x1D400, 0x1D7FF), (0x1F300, 0x1F64F), (0x1F680, 0x1F6FF), (0x1F900, 0x1F9FF),
)
_LETTER_CORE = 0x800
# every code point here is a letter (Lo, Unicode <= 14) that BERT keeps inside a word
_LETTER_TARGET = (
    (0x17000, 0x187F7), (0x18800, 0x18AFF), (0x18B00, 0x18CD5), (0x18D00, 0x18D08), (0xA000, 0xA014),
    (0xA016, 0xA48C), (0x13000, 0x1342E), (0x12000, 0x12399), (0x12480, 0x12543), (0x14400, 0x14646),
    (0x16800, 0x16A38), (0x1B170, 0x1B2FB), (0x10600, 0x10736),
)

# punctuation that BERT splits off: ASCII, Latin-1, general, CJK, fullwidth, that of the mBERT
# languages' scripts, small and vertical forms (247 marks; the first 48 are the core)
_PUNCT_SOURCE = (
    (0x0021, 0x002F), (0x003A, 0x0040), (0x005B, 0x0060), (0x007B, 0x007E), (0x00A1, 0x00A1), (0x00A7, 0x00A7),
    (0x00AB, 0x00AB), (0x00B6, 0x00B7), (0x00BB, 0x00BB), (0x00BF, 0x00BF), (0x2010, 0x2027), (0x2030, 0x2043),
    (0x2045, 0x2051), (0x2053, 0x205E), (0x3001, 0x3003), (0x3008, 0x3011), (0x3014, 0x301F), (0x3030, 0x3030),
    (0x303D, 0x303D), (0x30A0, 0x30A0), (0x30FB, 0x30FB), (0xFF01, 0xFF03), (0xFF05, 0xFF0A), (0xFF0C, 0xFF0F),
    (0xFF1A, 0xFF1B), (0xFF1F, 0xFF20), (0xFF3B, 0xFF3D), (0xFF3F, 0xFF3F), (0xFF5B, 0xFF5B), (0xFF5D, 0xFF5D),
    (0xFF5F, 0xFF65), (0x055A, 0x055F), (0x0589, 0x058A), (0x05BE, 0x05BE), (0x05C0, 0x05C0), (0x05C3, 0x05C3),
    (0x05C6, 0x05C6), (0x05F3, 0x05F4), (0x0609, 0x060A), (0x060C, 0x060D), (0x061B, 0x061B), (0x061D, 0x061F),
    (0x066A, 0x066D), (0x06D4, 0x06D4), (0x0964, 0x0965), (0x0970, 0x0970), (0x09FD, 0x09FD), (0x0A76, 0x0A76),
    (0x0AF0, 0x0AF0), (0x0C77, 0x0C77), (0x0C84, 0x0C84), (0x0DF4, 0x0DF4), (0x0E4F, 0x0E4F), (0x0E5A, 0x0E5B),
    (0x104A, 0x104F), (0x10FB, 0x10FB), (0xFE50, 0xFE52), (0xFE54, 0xFE61), (0xFE63, 0xFE63), (0xFE68, 0xFE68),
    (0xFE6A, 0xFE6B), (0xFE10, 0xFE19), (0xFE30, 0xFE32),
)
_PUNCT_CORE = 48
# punctuation (P*) of scripts no mBERT language is written in, split off by BERT's pre-tokenizer
_PUNCT_TARGET = (
    (0x07F7, 0x07F9), (0x0830, 0x083E), (0x085E, 0x085E), (0x0F04, 0x0F0B), (0x0F0D, 0x0F12), (0x0F14, 0x0F14),
    (0x0F3A, 0x0F3D), (0x0F85, 0x0F85), (0x0FD0, 0x0FD4), (0x0FD9, 0x0FDA), (0x1360, 0x1368), (0x1400, 0x1400),
    (0x166E, 0x166E), (0x169B, 0x169C), (0x1944, 0x1945), (0x1A1E, 0x1A1F), (0x1AA0, 0x1AA6), (0x1AA8, 0x1AAD),
    (0x1B5A, 0x1B60), (0x1BFC, 0x1BFF), (0x1C3B, 0x1C3F), (0x1C7E, 0x1C7F), (0x2CF9, 0x2CFC), (0x2CFE, 0x2CFF),
    (0x2D70, 0x2D70), (0xA4FE, 0xA4FF), (0xA60D, 0xA60F), (0xA6F2, 0xA6F7), (0xA874, 0xA877), (0xA8CE, 0xA8CF),
    (0xA92F, 0xA92F), (0xA95F, 0xA95F), (0xAA5C, 0xAA5F), (0xAADE, 0xAADF), (0xAAF0, 0xAAF1), (0xABEB, 0xABEB),
    (0x1039F, 0x1039F), (0x103D0, 0x103D0), (0x1056F, 0x1056F), (0x10857, 0x10857), (0x1091F, 0x1091F),
    (0x1093F, 0x1093F), (0x10A50, 0x10A58), (0x10A7F, 0x10A7F), (0x10AF0, 0x10AF6), (0x10B39, 0x10B3F),
    (0x10B99, 0x10B9C), (0x11047, 0x1104D), (0x110BB, 0x110BC), (0x110BE, 0x110C1), (0x11140, 0x11143),
    (0x11174, 0x11175), (0x111C5, 0x111C8), (0x111CD, 0x111CD), (0x111DB, 0x111DB), (0x111DD, 0x111DF),
    (0x11238, 0x1123D), (0x112A9, 0x112A9), (0x114C6, 0x114C6), (0x115C1, 0x115D7), (0x11641, 0x11643),
    (0x1173C, 0x1173E), (0x12470, 0x12474), (0x16A6E, 0x16A6F), (0x16AF5, 0x16AF5), (0x16B37, 0x16B3B),
    (0x16B44, 0x16B44), (0x1BC9F, 0x1BC9F), (0x1DA87, 0x1DA8B),
)

# the ideographs BERT puts spaces around; the CJK unified block (20,992) is the core
_IDEOGRAPH_SOURCE = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF))
_IDEOGRAPH_CORE = 0x5200
_IDEOGRAPH_TARGET = ((0x20000, 0x2A6DF), (0x2A700, 0x2B734), (0x2B740, 0x2B81D))

_HANGUL = re.compile("[\uac00-\ud7a3]+")
REPLACEMENT = "\ufffd"


class FakeMappingError(UserError):
    """A character the fake mapping cannot invert or, with strict=True, has no table for."""


@dataclass(frozen=True)
class FakeCode:
    code: str    # e.g. "en-fake2"
    base: str    # e.g. "en"
    number: int  # 1 for "-fake", N for "-fakeN": the fake script

    @property
    def script(self) -> str:
        """ISO 15924 private-use script code: Qaaa for fake script 1, Qaab for 2, ..."""
        n = self.number - 1
        return "Qa" + chr(ord("a") + n // 26) + chr(ord("a") + n % 26)


def parse_fake_code(code: str) -> FakeCode | None:
    """`en-fake` -> FakeCode("en-fake", "en", 1); None for a code that is not a fake one."""
    match = _CODE.match(code)
    if match is None:
        return None
    return FakeCode(code, match["base"], int(match["number"] or 1))


def base_language(code: str) -> str:
    """The language a code's text is written in: `en` for `en-fake`, the code itself otherwise."""
    fake = parse_fake_code(code)
    return fake.base if fake is not None else code


def _require(code: str) -> FakeCode:
    fake = parse_fake_code(code)
    if fake is None:
        raise FakeMappingError(f"{code!r} is not a fake language code; write <base>-fake or <base>-fakeN "
                               f"(N = 2..50), e.g. en-fake")
    return fake


def _points(ranges: tuple[tuple[int, int], ...]) -> list[int]:
    return [cp for first, last in ranges for cp in range(first, last + 1)]


def _keeps(char: str) -> bool:
    """Characters BERT's cleaning turns into spaces or removes: they stay as they are."""
    category = unicodedata.category(char)
    return category[0] in "ZC" or char.isspace() or char == REPLACEMENT


def _is_punctuation(char: str) -> bool:
    """BERT's `_is_punctuation`: ASCII non-alphanumerics count even when Unicode calls them symbols."""
    cp = ord(char)
    return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 \
        or unicodedata.category(char)[0] == "P"


def _is_ideograph(char: str) -> bool:
    """BERT's `_is_chinese_char` ranges."""
    cp = ord(char)
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def character_class(char: str) -> str:
    """"keep", "ideograph", "punctuation" or "letter" (letters, digits, marks, symbols)."""
    if _keeps(char):
        return "keep"
    if _is_ideograph(char):
        return "ideograph"
    if _is_punctuation(char):
        return "punctuation"
    return "letter"


class _Forward(dict):
    """str.translate table of one fake number: the tables' characters, and by class the rest (kept,
    or the class's fallback character), filled in as they are met."""

    def __init__(self, mapping: dict[int, str], fallback: dict[str, str]) -> None:
        super().__init__(mapping)
        self.fallback = fallback
        self.mapped = frozenset(mapping)  # the tables' source code points (the dict also caches the rest)

    def __missing__(self, cp: int) -> str:
        char = chr(cp)
        name = character_class(char)
        found = char if name == "keep" else self.fallback[name]
        self[cp] = found
        return found


class _Backward(dict):
    """str.translate table from fake characters back; anything else but kept characters is an error."""

    def __missing__(self, cp: int) -> str:
        char = chr(cp)
        if character_class(char) != "keep":
            raise FakeMappingError(describe(char))
        self[cp] = char
        return char


_CLASSES = {"letter": (_LETTER_SOURCE, _LETTER_TARGET, _LETTER_CORE),
            "punctuation": (_PUNCT_SOURCE, _PUNCT_TARGET, _PUNCT_CORE),
            "ideograph": (_IDEOGRAPH_SOURCE, _IDEOGRAPH_TARGET, _IDEOGRAPH_CORE)}


@functools.cache
def _tables(number: int) -> tuple[_Forward, _Backward]:
    forward: dict[int, str] = {}
    backward = _Backward()
    fallback: dict[str, str] = {}
    for name, (source_ranges, target_ranges, core) in _CLASSES.items():
        targets = _points(target_ranges)
        fallback[name] = chr(targets.pop())  # the last target is the class's fallback, in every code
        backward[ord(fallback[name])] = REPLACEMENT
        shift = (number - 1) * core
        for index, cp in enumerate(_points(source_ranges)):
            if character_class(chr(cp)) != name:
                continue  # e.g. "!" inside Basic Latin belongs to punctuation; its slot stays unused
            target = targets[(index + shift) % len(targets)]
            forward[cp] = chr(target)
            backward[target] = chr(cp)
    return _Forward(forward, fallback), backward


def _decompose_hangul(text: str) -> str:
    return _HANGUL.sub(lambda m: unicodedata.normalize("NFD", m.group()), text)


def unmapped_characters(text: str) -> Counter:
    """Characters of `text` (after NFC) outside the tables: each would become its class's fallback."""
    text = _decompose_hangul(unicodedata.normalize("NFC", text))
    forward, _ = _tables(1)  # every number maps the same source characters
    missing = [c for c in set(text) if ord(c) not in forward.mapped and character_class(c) != "keep"]
    return Counter({c: text.count(c) for c in missing})


@functools.cache
def _fake_points() -> frozenset[int]:
    return frozenset(_points(_LETTER_TARGET) + _points(_PUNCT_TARGET))


def is_fake_character(char: str) -> bool:
    """A letter or punctuation mark of the fake scripts (their CJK ideographs are real, rare Han ones)."""
    return ord(char) in _fake_points()


def fallback_characters() -> set[str]:
    """The fallback character of each class (the same for every fake number)."""
    forward, _ = _tables(1)
    return set(forward.fallback.values())


def describe(char: str) -> str:
    return f"{char!r} U+{ord(char):04X} {unicodedata.name(char, 'unnamed')}"


def fake_text(text: str, code: str, *, strict: bool = False) -> str:
    """The fake copy of `text` for the fake language `code` (see the module docstring).

    The text is NFC-normalised first (the form every mbert tokenizer sees). A character outside the
    tables becomes its class's fallback character, or, with `strict`, raises FakeMappingError."""
    forward, _ = _tables(_require(code).number)
    text = _decompose_hangul(unicodedata.normalize("NFC", text))
    if strict:
        missing = unmapped_characters(text)
        if missing:
            shown = ", ".join(describe(c) for c, _ in missing.most_common(5))
            raise FakeMappingError(f"{len(missing)} character(s) have no {code} counterpart: {shown}; "
                                   f"remove them or drop strict to map them to a fallback character")
    return text.translate(forward)


def real_text(text: str, code: str) -> str:
    """Invert `fake_text`: the NFC text the fake copy was made from (fallback characters give U+FFFD)."""
    _, backward = _tables(_require(code).number)
    try:
        return unicodedata.normalize("NFC", text.translate(backward))
    except FakeMappingError as exc:
        raise FakeMappingError(f"{exc} is not a character of {code}; real_text inverts only text that "
                               f"fake_text made with the same code") from None
