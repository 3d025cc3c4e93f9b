"""The training entry points, run as a user runs them, and the checkpoints they leave.

Every run writes into tmp_path. AlexNets have 58M parameters (a 233 MB checkpoint, a 700 MB
resume state), so one variant trains end to end and the other two take one step in-process.
"""

import argparse
import fnmatch
import importlib
import json
import math
import re
import shlex

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import DataLoader

from demos.model_store import ModelStore
from hw3core import ALEXNET_VARIANTS, CELLS
from hw3core.checkpoints import PLOT_FILES, load_local
from hw3core.event_files import read_scalars
from hw3core.records import RunRecord, read_run
from hw3core.registry import MODELS, spec_of
from tiny_data import (
    REPO,
    check_ok,
    last_json_line,
    make_imdb_csv,
    python_env,
    read_jsonl,
    run_module,
    tiny_reviews,
)
from training import evaluate, event_log, hub, loop, train_alexnet, train_sentiment, train_shakespeare
from training.data import collate_images, split_text
from training.distributed import Distributed
from training.loop import Task, run_epoch

pytest_plugins = ["tiny_data_fixtures"]  # tiny_pacs, tiny_imdb, tiny_text, real_data

METRIC_KEYS = {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Independent windows without dropout (the writers' recipe carries the state and drops out), unless a test asks.
CHAR_RNN_SMALL = ["--history", "20", "--embedding-dim", "8", "--hidden-size", "16", "--batch-size", "4",
                  "--no-carry-state", "--dropout", "0"]
SENTIMENT_SMALL = ["--val-size", "4", "--min-count", "1", "--embedding-dim", "8", "--hidden-size", "8",
                   "--max-length", "40", "--tail-length", "0", "--batch-size", "4"]


def check_checkpoint(out, name: str, epochs: int, module: str) -> list[dict]:
    """Everything a finished run leaves; returns its metrics."""
    config = json.loads((out / "config.json").read_text())
    assert isinstance(config, dict)
    weights = load_file(out / "model.safetensors")
    model = load_local(MODELS[name].cls, out)  # strict: every weight present, every shape right
    assert set(weights) == set(model.state_dict())

    metrics = read_jsonl(out / "metrics.jsonl")
    assert [row["epoch"] for row in metrics] == list(range(1, epochs + 1))
    for row in metrics:
        assert METRIC_KEYS <= set(row)
        assert all(math.isfinite(row[key]) for key in METRIC_KEYS)
        assert 0 <= row["train_accuracy"] <= 1 and 0 <= row["val_accuracy"] <= 1

    run = json.loads((out / "training.json").read_text())
    assert run["command"].startswith(f"python -m {module} ")
    assert f"--out {out}" in run["command"]
    assert run["task"] == name and isinstance(run["split"], dict)
    assert run["parameters"] == sum(p.numel() for p in model.parameters())

    for file in PLOT_FILES.values():
        assert (out / file).read_bytes().startswith(PNG_MAGIC)
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: hw3core" in card
    assert run["command"] in card
    assert f"| {epochs} | {metrics[-1]['train_loss']:.4f} |" in card  # the last epoch's row

    assert not list(out.glob("*.tmp")) and not (out / ".saving").exists()
    check_event_file(out, metrics)
    return metrics


def check_event_file(out, metrics: list[dict]) -> None:
    """TensorBoard's curves are the record's, epoch by epoch, and one loss and learning rate per optimizer step."""
    curves = read_scalars(out)
    for key, tag in event_log.EPOCH_TAGS.items():
        if metrics[0].get(key) is not None:
            assert curves[tag].points == [(row["epoch"], pytest.approx(row[key], rel=1e-6)) for row in metrics]
    steps = [step for step, _ in curves[event_log.STEP_LOSS_TAG].points]
    assert steps and steps == list(range(len(steps))) and len(steps) % len(metrics) == 0
    assert [step for step, _ in curves[event_log.STEP_RATE_TAG].points] == steps


def kept_row(out, metrics: list[dict]) -> dict:
    """The metrics of the epoch whose weights the checkpoint holds (``--keep best`` by default)."""
    kept = json.loads((out / "training.json").read_text())["kept_epoch"]
    return next(row for row in metrics if row["epoch"] == kept)


def evaluate_cli(task: str, out, data, *extra) -> dict:
    result = check_ok(run_module("training.evaluate", task, "--checkpoint", out, "--data", data, *extra))
    scores = last_json_line(result.stdout)
    assert {"accuracy", "loss", "n"} <= set(scores)
    assert 0 <= scores["accuracy"] <= 1 and math.isfinite(scores["loss"])
    return scores


def evaluate_in_process(capsys, *argv) -> dict:
    capsys.readouterr()
    evaluate.main([str(arg) for arg in argv])
    return last_json_line(capsys.readouterr().out)


# ----- Parts A and B: AlexNet -----


def test_alexnet_trains_saves_and_evaluates(tiny_pacs, tmp_path, capsys):
    out = tmp_path / "alexnet"
    check_ok(run_module("training.train_alexnet", "--variant", "alexnet", "--data", tiny_pacs, "--limit", 4,
                        "--epochs", 1, "--batch-size", 2, "--workers", 0, "--dropout", 0.3,
                        "--domain-weights", 1, 1, 2, 2, "--out", out))
    metrics = check_checkpoint(out, "alexnet", 1, "training.train_alexnet")
    # The rate is the model's own config, so the weights load back with it (and a compression keeps it).
    assert [m.p for m in load_local(MODELS["alexnet"].cls, out).modules() if isinstance(m, nn.Dropout)] == [0.3, 0.3]
    assert "with dropout (0.3) on" in (out / "README.md").read_text()
    split = json.loads((out / "training.json").read_text())["split"]
    assert split["total"] == 24 and split["train"] == split["val"] == len(split["val_files"]) == 4

    scores = evaluate_cli("domain", out, tiny_pacs)  # --split auto: the recorded validation files
    assert scores["split"] == "val" and scores["n"] == 4
    assert scores["loss"] == pytest.approx(kept_row(out, metrics)["val_loss"], rel=1e-4, abs=1e-4)
    assert scores["accuracy"] == pytest.approx(kept_row(out, metrics)["val_accuracy"])
    # The per-domain figures are the record's, and they add up: the confusion matrix holds every image once.
    assert scores["per_domain"] == pytest.approx(kept_row(out, metrics)["val_per_class"])
    assert scores["confusion"] == kept_row(out, metrics)["val_confusion"]
    assert sum(map(sum, scores["confusion"])) == scores["n"]
    assert scores["balanced_accuracy"] == pytest.approx(sum(scores["per_domain"].values()) / 4)

    everything = evaluate_in_process(capsys, "domain", "--checkpoint", out, "--data", tiny_pacs, "--split", "all")
    assert everything["split"] == "all" and everything["n"] == 24

    compressed = tmp_path / "alexnet-compressed"
    result = check_ok(run_module("training.compress", "--checkpoint", out, "--out", compressed, "--data", tiny_pacs,
                                 "--limit", 4, "--batch-size", 2))
    assert "compress: 100%" in result.stderr  # the progress bar
    record = json.loads((compressed / "compression.json").read_text())
    assert not (compressed / "model.safetensors").exists() and (compressed / "compressed.safetensors").is_file()
    assert "--data PACS_DIR" in record["command"] and str(tiny_pacs) not in json.dumps(record)
    layers = {layer["name"]: layer for layer in record["layers"]}
    assert layers["linear16.weight"]["density"] == pytest.approx(0.05, abs=1e-4) and layers["linear16.weight"]["bits"] == 4
    assert layers["conv1.weight"]["density"] == 1 and layers["conv4.weight"]["density"] == pytest.approx(0.5, abs=1e-4)
    assert record["compressed_bytes"] < 10 * 1024 * 1024
    rescored = evaluate_in_process(capsys, "domain", "--checkpoint", compressed, "--data", tiny_pacs)
    assert rescored["split"] == "val"
    assert rescored["loss"] == pytest.approx(record["validation"]["compressed"]["loss"], rel=1e-4, abs=1e-4)
    assert rescored["confusion"] == record["validation"]["compressed"]["confusion"]
    assert record["fine_tune"]["sampling"] == "balanced"  # as the run trained
    assert record["fine_tune"]["domain_weights"] == [1, 1, 2, 2]
    card = (compressed / "README.md").read_text()
    assert "## Compressed" in card
    # The card gives the shipped weights' figures per domain, rendered from the records training and compression wrote.
    scores = record["validation"]["compressed"]
    assert f"| compressed | {scores['accuracy']:.4f} | {scores['balanced_accuracy']:.4f} |" in card
    assert "Confusion matrix, compressed weights" in card
    assert f"| sketch | {' | '.join(map(str, scores['confusion'][3]))} |" in card
    for big in ("model.safetensors", "resume.pt"):  # ~1 GB: do not keep it in pytest's last three runs
        (out / big).unlink()


def alexnet_args(data, variant: str) -> argparse.Namespace:
    return argparse.Namespace(variant=variant, data=data, val_fraction=0.1, seed=0, limit=4,
                              label_smoothing=0.1, no_augment=False, crop_scale=0.5, sampling="balanced", dropout=0.25,
                              domain_weights=None)


@pytest.mark.parametrize("variant", sorted(set(ALEXNET_VARIANTS) - {"alexnet"}))
def test_other_alexnet_variants_build_and_take_a_step(tiny_pacs, variant):
    task = train_alexnet.build_task(alexnet_args(tiny_pacs, variant))
    assert type(task.model) is ALEXNET_VARIANTS[variant]
    assert [m.p for m in task.model.modules() if isinstance(m, nn.Dropout)] == [0.25, 0.25]  # --dropout
    assert task.name == variant and task.name in MODELS
    assert len(task.train_set) == len(task.val_set) == 4

    batch = next(iter(DataLoader(task.train_set, batch_size=2, collate_fn=task.collate)))
    batch.pop("skipped")
    with torch.random.fork_rng():  # the same dropout masks for the loss computed by hand below
        torch.manual_seed(0)
        loss, correct, count, tally = task.batch_metrics(task.model, batch)
        torch.manual_seed(0)
        by_hand = F.cross_entropy(task.model(batch["images"]), batch["labels"], label_smoothing=0.1)
    assert count == 2 and 0 <= int(correct) <= 2
    assert tally.shape == (4, 5) and tally[:, :4].sum() == 2  # a confusion matrix of the two images
    assert loss.shape == () and torch.isfinite(loss)
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-4)  # the training loss, with its label smoothing
    loss.backward()
    first_conv = next(m for m in task.model.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0


def test_alexnet_split_is_the_same_for_every_variant(tiny_pacs):
    splits = {variant: train_alexnet.build_task(alexnet_args(tiny_pacs, variant)).metadata["split"]
              for variant in ALEXNET_VARIANTS}
    assert splits["alexnet"] == splits["alexnet-avg-pooling"] == splits["alexnet-large-kernel"]


def test_an_all_corrupt_batch_does_not_turn_the_epoch_loss_into_nan():
    torch.manual_seed(0)
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4))
    good = [(torch.randn(3, 227, 227), label) for label in (0, 1)]
    dataset = [None, None, *good]  # the first batch of two is entirely unreadable images
    task = Task("t", model, dataset, dataset, collate_images, train_alexnet.batch_metrics)
    loader = DataLoader(dataset, batch_size=2, collate_fn=collate_images)
    scores = run_epoch(model, loader, task, Distributed(), amp=False)
    expected, *_ = train_alexnet.batch_metrics(model.eval(), collate_images(good))
    assert scores["n"] == 2 and scores["skipped"] == 2
    assert scores["loss"] == pytest.approx(expected.item())

    trained = run_epoch(model, loader, task, Distributed(), amp=False, optimizer=torch.optim.SGD(model.parameters(), 0.1))
    assert math.isfinite(trained["loss"]) and all(torch.isfinite(p).all() for p in model.parameters())


