"""A word-level tokenizer that needs no download, saved in transformers' format.

The embedded prior's captions come from a closed vocabulary ("a red circle moving right on a gray
background"), so a word-level vocabulary is exact; it loads with ``AutoTokenizer.from_pretrained``
like any hub tokenizer.
"""

from __future__ import annotations

from typing import Iterable

SPECIAL = ("<pad>", "<unk>", "<bos>", "<eos>")


def build_word_tokenizer(words: Iterable[str], max_length: int = 16):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIAL)}
    for w in sorted({w.lower() for w in words}):
        vocab.setdefault(w, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    core.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", vocab["<bos>"]), ("<eos>", vocab["<eos>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=max_length,
    )


def text_tower_config(tokenizer, hidden_size: int, layers: int, heads: int,
                      intermediate_size: int | None = None) -> dict:
    """``CLIPTextConfig`` fields of a text encoder over `tokenizer`: its vocabulary, one position per
    token it emits, and its special ids (CLIP's text tower pools at the first <eos>)."""
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=tokenizer.model_max_length,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
