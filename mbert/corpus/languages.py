"""The mBERT language registry (`corpora/languages.toml`): code -> name, Wikipedia code, script.

A fake copy of a registry language (`en-fake`, see `mbert.fake`) resolves like any other code."""

from __future__ import annotations

import difflib
import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, UserError
from ..fake import parse_fake_code

# Country codes people type for a language code.
_COUNTRY_CODES = {"jp": "ja", "gr": "el", "cn": "zh", "tw": "zh-hant", "dk": "da", "se": "sv", "ua": "uk",
                  "kr": "ko", "cz": "cs", "ee": "et", "ir": "fa", "il": "he", "in": "hi", "vn": "vi",
                  "br": "pt", "rs": "sr", "si": "sl", "al": "sq", "by": "be", "gb": "en", "us": "en"}

REGISTRY = Path(__file__).resolve().parents[1] / "data" / "languages.toml"  # corpora/languages.toml, as package data


@dataclass(frozen=True)
class Language:
    code: str          # registry key, used for output folders and manifests
    name: str
    wiki: str          # Wikipedia code: the dump is <wiki>wiki-*.xml.bz2
    script: str        # ISO 15924
    cased_only: bool   # only in the "Multilingual Cased (New)" release
    other_scripts: tuple[str, ...] = ()  # also commonly written in these (ISO 15924)
    fake_of: str | None = None  # a fake language (mbert.fake): the code of the language it copies


@functools.cache
def registry() -> dict[str, Language]:
    if not REGISTRY.is_file():
        raise UserError(f"language registry {REGISTRY} is missing; reinstall mbert from its repository")
    data = tomllib.loads(REGISTRY.read_text(encoding="utf-8"))["languages"]
    return {code: Language(code=code, name=row["name"], wiki=row["wiki"], script=row["script"],
                           cased_only=bool(row.get("cased_only", False)),
                           other_scripts=tuple(row.get("other_scripts", ())))
            for code, row in data.items()}


def closest_codes(code: str, n: int = 3) -> list[str]:
    """Registry codes that look like `code`: by language name (`english`), by prefix (`eng`), by spelling."""
    langs = registry()
    wanted = code.lower().strip()
    names = {lang.name.lower(): c for c, lang in langs.items()}
    by_country = [_COUNTRY_CODES[wanted]] if wanted in _COUNTRY_CODES else []
    by_name = [names[name] for name in difflib.get_close_matches(wanted, list(names), n=n, cutoff=0.6)]
    by_prefix = [c for c in langs if len(c) >= 2 and wanted.startswith(c)]
    by_prefix += [c for c, lang in langs.items() if len(wanted) >= 3 and lang.name.lower().startswith(wanted)]
    by_code = difflib.get_close_matches(wanted, list(langs), n=n, cutoff=0.5)
    return list(dict.fromkeys(by_country + by_name + by_prefix + by_code))[:n]


def language(code: str, declared: dict[str, Language] | None = None) -> Language:
    """The entry for `code`: one `declared` in a recipe (`[corpus.languages]`) or the registry's;
    otherwise a ConfigError suggesting the closest valid codes."""
    if declared and code in declared:
        return declared[code]
    langs = registry()
    if code in langs:
        return langs[code]
    fake = parse_fake_code(code)
    if fake is not None:  # `en-fake`, `en-fake2`: the base's text in a fake script (see mbert.fake)
        try:
            base = language(fake.base)
        except ConfigError as exc:
            raise ConfigError(f"fake language {code!r} copies an unknown language: {exc}") from None
        name = f"Fake {base.name}" + (f" {fake.number}" if fake.number > 1 else "")
        return Language(code=code, name=name, wiki="", script=fake.script, cased_only=base.cased_only,
                        fake_of=base.code)
    close = closest_codes(code)
    hint = ("did you mean " + " or ".join(f"{c!r} ({langs[c].name})" for c in close) + "? ") if close else ""
    raise ConfigError(f"unknown language code {code!r}; {hint}valid codes are the 104 mBERT languages "
                      f"listed in {REGISTRY}, their fake copies (<code>-fake, <code>-fakeN), and those a "
                      f"recipe declares in [corpus.languages] ({code} = {{name = \"...\", script = \"Latn\"}})")