# ----- Part C: sentiment -----


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_sentiment_trains_saves_and_evaluates_its_validation_split(tiny_imdb, tmp_path, cell, capsys):
    out = tmp_path / f"sentiment-{cell}"
    check_ok(run_module("training.train_sentiment", "--cell", cell, "--data", tiny_imdb, "--epochs", 2,
                        *SENTIMENT_SMALL, "--out", out))
    metrics = check_checkpoint(out, f"sentiment-{cell}", 2, "training.train_sentiment")
    run = json.loads((out / "training.json").read_text())
    assert run["split"]["total"] == 24 and run["split"]["val"] == 4 and run["split"]["val_positive"] == 2
    assert json.loads((out / "config.json").read_text())["cell"] == cell

    # The training data, --split auto; the command line once, in-process for the other cell (same code, faster).
    if cell == "gru":
        scores = evaluate_cli("sentiment", out, tiny_imdb)
    else:
        scores = evaluate_in_process(capsys, "sentiment", "--checkpoint", out, "--data", tiny_imdb)
    assert scores["split"] == "val" and scores["n"] == 4
    assert scores["loss"] == pytest.approx(kept_row(out, metrics)["val_loss"], abs=1e-4)
    assert scores["accuracy"] == pytest.approx(kept_row(out, metrics)["val_accuracy"])

    everything = evaluate_in_process(capsys, "sentiment", "--checkpoint", out, "--data", tiny_imdb, "--split", "all")
    assert everything["n"] == 24 and everything["split"] == "all"
    other = make_imdb_csv(tmp_path / "other.csv", tiny_reviews(per_folder=2))  # other data: all of it
    assert evaluate_in_process(capsys, "sentiment", "--checkpoint", out, "--data", other)["n"] == 8


