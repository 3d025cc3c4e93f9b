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


def words_read(n_words: int, max_length: int, tail_length: int = 0) -> list[int]:
    """The positions of the words a review of ``n_words`` is read as, in order: all of them if they fit
    between BEGIN and END (``max_length - 2``), else the first ones and then the last ``tail_length``.
    Many IMDB reviews run past 198 words, and a review's verdict is often in its closing lines."""
    if max_length < MIN_LENGTH:
        raise ValueError(f"max_length must be at least {MIN_LENGTH} (BEGIN and END), not {max_length}")
    window = max_length - MIN_LENGTH
    if not 0 <= tail_length <= window:
        raise ValueError(f"tail_length must be from 0 to {window} (the words max_length leaves room for), "
                         f"not {tail_length}")
    if n_words <= window:
        return list(range(n_words))
    return [*range(window - tail_length), *range(n_words - tail_length, n_words)]


def encode_review(text: str, word_ids: dict[str, int], max_length: int, tail_length: int = 0) -> list[int]:
    """BEGIN, the words read (``words_read``; unknown ones as OOV), END: at most ``max_length`` ids."""
    tokens = tokenize(text)
    oov = word_ids[OOV]
    words = [word_ids.get(tokens[i], oov) for i in words_read(len(tokens), max_length, tail_length)]
    return [word_ids[BEGIN], *words, word_ids[END]]


def pad_reviews(encoded: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Encoded reviews as one (N, longest) batch padded with PAD, and their lengths (N,)."""
    lengths = torch.tensor([len(ids) for ids in encoded])
    batch = torch.zeros(len(encoded), int(lengths.max()), dtype=torch.long)  # PAD is id 0
    for row, ids in enumerate(encoded):
        batch[row, : len(ids)] = torch.tensor(ids)
    return batch, lengths
