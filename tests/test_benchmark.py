"""The benchmark command's plumbing, on tiny shapes (the speed targets live in the command, not here)."""

import pytest
import torch

from training import benchmark


def test_cell_rows_compare_every_cell_and_pass_with_the_builtin(monkeypatch):
    monkeypatch.setattr(benchmark, "SHAPES", [("tiny", 3, 4, 5, 6)])
    rows = benchmark.bench_cells(torch.device("cpu"), repeats=1)
    assert {(r["cell"], r["mode"]) for r in rows} == {
        (cell, mode) for cell in ("gru", "lstm") for mode in ("forward+backward", "forward")
    }
    for row in rows:
        assert row["custom_s"] > 0 and row["builtin_s"] > 0
        assert row["ratio"] == pytest.approx(row["custom_s"] / row["builtin_s"])
        assert row["floor_ratio"] == pytest.approx(row["matrix_products_s"] / row["builtin_s"])


def test_table_lists_every_measurement():
    results = {
        "machine": "test", "torch": torch.__version__,
        "cells": [{"shape": "s", "cell": "gru", "mode": "forward", "custom_s": 0.2, "builtin_s": 0.4, "ratio": 0.5,
                   "matrix_products_s": 0.1, "floor_ratio": 0.25}],
        "sentiment": [{"cell": "lstm", "reviews_per_s": 123.0}],
        "writer": {"characters_per_s_trained": 4567.0, "write_1000_carried_s": 0.25, "write_1000_reread_s": 9.5},
        "alexnet": [{"variant": "alexnet", "latency_ms": 20.0, "train_images_per_s": 30.0},
                    {"variant": "avg_pooling", "latency_ms": 22.5, "train_images_per_s": 31.0}],
        "alexnet_files": [{"variant": "alexnet", "weights": "compressed", "megabytes": 6.5, "load_s": 1.25,
                           "latency_ms": 20.0}],
        "sentiment_as_trained": [{"cell": "gru", "denormals": "kept", "custom_s": 8.1, "builtin_s": 8.0,
                                  "ratio": 8.1 / 8.0}],
    }
    table = benchmark.format_table(results)
    for expected in ("0.50x", "| 0.100 | 0.25x |", "| lstm | 123 |", "4567", "0.250 s", "9.500 s",
                     "| all three, one image | 42.5 |", "| gru | kept | 8.100 | 8.000 | 1.01x |",
                     "| alexnet | compressed | 6.5 | 1.25 | 20.0 |"):
        assert expected in table


def test_alexnet_file_rows_time_each_weights_file_found(tmp_path):
    from hw3core import AlexNet
    from hw3core.compression import save_compressed

    model = AlexNet()
    model.save_pretrained(tmp_path / "alexnet")
    state = model.state_dict()
    bits = {name: 4 for name in state if name.endswith("weight")}
    masks = {name: torch.rand_like(state[name]) < 0.01 for name in bits}
    save_compressed(tmp_path / "alexnet" / "compressed.safetensors", state, masks, bits)
    rows = benchmark.bench_alexnet_files(tmp_path, torch.device("cpu"), repeats=1)
    assert [(r["variant"], r["weights"]) for r in rows] == [("alexnet", "dense"), ("alexnet", "compressed")]
    assert rows[0]["megabytes"] > 200 and rows[1]["megabytes"] < rows[0]["megabytes"] / 10
    assert all(r["load_s"] > 0 and r["latency_ms"] > 0 for r in rows)


def test_sentiment_as_trained_rows_compare_both_cells_flushed_and_not():
    rows = benchmark.bench_sentiment_as_trained(torch.device("cpu"), repeats=1, batch=2, tokens=3)
    assert {(r["cell"], r["denormals"]) for r in rows} == {
        (cell, state) for cell in ("gru", "lstm") for state in ("flushed", "kept")}
    assert all(r["ratio"] == pytest.approx(r["custom_s"] / r["builtin_s"]) for r in rows)
    assert (torch.tensor([1e-40]) * 1.0).item() == 0.0  # flushing is on again afterwards


def test_the_check_rows_time_a_state_dict_and_modules_right_and_wrong():
    rows = benchmark.bench_check(repeats=1)
    assert "233 MB" in rows[0]["what"] and all(row["seconds"] > 0 for row in rows)
    assert [row["what"] for row in rows[1:]] == ["an AlexNet module, right", "an AlexNet module without ReLU-17",
                                                 "the LSTMCell class, right (two sizes)",
                                                 "an LSTMCell class with h = o ⊙ c (two sizes)"]
    table = benchmark.format_table({"machine": "test", "torch": torch.__version__, "check": rows})
    assert all(f"| {row['what']} | {row['seconds']:.2f} |" in table for row in rows)


def test_the_curves_row_times_reading_and_comparing_a_log():
    row = benchmark.bench_curves(points=300)
    assert row["points"] == 300 and 0 < row["megabytes"] < 1 and row["seconds"] > 0
    table = benchmark.format_table({"machine": "test", "torch": torch.__version__, "curves": row})
    assert f"| {row['megabytes']:.1f} | 300 | {row['seconds']:.1f} |" in table
def test_served_rows_time_the_dense_decode_and_the_served_form_side_by_side(tmp_path):
    from hw3core import AlexNet
    from hw3core.compression import save_compressed

    torch.manual_seed(0)
    state = AlexNet().state_dict()
    bits = {name: 4 for name in state if name.endswith("weight")}
    masks = {name: torch.rand_like(state[name]) < 0.05 for name in bits}
    (tmp_path / "alexnet").mkdir()
    (tmp_path / "alexnet" / "config.json").write_text("{}")
    save_compressed(tmp_path / "alexnet" / "compressed.safetensors", state, masks, bits)
    rows = benchmark.bench_served(tmp_path, torch.device("cpu"), repeats=1, batches=(1, 2), threads=(1,))
    assert [(r["weights"], r["batch"]) for r in rows] == [("dense", 1), ("served", 1), ("dense", 2), ("served", 2)]
    assert all(r["models"] == 1 and r["threads"] == 1 and r["ms"] > 0 and r["convolutions_ms"] > 0 for r in rows)
    assert all(r["ratio"] == pytest.approx(r["ms"] / rows[i - i % 2]["ms"]) for i, r in enumerate(rows))
    table = benchmark.format_table({"machine": "test", "torch": torch.__version__, "served": rows})
    assert f"| served | 1 | 2 | {rows[3]['ms']:.1f} | {rows[3]['ratio']:.2f}x |" in table
    assert benchmark.bench_served(tmp_path / "nothing", torch.device("cpu"), repeats=1) == []
    rows[1]["ratio"], rows[3]["ratio"] = 0.5, 1.25
    assert "slower than the dense decode at: 1 thread(s), batch 2 (1.25x)." in benchmark.format_table(
        {"machine": "test", "torch": torch.__version__, "served": rows})
