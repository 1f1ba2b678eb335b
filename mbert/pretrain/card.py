"""The model card (README.md) written next to the saved model."""

from __future__ import annotations

from .settings import PretrainSettings


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def model_card(*, settings: PretrainSettings, config, corpus_manifest: dict, store_info: dict,
               result: dict) -> str:
    objectives = [f"MLM ({settings.mask_prob:.0%} of tokens, 80/10/10"
                  + (", whole-word masking)" if settings.whole_word_masking else ")")]
    if settings.nsp:
        objectives.append("NSP (next-sentence prediction)")
    if settings.tlm:
        pairs = ", ".join(f"{p.src_lang}-{p.tgt_lang}" for p in settings.tlm)
        objectives.append(f"TLM on {pairs} ({settings.tlm_ratio:.0%} of steps)")
    if settings.language_embeddings:
        objectives.append("language embeddings in token_type_ids (`config.pretraining_languages`)")
    lines = [
        "---", "library_name: transformers", "pipeline_tag: fill-mask", "tags: [bert, multilingual, mbert]",
        "---", "", "# Multilingual BERT pretrained with mbert", "",
        "Load it with `AutoModelForMaskedLM.from_pretrained(path)` or `BertModel.from_pretrained(path)`;",
        "`pipeline(\"fill-mask\", model=path)` works as is.", "",
        "## Architecture", "",
        f"- shape (preset `{settings.model}`, overridable): {config.num_hidden_layers} layers, hidden {config.hidden_size}, "
        f"{config.num_attention_heads} heads, feed-forward {config.intermediate_size}",
        f"- vocabulary {config.vocab_size} entries, max positions {config.max_position_embeddings}, "
        f"token types {config.type_vocab_size}",
        "", "## Objectives", "", *[f"- {o}" for o in objectives], "",
        "## Training", "",
        f"- steps: {result['steps']}, batch {settings.batch_size} x sequence {settings.max_seq_length}, "
        f"learning rate {settings.learning_rate} (warm-up {settings.warmup} steps, then linear decay)",
        f"- tokens seen: {result['tokens_seen']:,}; padding share of instances: "
        f"{result['padding_share']:.1%}",
        f"- final training loss: {_fmt(result.get('final_loss'))}, MLM accuracy "
        f"{_fmt(result.get('final_mlm_accuracy'))}",
    ]
    heldout = result.get("heldout_loss") or {}
    if heldout:
        lines += ["", "Held-out MLM loss per language (documents never trained on):", "",
                  "| language | loss |", "|---|---|"]
        lines += [f"| {lang} | {loss:.4f} |" for lang, loss in sorted(heldout.items())]
    lines += ["", "## Corpus", "",
              f"- {store_info['n_documents']:,} documents, {store_info['n_sentences']:,} sentences, "
              f"{store_info['n_tokens']:,} tokens; [UNK] share {store_info['unk_share']:.2%}"]
    languages = corpus_manifest.get("languages") or {}
    if isinstance(languages, dict) and languages:
        if "smoothing" in corpus_manifest:
            lines.append(f"- language sampling: q_L ∝ p_L^S with S = {corpus_manifest['smoothing']}")
        lines += ["", "| language | q_L | tokens in store |", "|---|---|---|"]
        tokens = store_info.get("tokens_per_language", {})
        for lang, entry in sorted(languages.items()):
            q = entry.get("q") if isinstance(entry, dict) else None
            lines.append(f"| {lang} | {_fmt(q) if q is not None else '-'} | {tokens.get(lang, 0):,} |")
    else:
        lines += ["", "| language | tokens in store |", "|---|---|"]
        lines += [f"| {lang} | {n:,} |" for lang, n in sorted(store_info.get("tokens_per_language", {}).items())]
    return "\n".join(lines) + "\n"
