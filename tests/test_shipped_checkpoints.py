"""The trained checkpoints that ship in git load strictly and behave as trained models should."""

from pathlib import Path

import pytest
import torch

from hw3core import SentimentClassifier, ShakespeareWriter
from hw3core.checkpoints import WEIGHTS_FILE, load_local

CHECKPOINTS = Path(__file__).parents[1] / "checkpoints"
SENTIMENT = ["sentiment-gru", "sentiment-lstm"]
WRITERS = ["shakespeare-gru", "shakespeare-lstm"]
POSITIVE = "One of the best films I have ever seen. Brilliant acting, a wonderful story, and a beautiful score. I loved it."
NEGATIVE = "The worst movie I have ever seen. Terrible acting, a boring plot and awful dialogue. A complete waste of time."


@pytest.mark.parametrize("name", SENTIMENT + WRITERS)
def test_shipped_checkpoints_are_small(name):
    assert (CHECKPOINTS / name / WEIGHTS_FILE).stat().st_size < 15 * 2**20


@pytest.mark.parametrize("name", SENTIMENT)
def test_sentiment_checkpoint_knows_a_clear_review(name):
    model = load_local(SentimentClassifier, CHECKPOINTS / name)
    assert model.rnn.__class__.__name__.lower().startswith(name.split("-")[1])
    negative, positive = model.predict([NEGATIVE, POSITIVE])
    assert positive[1] > 0.9 and negative[0] > 0.9


@pytest.mark.parametrize("name", WRITERS)
def test_writer_checkpoint_writes_from_its_vocabulary_deterministically(name):
    writer = load_local(ShakespeareWriter, CHECKPOINTS / name)
    first = "".join(writer.generate("ROMEO", 200, seed=1234))
    assert len(first) == 200 and set(first) <= set(writer.characters)
    assert "".join(writer.generate("ROMEO", 200, seed=1234)) == first
    assert "".join(writer.generate("ROMEO", 200, seed=4321)) != first


@pytest.mark.parametrize("name", WRITERS)
def test_writer_checkpoint_predicts_shakespeare_better_than_chance(name):
    """A trained writer is confident about the obvious: after 'ROMEO' and a colon comes a newline."""
    writer = load_local(ShakespeareWriter, CHECKPOINTS / name)
    with torch.no_grad():
        logits, _ = writer(torch.tensor([writer.encode("ROMEO:")]))
    assert writer.characters[int(logits.argmax())] == "\n"
