"""Turning review text into token ids: one tokenizer for training, evaluation and the app."""

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

PAD, BEGIN, OOV, END = "<pad>", "<begin>", "<oov>", "<end>"
SPECIAL_TOKENS = [PAD, BEGIN, OOV, END]  # ids 0..3, PAD first so zero-padding is PAD

_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lower-cased words and punctuation marks; the HTML line breaks of IMDB become spaces."""
    return _TOKEN.findall(_BREAK.sub(" ", text).lower())


def build_vocabulary(texts: Iterable[str], min_count: int = 100, max_size: int = 20_000) -> list[str]:
    """The special tokens, then words seen at least ``min_count`` times, most frequent first."""
    counts = Counter(token for text in texts for token in tokenize(text))
    frequent = [word for word, count in counts.most_common(max_size - len(SPECIAL_TOKENS)) if count >= min_count]
    return SPECIAL_TOKENS + frequent


MIN_LENGTH = 2  # BEGIN and END; each id more is a word


def encode_review(text: str, word_ids: dict[str, int], max_length: int) -> list[int]:
    """BEGIN, the first words (unknown ones as OOV), END: at most ``max_length`` ids (2 or more)."""
    if max_length < MIN_LENGTH:
        raise ValueError(f"max_length must be at least {MIN_LENGTH} (BEGIN and END), not {max_length}")
    oov = word_ids[OOV]
    words = [word_ids.get(token, oov) for token in tokenize(text)[: max_length - 2]]
    return [word_ids[BEGIN], *words, word_ids[END]]


def pad_reviews(encoded: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Encoded reviews as one (N, longest) batch padded with PAD, and their lengths (N,)."""
    lengths = torch.tensor([len(ids) for ids in encoded])
    batch = torch.zeros(len(encoded), int(lengths.max()), dtype=torch.long)  # PAD is id 0
    for row, ids in enumerate(encoded):
        batch[row, : len(ids)] = torch.tensor(ids)
    return batch, lengths