def test_sentiment_trains_from_a_csv_with_dropout(tmp_path):
    data = make_imdb_csv(tmp_path / "IMDB Dataset.csv", tiny_reviews())
    out = tmp_path / "out"
    history = train_sentiment.main(["--data", str(data), "--epochs", "1", "--dropout", "0.3", *SENTIMENT_SMALL,
                                    "--out", str(out)])
    assert len(history) == 1
    model = load_local(MODELS["sentiment-gru"].cls, out)
    assert model.vocabulary[:4] == ["<pad>", "<begin>", "<oov>", "<end>"]
    assert model.dropout.p == 0.3 and not model.training
    assert "with dropout (0.3) on" in (out / "README.md").read_text()


# ----- Part D: the Shakespeare writer -----


def test_shakespeare_trains_saves_and_evaluates(tiny_text, tmp_path):
    out = tmp_path / "shakespeare-gru"
    check_ok(run_module("training.train_shakespeare", "--data", tiny_text, "--limit", 8, "--epochs", 3, "--lr", "0.01",
                        *CHAR_RNN_SMALL, "--out", out))
    metrics = check_checkpoint(out, "shakespeare-gru", 3, "training.train_shakespeare")
    assert metrics[-1]["train_loss"] < metrics[0]["train_loss"]  # it learns something
    run = json.loads((out / "training.json").read_text())
    assert run["split"]["train_characters"] == run["split"]["val_characters"] == 8 * 20 + 1

    scores = evaluate_cli("shakespeare", out, tiny_text)  # --split auto: the held-out end of the text
    val_text = split_text(tiny_text.read_text(), 0.1)[1]
    assert scores["split"] == "val" and scores["n"] == len(val_text) - 1

    # Scoring in chunks with the state carried equals one pass over the whole text.
    model = load_local(MODELS["shakespeare-gru"].cls, out)
    ids = torch.tensor(model.encode(val_text))
    with torch.no_grad():
        logits, _ = model(ids[None, :-1], every_position=True)
    expected = torch.nn.functional.cross_entropy(logits[0], ids[1:])
    assert scores["loss"] == pytest.approx(expected.item(), abs=1e-4)
    chunked = evaluate.evaluate_shakespeare(
        argparse.Namespace(checkpoint=out, data=tiny_text, split="val"), RunRecord.from_json(run), chunk=7)
    assert chunked["loss"] == pytest.approx(expected.item(), abs=1e-4) and chunked["n"] == scores["n"]
    assert {"cold_start_loss", "speech_start_loss"} <= set(scores) and scores["speeches"] > 0


