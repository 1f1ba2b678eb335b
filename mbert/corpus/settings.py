"""Settings of the corpus stage (`[corpus]` and `[sample]` in a recipe)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..config import setting
from ..errors import ConfigError
from .languages import Language, language


@dataclass
class DeclaredLanguage:
    """A language beyond the registry's 104 (`[corpus.languages.<code>]`), e.g. Faroese or Uyghur."""

    name: str = setting(help="language name, e.g. Faroese")
    script: str = setting(help="ISO 15924 script code of its text, e.g. Latn, Arab, Cyrl")
    wiki: str = setting("", help="Wikipedia code (dumps are <wiki>wiki-*.xml.bz2); empty = the language code")


@dataclass
class CorpusSettings:
    # language code -> dump / parquet / text files (globs allowed); the languages to build
    sources: dict[str, list[str]] = setting({}, path="input", help="language code -> source files (globs allowed)")
    min_sentence_chars: int = setting(2, min=1, help="drop shorter sentences")
    max_sentence_chars: int = setting(2000, min=1, help="drop longer sentences")
    min_document_sentences: int = setting(1, min=1, help="drop documents with fewer sentences")
    workers: int = setting(0, min=0, max=1024, runtime=True, help="worker processes; 0 = one per CPU core")
    force: bool = setting(False, runtime=True, help="redo languages that are already complete")
    check_script: bool = setting(True, runtime=True,
                                 help="refuse plain text whose letters are mostly not in the language's "
                                      "scripts (corpora/languages.toml)")
    chunk_mb: float = setting(16.0, min=0.0, min_exclusive=True, runtime=True,
                              help="compressed MB of a multistream dump / Parquet file per work unit")
    shard_mb: float = setting(256.0, min=0.0, min_exclusive=True, help="text MB per output part file")
    fake: list[str] = setting([], help="fake languages to make from extracted ones (mbert.fake), e.g. "
                                       "[\"en-fake\"]: DIR/en-fake is DIR/en in a script no language uses")
    fake_word_order: Literal["same", "shuffled"] = setting(
        "same", flag="word-order",
        help="shuffled: permute the words of each fake sentence (K et al. 2020's ablation)")
    languages: dict[str, DeclaredLanguage] = setting(
        {}, help="languages beyond the 104 of mBERT: code -> {name, script, wiki}; they take precedence "
                 "over the registry's entry of the same code")

    def validate(self) -> None:
        if self.min_sentence_chars > self.max_sentence_chars:
            raise ConfigError(f"corpus.min_sentence_chars = {self.min_sentence_chars} is above "
                              f"corpus.max_sentence_chars = {self.max_sentence_chars}; lower it")
        for code, declared in self.languages.items():
            if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]+)*", code):
                raise ConfigError(f"corpus.languages.{code} is not a language code; use lower-case ISO 639 "
                                  f"codes such as fo or ug (a suffix like -latn is allowed)")
            if not re.fullmatch(r"[A-Z][a-z]{3}", declared.script):
                raise ConfigError(f"corpus.languages.{code}.script = {declared.script!r} is not an ISO 15924 "
                                  f"code; use four letters such as Latn, Arab, Cyrl or Hans")
        declared = self.declared_languages()
        for code in self.fake:
            if language(code, declared).fake_of is None:
                raise ConfigError(f"corpus.fake lists {code!r}, which is not a fake language code; "
                                  f"write <base>-fake or <base>-fakeN, e.g. en-fake")
        for code in self.sources:
            if language(code, declared).fake_of is not None:
                raise ConfigError(f"corpus.sources lists the fake language {code!r}; list it in "
                                  f"corpus.fake = [{code!r}] instead (it is made from "
                                  f"{language(code, declared).fake_of}'s clean text)")

    def declared_languages(self) -> dict[str, Language]:
        return {code: Language(code=code, name=d.name, wiki=d.wiki or code, script=d.script, cased_only=False)
                for code, d in self.languages.items()}


@dataclass
class SampleSettings:
    smoothing: float = setting(0.7, min=0.0, min_exclusive=True, max=1.0,
                               help="exponent S in q_L ∝ p_L^S (mBERT 0.7, XLM 0.3-0.5)")
    unit: Literal["characters", "tokens"] = setting("characters", help="what p_L counts")
    target_size: int | None = setting(None, min=1, help="mixture size in `unit`; unset = the clean corpus size")
    max_repeats: float = setting(100.0, min=1.0, help="cap on how often a small language is repeated")
    seed: int = setting(0, help="sampling and shuffling seed")
    pseudo_document_sentences: int = setting(
        32, min=1, max=1_000_000,
        help="sentences per pseudo-document: a language that whole documents cannot bring within 10 % of its "
             "target (text without document boundaries) is sampled in blocks of this many consecutive sentences")
    languages: list[str] = setting([], help="sample only these languages of the clean corpus; empty = all")
    fake_parallel: bool = setting(True, help="a fake language takes the same documents as its base language "
                                             "(a parallel corpus, Dufter & Schütze's standard setup); false "
                                             "samples it on its own (their 'no parallel data' ablation)")
    shard_mb: float = setting(256.0, min=0.0, min_exclusive=True, help="text MB per output part file")
