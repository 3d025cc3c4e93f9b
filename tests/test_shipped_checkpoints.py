"""The trained checkpoints that ship in git load strictly and behave as trained models should."""

import json
from pathlib import Path

import pytest
import torch

from hw3core import SentimentClassifier, ShakespeareWriter
from hw3core.checkpoints import WEIGHTS_FILE, load_local
from hw3core.event_files import read_scalars
from hw3core.records import read_run
from hw3core.registry import MODELS, models_of
from training import event_log

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


# Speakers of the plays, none the start of another's name (QUEEN is also QUEEN ELIZABETH's start).
SPEAKERS = ["ROMEO", "JULIET", "MENENIUS", "ISABELLA", "DUKE VINCENTIO", "LEONTES", "Provost", "KING HENRY VI"]


@pytest.mark.parametrize("name", WRITERS)
def test_a_speakers_name_as_the_prime_starts_a_speech(name):
    """Read from a zero state, the LSTM wrote 'JULIETH3Zx...' (p(':') was 0.06); read as a speech's start, a colon."""
    writer = load_local(ShakespeareWriter, CHECKPOINTS / name)
    for speaker in SPEAKERS:
        assert ["".join(writer.generate(speaker, 1, 0.8, seed)) for seed in range(5)] == [":"] * 5, speaker


@pytest.mark.parametrize("name", list(MODELS))
def test_each_shipped_record_was_trained_by_its_recipe(name):
    """The command a user is told (the recipe's defaults, with no other flags) trains what ships."""
    spec = MODELS[name]
    arguments = json.loads((CHECKPOINTS / name / "training.json").read_text())["arguments"]
    expected = {**spec.recipe, **(spec.refit or {})}
    assert {key: arguments.get(key) for key in expected} == expected


@pytest.mark.parametrize("name", list(models_of("domain")))
def test_each_shipped_alexnet_was_compressed_with_its_defaults(name):
    conv_density = MODELS[name].compression.get("conv_density", 0.5)
    layers = json.loads((CHECKPOINTS / name / "compression.json").read_text())["layers"]
    pruned_convolutions = [layer for layer in layers if layer["name"].startswith("conv") and layer["density"] < 1]
    assert pruned_convolutions
    assert all(layer["density"] == pytest.approx(conv_density, abs=0.01) for layer in pruned_convolutions)


@pytest.mark.parametrize("name", MODELS)
def test_each_shipped_checkpoint_has_its_record_as_tensorboard_curves(name):
    """`tensorboard --logdir checkpoints` shows every shipped run: its event file holds metrics.jsonl, epoch by
    epoch (made by python -m training.event_log), and a refit's selection run is in its own folder."""
    folder = CHECKPOINTS / name
    record = read_run(folder)
    files = list(folder.rglob("*tfevents*"))
    assert files and all(file.stat().st_size < 100_000 for file in files)
    curves = read_scalars(folder)
    for key, tag in event_log.EPOCH_TAGS.items():
        rows = [row for row in record.history if getattr(row, key) is not None]
        assert [point for point in curves[tag].points] == [(row.epoch, pytest.approx(getattr(row, key), rel=1e-6))
                                                           for row in rows] if rows else tag not in curves
    if record.selection_run:
        selection = curves[f"{event_log.SELECTION_RUN}/loss/validation"].points
        assert [value for _, value in selection] == pytest.approx([row.val_loss for row in record.selection_run.history])