def test_a_speechs_opening_is_scored_from_a_zero_state_cold_and_after_a_blank_line(tiny_text):
    from hw3core import ShakespeareWriter

    text = tiny_text.read_text()
    torch.manual_seed(0)
    writer = ShakespeareWriter("".join(sorted(set(text))), embedding_dim=8, hidden_size=16).eval()
    openings = evaluate.speech_openings(text)
    assert openings and all(o == text.split("\n\n")[k + 1][:evaluate.SPEECH_OPENING] for k, o in enumerate(openings))
    expected = {}
    for key, before in (("cold_start_loss", ""), ("speech_start_loss", "\n\n")):
        losses = []  # one opening at a time, each from a zero state: its characters after the first
        for opening in openings:
            ids = torch.tensor(writer.encode(before + opening))
            with torch.no_grad():
                logits, _ = writer(ids[None, :-1], every_position=True)
            losses += F.cross_entropy(logits[0, len(before):], ids[len(before) + 1 :], reduction="none").tolist()
        expected[key] = sum(losses) / len(losses)
    scores = evaluate.speech_start_losses(writer, text, batch_size=7)  # batches of openings of unequal lengths
    assert scores["speeches"] == len(openings)
    assert scores["cold_start_loss"] == pytest.approx(expected["cold_start_loss"], abs=1e-5)
    assert scores["speech_start_loss"] == pytest.approx(expected["speech_start_loss"], abs=1e-5)


def test_shakespeare_limit_gives_exactly_limit_windows(tiny_text):
    args = argparse.Namespace(data=tiny_text, val_fraction=0.1, cell="lstm", embedding_dim=4, hidden_size=4,
                              history=10, clip_grad_norm=1.0, dropout=0.0, seed=0, limit=5)
    task = train_shakespeare.build_task(args)
    assert len(task.train_set) == len(task.val_set) == 5
    assert json.loads(json.dumps(task.metadata))["split"]["history"] == 10


