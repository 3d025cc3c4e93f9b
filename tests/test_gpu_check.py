"""The GPU check's command: without a CUDA GPU it refuses at once, saying so; its table names every figure."""

import pytest
import torch

from training import gpu_check


def test_without_a_gpu_it_refuses_with_a_message_before_reading_anything(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(gpu_check, "short_trainings", lambda *args: pytest.fail("started training"))
    with pytest.raises(SystemExit) as stopped:
        gpu_check.main(["--data", str(tmp_path)])
    assert stopped.value.code == gpu_check.NO_GPU and "no CUDA GPU" in str(stopped.value.code)


def test_every_training_script_and_variant_is_in_the_check():
    from hw3core.registry import MODELS

    assert [name for name, *_ in gpu_check.TRAININGS] == list(MODELS)
    assert all("--limit" in flags for *_, flags in gpu_check.TRAININGS)


def test_the_table_has_a_row_per_training_cell_and_alexnet_measurement():
    results = {
        "machine": "NVIDIA H200", "torch": "2.x",
        "trainings": [{"run": "alexnet", "seconds": 12.5, "train_loss": 1.2345, "val_accuracy": 0.5},
                      {"run": "shakespeare-gru", "seconds": 3.0, "train_loss": 2.5, "val_accuracy": None}],
        "cells": [{"shape": "sentiment", "cell": "lstm", "mode": "forward", "custom_s": 0.004, "builtin_s": 0.002,
                   "ratio": 2.0}],
        "served": [{"weights": "served", "batch": 32, "models": 3, "ms": 7.25, "ratio": 0.5}],
    }
    table = gpu_check.format_table(results)
    for expected in ("NVIDIA H200", "| alexnet (one epoch, --limit) | 12.5 s, last training loss 1.234, validation "
                     "accuracy 0.500 |", "| shakespeare-gru (one epoch, --limit) | 3.0 s, last training loss 2.500 |",
                     "custom 4.0 ms, cuDNN 2.0 ms (2.00x)", "| served, batch 32, all 3 | 7.2 ms (0.50x dense) |"):
        assert expected in table


pytest_plugins = ["tiny_data_fixtures"]  # tiny_pacs, tiny_imdb, tiny_text


def test_the_short_trainings_run_each_script_and_report_its_last_epoch(tiny_pacs, tiny_imdb, tiny_text, tmp_path,
                                                                        monkeypatch):
    """The plumbing on the CPU, on tiny data sets laid out as DATA_DIR is, with small models."""
    data = tmp_path / "data"
    (data / "imdb").mkdir(parents=True)
    (data / "tinyshakespeare").mkdir()
    (data / "pacs").symlink_to(tiny_pacs)
    (data / "imdb" / "aclImdb_v1.tar.gz").symlink_to(tiny_imdb)
    (data / "tinyshakespeare" / "input.txt").symlink_to(tiny_text)
    small = {"train_alexnet": ["--batch-size", "8"],
             "train_sentiment": ["--val-size", "4", "--min-count", "1", "--embedding-dim", "8", "--hidden-size", "8"],
             "train_shakespeare": ["--history", "20", "--embedding-dim", "8", "--hidden-size", "16", "--batch-size", "4"]}
    plan = [(name, script, file, [*flags, *small[script.__name__.rsplit(".", 1)[1]]])
            for name, script, file, flags in gpu_check.TRAININGS if name in ("alexnet", "sentiment-lstm",
                                                                             "shakespeare-gru")]
    monkeypatch.setattr(gpu_check, "TRAININGS", plan)
    rows = gpu_check.short_trainings(data, tmp_path / "out", device="cpu")
    assert [row["run"] for row in rows] == ["alexnet", "sentiment-lstm", "shakespeare-gru"]
    assert all(row["seconds"] > 0 and row["train_loss"] > 0 and 0 <= row["val_accuracy"] <= 1 for row in rows)
    assert all((tmp_path / "out" / row["run"] / "model.safetensors").is_file() for row in rows)
