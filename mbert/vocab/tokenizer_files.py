"""Writing a trained tokenizer as an ordinary `transformers` tokenizer folder.

`tokenizer.json` holds the whole pipeline and `tokenizer_config.json` names the generic
`PreTrainedTokenizerFast` class, so `AutoTokenizer.from_pretrained` loads the pipeline exactly as
trained (a model-specific class such as BertTokenizer would rebuild its own normaliser).
WordPiece folders also get `vocab.txt` and `do_lower_case`, which the slow `BertTokenizer` reads;
SentencePiece folders keep the original `sentencepiece.model` too."""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer

from ..atomic import atomic_write_json, atomic_write_text
from .special import CLS, MASK, PAD, SEP, UNK
from .wordpiece import vocab_lines

MODEL_MAX_LENGTH = 512  # BERT's position embeddings
MODEL_INPUT_NAMES = ["input_ids", "token_type_ids", "attention_mask"]


def save_tokenizer_folder(tokenizer: Tokenizer, out_dir: Path, *, kind: str, uncased: bool) -> None:
    from transformers import PreTrainedTokenizerFast  # slow import: only when saving

    out_dir = Path(out_dir)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token=UNK, pad_token=PAD, cls_token=CLS,
                                   sep_token=SEP, mask_token=MASK, model_max_length=MODEL_MAX_LENGTH)
    fast.save_pretrained(str(out_dir))
    config_path = out_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"  # known to transformers 4.x and 5.x alike
    config["model_input_names"] = MODEL_INPUT_NAMES  # BERT takes segment ids; the generic class would drop them
    if kind == "wordpiece":
        # read by the slow BertTokenizer from vocab.txt (its default would be lower-casing)
        config.update(do_lower_case=uncased, strip_accents=None, tokenize_chinese_chars=True)
        atomic_write_text(out_dir / "vocab.txt", "".join(f"{t}\n" for t in vocab_lines(tokenizer)))
    atomic_write_json(config_path, config)
