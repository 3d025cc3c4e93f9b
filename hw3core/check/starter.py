"""A sentiment classifier trained with the starter code, read as the starter reads a review.

The starter's ``IMDBReviewDataset`` puts the special tokens first (PAD, BEGIN, OOV, END: ids 0 to 3),
then the words; a review is ``review.split(' ')[:200]``, with BEGIN before and END after and an
unknown word as OOV, and the classifier reads the state after the last token. Its vocabulary and
splitting differ from this project's (``hw3core.text``), so a student's classifier keeps its own.
"""

import torch
from torch import Tensor

from hw3core.rnn_cells import CELLS
from hw3core.text import pad_reviews
from hw3core.text_models import SentimentClassification

PAD_ID, BEGIN_ID, OOV_ID, END_ID = range(4)
STARTER_MAX_WORDS = 200


def starter_encode(review: str, word_ids: dict[str, int]) -> list[int]:
    """BEGIN, the first 200 words split at single spaces (unknown ones as OOV), END."""
    return [BEGIN_ID, *(word_ids.get(word, OOV_ID) for word in review.split(" ")[:STARTER_MAX_WORDS]), END_ID]


class StarterSentiment(SentimentClassification):
    """Our SentimentClassification (our cells, the student's weights) with the starter's vocabulary and tokenizer."""

    LABELS = ("negative", "positive")

    def __init__(self, vocabulary: list[str], cell: str, embedding_dim: int, hidden_size: int, bias: bool):
        super().__init__(len(vocabulary), embedding_dim, CELLS[cell], hidden_size, bias)
        self.vocabulary = vocabulary
        self.word_ids = {word: i for i, word in enumerate(vocabulary)}

    def encode(self, text: str) -> list[int]:
        return starter_encode(text, self.word_ids)

    @torch.inference_mode()
    def predict(self, texts: list[str]) -> Tensor:
        """Probabilities (N, 2) of negative and positive, for raw review texts."""
        batch, lengths = pad_reviews([self.encode(text) for text in texts])
        return torch.softmax(self(batch, lengths), dim=-1)
