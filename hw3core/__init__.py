"""The models of CS 1678/2078 Homework 3 (``alexnet``: Parts A and B; ``rnn_cells``, ``text_models``: Parts C and D),
and the check of a student's model against the assignment (the package ``hw3core.check``)."""

from hw3core.alexnet import DOMAINS, AlexNet, AlexNetAvgPooling, AlexNetLargeKernel
from hw3core.check import check_model
from hw3core.curves import compare_curves  # TensorBoard's reader and matplotlib load when a log is compared
from hw3core.registry import ALEXNET_VARIANTS, MODELS, ModelSpec
from hw3core.rnn_cells import CELLS, GRUCell, LSTMCell
from hw3core.text_models import (
    SentenceGeneration,
    SentimentClassification,
    SentimentClassifier,
    ShakespeareWriter,
    sample_next_char_id,
)

__all__ = [
    "ALEXNET_VARIANTS",
    "CELLS",
    "DOMAINS",
    "AlexNet",
    "AlexNetAvgPooling",
    "AlexNetLargeKernel",
    "GRUCell",
    "LSTMCell",
    "MODELS",
    "ModelSpec",
    "SentenceGeneration",
    "SentimentClassification",
    "SentimentClassifier",
    "ShakespeareWriter",
    "check_model",
    "compare_curves",
    "sample_next_char_id",
]