def test_carried_state_scores_each_row_as_one_continuous_read(tiny_text):
    """Windows read with CarriedState score exactly what reading each stream whole would, and the
    state kept between windows holds no graph: gradients stop at a window's start."""
    args = argparse.Namespace(data=tiny_text, val_fraction=0.1, cell="lstm", embedding_dim=8, hidden_size=16,
                              history=10, clip_grad_norm=1.0, dropout=0.0, seed=0, limit=None, carry_state=True,
                              batch_size=4)
    task = train_shakespeare.build_task(args)
    assert task.ordered and isinstance(task.batch_metrics, train_shakespeare.CarriedState)
    loader = DataLoader(task.val_set, batch_size=4, collate_fn=task.collate)  # in order, as the loop reads it
    scores = run_epoch(task.model, loader, task, Distributed(), amp=False)
    assert all(not s.requires_grad and s.grad_fn is None for s in task.batch_metrics.state)

    rows = task.val_set.rows[:, : task.val_set.windows * 10 + 1]
    with torch.no_grad():
        logits, _ = task.model.eval()(rows[:, :-1], every_position=True)
    whole = torch.nn.functional.cross_entropy(logits.flatten(0, 1), rows[:, 1:].flatten())
    assert scores["n"] == rows[:, 1:].numel()
    assert scores["loss"] == pytest.approx(whole.item(), abs=1e-5)
    # a second pass starts again from zeros (window 0), so it scores the same
    assert run_epoch(task.model, loader, task, Distributed(), amp=False)["loss"] == pytest.approx(scores["loss"])


def test_shakespeare_refit_on_all_the_text_records_the_run_that_chose_it(tiny_text, tmp_path):
    selection, refit = tmp_path / "shakespeare-gru-selection", tmp_path / "shakespeare-gru"
    flags = [*CHAR_RNN_SMALL, "--carry-state", "--dropout", "0.1", "--epochs", 2, "--lr", "0.01"]
    check_ok(run_module("training.train_shakespeare", "--data", tiny_text, *flags, "--out", selection))
    chosen = read_jsonl(selection / "metrics.jsonl")
    assert all(0 < row["train_eval_loss"] < 10 for row in chosen)  # the model without dropout, each epoch

    refused = run_module("training.train_shakespeare", "--data", tiny_text, *flags, "--val-fraction", 0, "--out", refit)
    assert refused.returncode != 0 and "--keep last" in refused.stderr and "Traceback" not in refused.stderr
    check_ok(run_module("training.train_shakespeare", "--data", tiny_text, *flags, "--val-fraction", 0, "--keep", "last",
                        "--selection-run", selection, "--out", refit))
    run = json.loads((refit / "training.json").read_text())
    assert run["split"]["train_characters"] == len(tiny_text.read_text()) and run["split"]["val_characters"] == 0
    assert run["kept_epoch"] == 2
    recorded = run["selection_run"]
    assert recorded["command"] == json.loads((selection / "training.json").read_text())["command"]
    assert [row["val_loss"] for row in recorded["history"]] == [row["val_loss"] for row in chosen]
    rows = read_jsonl(refit / "metrics.jsonl")
    assert all(row["val_loss"] is None and row["train_eval_loss"] > 0 for row in rows)
    card = (refit / "README.md").read_text()
    assert "The run that chose the settings" in card and recorded["command"] in card
    assert f"| 2 | {rows[-1]['train_loss']:.4f} | {rows[-1]['train_eval_loss']:.4f} |" in card
    for file in PLOT_FILES.values():
        assert (refit / file).read_bytes().startswith(PNG_MAGIC)

    result = run_module("training.evaluate", "shakespeare", "--checkpoint", refit, "--data", tiny_text)
    assert result.returncode != 0 and "no part of it is held out" in result.stderr
    assert evaluate_cli("shakespeare", refit, tiny_text, "--split", "all")["n"] == len(tiny_text.read_text()) - 1


def test_new_weights_remove_what_compress_made_from_the_old(tiny_pacs, tmp_path, capsys):
    out = tmp_path / "alexnet"
    flags = [str(flag) for flag in ["--variant", "alexnet", "--data", tiny_pacs, "--limit", 4, "--epochs", 1,
                                    "--batch-size", 2, "--out", out]]
    train_alexnet.main(flags)
    # What training.compress writes beside the weights (stand-ins: only their names matter here).
    derived = [out / "compressed.safetensors", out / "compression.json"]
    for path in derived:
        path.write_text("{}")
    train_alexnet.main([*flags, "--resume"])  # nothing left to train: the weights, and what was made of them, stay
    assert all(path.is_file() for path in derived)
    capsys.readouterr()
    train_alexnet.main(flags)  # a fresh run: new weights
    assert not any(path.exists() for path in derived)
    assert "removed compressed.safetensors and compression.json" in capsys.readouterr().out
    assert (out / "model.safetensors").is_file() and read_run(out).compression is None


# ----- Bad input: a message and a non-zero exit, never a traceback -----


def test_bad_flag_from_the_command_line(tiny_text, tmp_path):
    result = run_module("training.train_shakespeare", "--data", tiny_text, "--epochs", 0, "--out", tmp_path / "out")
    assert result.returncode != 0
    assert "--epochs" in result.stderr and "positive" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def bad_run(capsys, main, argv) -> str:
    """main(argv) must exit non-zero (SystemExit, not any other exception); returns stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(arg) for arg in argv])
    assert exit_info.value.code not in (0, None)
    err = capsys.readouterr().err
    return err + (exit_info.value.code if isinstance(exit_info.value.code, str) else "")


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "-1"], "--batch-size"),
    (["--lr", "0"], "--lr"),
    (["--limit", "0"], "--limit"),
    (["--push-to-hub", "not a repo id"], "not a Hub repo id"),
    (["--push-to-hub", "../../etc"], "not a Hub repo id"),
    (["--cell", "transformer"], "invalid choice"),
    (["--dropout", "1"], "--dropout must be a rate"),
    (["--dropout", "-0.1"], "--dropout must be a rate"),
])
def test_bad_flags_are_refused_before_any_work(tiny_text, tmp_path, capsys, flags, message):
    err = bad_run(capsys, train_shakespeare.main, ["--data", tiny_text, "--out", tmp_path / "out", *flags])
    assert message in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("scale", ["0", "1.5", "half"])
def test_a_crop_scale_outside_zero_to_one_is_refused(tiny_pacs, tmp_path, capsys, scale):
    err = bad_run(capsys, train_alexnet.main, ["--data", tiny_pacs, "--crop-scale", scale, "--out", tmp_path / "a"])
    assert "--crop-scale" in err and not (tmp_path / "a").exists()


@pytest.mark.parametrize("main", [train_alexnet.main, train_sentiment.main])
def test_a_dropout_rate_outside_zero_to_one_is_refused(tiny_pacs, tmp_path, capsys, main):
    err = bad_run(capsys, main, ["--data", tiny_pacs, "--dropout", "1.5", "--out", tmp_path / "a"])
    assert "--dropout must be a rate in [0, 1)" in err and not (tmp_path / "a").exists()


@pytest.mark.parametrize("weights", [["1", "1", "0", "1"], ["1", "2"], ["1", "1", "1", "x"]])
def test_domain_weights_must_be_four_positive_numbers(tiny_pacs, tmp_path, capsys, weights):
    err = bad_run(capsys, train_alexnet.main, ["--data", tiny_pacs, "--domain-weights", *weights, "--out", tmp_path / "a"])
    assert "--domain-weights" in err and not (tmp_path / "a").exists()


def test_training_crops_cover_at_least_crop_scale_of_the_image(monkeypatch):
    from training import data
    seen = []
    monkeypatch.setattr(data.v2, "RandomResizedCrop", lambda size, scale, antialias: seen.append(scale))
    data.train_augmentation(0.8)
    assert seen == [(0.8, 1.0)]


def test_unreadable_data_is_a_message(tmp_path, capsys):
    missing = tmp_path / "missing.tar.gz"
    assert str(missing) in bad_run(capsys, train_sentiment.main, ["--data", missing, "--out", tmp_path / "a"])
    csv_file = tmp_path / "reviews.csv"
    csv_file.write_text("review,sentiment\nfine,positive\nmeh,neutral\n")
    assert "line 3" in bad_run(capsys, train_sentiment.main, ["--data", csv_file, "--out", tmp_path / "b"])
    assert "is not a file" in bad_run(capsys, train_shakespeare.main, ["--data", tmp_path, "--out", tmp_path / "c"])
    assert "not a PACS folder" in bad_run(capsys, train_alexnet.main, ["--data", tmp_path, "--out", tmp_path / "d"])
    assert not any((tmp_path / name).exists() for name in "abcd")


def test_evaluate_refuses_a_missing_checkpoint(tiny_text, tmp_path, capsys):
    err = bad_run(capsys, evaluate.main, ["shakespeare", "--checkpoint", tmp_path / "nothing", "--data", tiny_text])
    assert "nothing" in err and "missing" in err


def test_evaluate_names_a_damaged_training_record(tiny_text, tmp_path, capsys):
    (tmp_path / "training.json").write_text("{damaged")
    err = bad_run(capsys, evaluate.main, ["shakespeare", "--checkpoint", tmp_path, "--data", tiny_text])
    assert f"`{tmp_path / 'training.json'}` cannot be read" in err


def test_push_to_hub_offline_keeps_the_checkpoint(tiny_text, tmp_path):
    out = tmp_path / "shakespeare-gru"
    result = run_module("training.train_shakespeare", "--data", tiny_text, "--limit", 4, "--epochs", 1,
                        *CHAR_RNN_SMALL, "--out", out, "--push-to-hub", "someone/hw3-shakespeare",
                        env=python_env(HF_HUB_OFFLINE="1"))
    assert result.returncode == 1, "a failed push must be visible to a calling script"
    assert "not pushed to someone/hw3-shakespeare" in result.stderr
    assert "Traceback" not in result.stderr
    check_checkpoint(out, "shakespeare-gru", 1, "training.train_shakespeare")
    assert "--push-to-hub someone/hw3-shakespeare" in json.loads((out / "training.json").read_text())["command"]


def test_a_push_replaces_what_the_repo_held(tmp_path, monkeypatch):
    calls = []

    class RecordingApi:  # the Hub cannot be reached from the tests: record what would be sent
        def create_repo(self, repo_id, **kwargs):
            pass

        def upload_folder(self, **kwargs):
            calls.append(kwargs)

    monkeypatch.setattr(hub, "HfApi", RecordingApi)
    assert hub.push(tmp_path, "someone/hw3-alexnet")
    (sent,) = calls
    # A compressed file or record left on the Hub by an earlier push goes (the repo's .gitattributes never does).
    remote_leftovers = ["compressed.safetensors", "compression.json", "model.safetensors"]
    assert all(fnmatch.fnmatch(name, sent["delete_patterns"]) for name in remote_leftovers)
    assert fnmatch.fnmatch("resume.pt", sent["ignore_patterns"][0])  # the resume state is never sent


# ----- The command a user is told trains the model that ships -----

SCRIPTS = sorted({spec.script for spec in MODELS.values()})


@pytest.mark.parametrize("name", list(MODELS))
def test_help_prints_each_models_recipe_as_its_flags_defaults(name, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # one line per flag
    spec = MODELS[name]
    with pytest.raises(SystemExit):
        importlib.import_module(spec.script).main([*spec.choice, "--help"])
    shown, flag = {}, None
    for line in capsys.readouterr().out.splitlines():  # a flag's line, then its help's (the same line if it fits)
        flag = re.match(r" {2}(--[\w-]+)", line)[1] if re.match(r" {2}--", line) else flag
        if default := re.search(r"\(default: (.*)\)$", line):
            shown[flag] = default[1]
    assert {key: shown.get("--" + key.replace("_", "-")) for key in spec.recipe} == \
        {key: str(value) for key, value in spec.recipe.items()}


def test_a_models_key_is_the_registrys_lookup_by_task_and_cell():
    assert {(spec.task, spec.cell): spec_of(spec.task, spec.cell).name for spec in MODELS.values()} == \
        {(spec.task, spec.choice[1]): name for name, spec in MODELS.items()}
    with pytest.raises(KeyError, match="'rnn'"):
        spec_of("sentiment", "rnn")


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_flag_a_recipe_sets_has_no_default_of_its_own(script):
    parser = importlib.import_module(script).parser()
    recipe_flags = {key for spec in MODELS.values() if spec.script == script for key in spec.recipe}
    assert {key: parser.get_default(key) for key in recipe_flags} == dict.fromkeys(recipe_flags)


# What differs from the shipped run by design: where the data and the output lie, and how much is read.
NOT_THE_RECIPE = {"data", "out", "limit", "selection_run", "val_size"}
TINY_DATA_FLAGS = {"sentiment": ["--val-size", "4"]}  # 24 reviews cannot spare the 5,000 of the real split


def told_commands(name: str, root, data) -> list[tuple[str, list[str]]]:
    """The commands the app names for a missing checkpoint, as (module, flags), on ``data`` and --limit 4."""
    commands = []
    for command in ModelStore(root).training_command(name).split(" && "):
        program, dash_m, module, *flags = shlex.split(command)
        assert (program, dash_m) == ("python", "-m")
        flags[flags.index(MODELS[name].data[0]) + 1] = str(data)
        commands.append((module, [*flags, "--limit", "4", *TINY_DATA_FLAGS.get(MODELS[name].task, [])]))
    return commands


def finish_selection_run(folder) -> None:
    """What a finished choosing run leaves, for the refit to record."""
    folder.mkdir(parents=True)
    (folder / "training.json").write_text(json.dumps({"command": "python -m training.train_shakespeare", "kept_epoch": 1,
                                                      "split": {"val_fraction": 0.1}}))
    (folder / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "train_loss": 2.0, "val_loss": 2.1}) + "\n")


@pytest.mark.parametrize("name", list(MODELS))
def test_the_command_the_app_names_records_the_shipped_arguments(name, tiny_pacs, tiny_imdb, tiny_text, tmp_path,
                                                                 monkeypatch):
    data = {"domain": tiny_pacs, "sentiment": tiny_imdb, "shakespeare": tiny_text}[MODELS[name].task]
    trained = []
    monkeypatch.setattr(loop, "fit", lambda task, config: trained.append((task, config)))
    for module, flags in told_commands(name, tmp_path, data):
        importlib.import_module(module).main(flags)
        if "--selection-run" not in flags and MODELS[name].refit:
            finish_selection_run(trained[-1][1].out)
    task, config = trained[-1]
    assert task.name == name and type(task.model) is MODELS[name].cls and config.out == tmp_path / name
    shipped = json.loads((REPO / "checkpoints" / name / "training.json").read_text())["arguments"]
    # Flags added since the shipped run was made (AlexNet's --sampling, --crop-scale) have nothing to compare to.
    assert {key: config.arguments[key] for key in shipped.keys() - NOT_THE_RECIPE} == \
        {key: value for key, value in shipped.items() if key not in NOT_THE_RECIPE}


def test_the_named_sentiment_command_writes_the_shipped_arguments(tiny_imdb, tmp_path):
    [(module, flags)] = told_commands("sentiment-gru", tmp_path, tiny_imdb)
    check_ok(run_module(module, *flags))
    recorded = json.loads((tmp_path / "sentiment-gru" / "training.json").read_text())["arguments"]
    shipped = json.loads((REPO / "checkpoints" / "sentiment-gru" / "training.json").read_text())["arguments"]
    assert {key for key in shipped if recorded[key] != shipped[key]} == {"out", "limit", "val_size"}


# ----- The same smoke runs on the real data sets (HW3_DATA_DIR) -----

REAL_RUNS = {
    "alexnet": ("training.train_alexnet", "domain", "pacs", "--data",
                ["--limit", "4", "--batch-size", "2", "--workers", "0"]),
    "sentiment-gru": ("training.train_sentiment", "sentiment", "imdb/aclImdb_v1.tar.gz", "--data",
                      ["--limit", "16", "--min-count", "1", "--embedding-dim", "16", "--hidden-size", "16",
                       "--batch-size", "8"]),
    "shakespeare-gru": ("training.train_shakespeare", "shakespeare", "tinyshakespeare/input.txt", "--data",
                        ["--limit", "8", "--history", "50", "--embedding-dim", "16", "--hidden-size", "32",
                         "--batch-size", "4"]),
}


@pytest.mark.parametrize("name", REAL_RUNS)
def test_smoke_run_on_the_real_data(real_data, tmp_path, name):
    module, task, data, data_flag, flags = REAL_RUNS[name]
    out = tmp_path / name
    check_ok(run_module(module, data_flag, real_data / data, "--epochs", 1, *flags, "--out", out, timeout=600))
    metrics = check_checkpoint(out, name, 1, module)
    if task != "shakespeare":  # the writer would be scored on all 100k held-out characters: slow, tested above
        scores = evaluate_cli(task, out, real_data / data)
        assert scores["split"] == "val"
        assert scores["n"] == json.loads((out / "training.json").read_text())["split"]["val"]
        assert scores["loss"] == pytest.approx(kept_row(out, metrics)["val_loss"], rel=1e-4, abs=1e-4)
    for big in out.glob("*.safetensors"):
        big.unlink()
    (out / "resume.pt").unlink()


def test_keep_best_is_the_epoch_of_lowest_validation_loss_and_last_the_last():
    from training.loop import kept_epoch

    history = [{"epoch": 1, "val_loss": 0.5}, {"epoch": 2, "val_loss": 0.3}, {"epoch": 3, "val_loss": 0.4}]
    assert kept_epoch(history, "best") == 2 and kept_epoch(history, "last") == 3
    tie = [{"epoch": 1, "val_loss": 0.3}, {"epoch": 2, "val_loss": 0.3}]
    assert kept_epoch(tie, "best") == 2  # a tie keeps the later, longer-trained weights


def test_the_loss_plot_has_validation_loss_on_the_same_axes(tmp_path, monkeypatch):
    from training import plots

    drawn, subplots = [], plots.plt.subplots
    monkeypatch.setattr(plots.plt, "subplots", lambda *a, **k: drawn.append(subplots(*a, **k)) or drawn[-1])
    history = [{"epoch": 1, "train_loss": 0.9, "train_accuracy": 0.6, "val_loss": 0.7, "val_accuracy": 0.65},
               {"epoch": 2, "train_loss": 0.5, "train_accuracy": 0.8, "val_loss": 0.75, "val_accuracy": 0.7}]
    plots.draw(tmp_path, history, "alexnet", kept_epoch=1)
    loss_axes = drawn[0][1]
    lines = {line.get_label(): list(line.get_ydata()) for line in loss_axes.get_lines()}
    assert lines["training"] == [0.9, 0.5] and lines["validation"] == [0.7, 0.75]
    assert loss_axes.get_title() == "alexnet: loss: training and validation"
