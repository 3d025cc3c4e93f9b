"""The demo suite over real HTTP (gradio_client against a served app), plus its UI-free parts."""

import importlib
import json
import math
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from conftest import running_app
from demos import examples as examples_module
from demos import inputs, sentiment, writer
from demos import model_store as models_module
from demos.errors import InvalidInput
from demos.examples import example_images
from demos.model_store import ModelStore, ModelUnavailable
from demos.training_info import training_report
from hw3core import DOMAINS, ShakespeareWriter
from hw3core.checkpoints import PLOT_FILES, load_local


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uploads")
    (folder / "notes.txt").write_text("this is not an image\n")
    # 64 megapixels of one colour: a few kilobytes on disk, 192 MB once decoded to RGB.
    Image.new("1", (8000, 8000)).save(folder / "bomb.png")
    return {"drawing": example_images()[0], "text": folder / "notes.txt", "bomb": folder / "bomb.png"}


def confidences(label: dict) -> dict[str, float]:
    return {item["label"]: item["confidence"] for item in label["confidences"]}


def assert_still_serving(client):
    gru, _, *_ = client.predict("a great film", api_name="/score_sentiment")
    assert gru["label"] in ("positive", "negative")


# ----- the three endpoints -----


def test_classify_domain_gives_each_variant_a_distribution_over_the_domains(client, files):
    outputs = client.predict(handle_file(files["drawing"]), api_name="/classify_domain")
    labels, notes = outputs[:3], outputs[3:]
    for label in labels:
        probabilities = confidences(label)
        assert set(probabilities) == set(DOMAINS)
        assert math.isclose(sum(probabilities.values()), 1, abs_tol=1e-4)
        assert label["label"] == max(probabilities, key=probabilities.get)
    assert len(notes) == 3 and all(" ms" in note for note in notes)


def test_score_sentiment_gives_gru_and_lstm_a_label_with_confidences(client):
    gru, lstm, gru_note, lstm_note = client.predict("The film was great, I loved it.", api_name="/score_sentiment")
    for label in (gru, lstm):
        assert label["label"] in ("positive", "negative")
        assert set(confidences(label)) == {"positive", "negative"}
        assert math.isclose(sum(confidences(label).values()), 1, abs_tol=1e-4)
    assert "parameters" in gru_note and "parameters" in lstm_note


def test_generate_streams_the_prime_and_length_characters(client):
    job = client.submit("ROMEO", 100, 1.0, 7, api_name="/generate")
    partial = list(job)
    final = job.result()
    assert len(partial) > 2  # streamed in chunks, not in one piece
    assert all(final.startswith(text) for text in partial)
    assert final.startswith("ROMEO") and len(final) == len("ROMEO") + 100
    assert client.predict("ROMEO", 100, 1.0, 7, api_name="/generate") == final  # same seed, same text


# ----- invalid input: a message, and the server keeps serving -----


@pytest.mark.parametrize(
    ("api_name", "arguments", "word"),
    [
        ("/classify_domain", lambda files: [None], "No image"),
        ("/classify_domain", lambda files: [handle_file(files["text"])], "not an image"),
        ("/classify_domain", lambda files: [handle_file(files["bomb"])], "too large"),
        ("/score_sentiment", lambda files: [""], "empty"),
        ("/score_sentiment", lambda files: [" \n\t "], "empty"),
        ("/generate", lambda files: ["ROMEO ☃", 10, 1.0, 0], "never saw"),
        ("/generate", lambda files: ["", 10, 1.0, 0], "prime is empty"),
        ("/generate", lambda files: ["ROMEO", -5, 1.0, 0], "minimum"),
        ("/generate", lambda files: ["ROMEO", 2.5, 1.0, 0], "whole number"),
        ("/generate", lambda files: ["ROMEO", 5000, 1.0, 0], "maximum"),
        ("/generate", lambda files: ["ROMEO", 10, 0, 0], "minimum"),
        ("/generate", lambda files: ["ROMEO", 10, -1.0, 0], "minimum"),
        ("/generate", lambda files: ["ROMEO", 10, 1.0, -1], "minimum"),
        ("/generate", lambda files: ["ROMEO", 10, 1.0, 0, "RNN"], "GRU"),
    ],
    ids=["no-image", "text-file", "decompression-bomb", "empty-review", "blank-review", "unknown-characters",
         "empty-prime", "negative-length", "fractional-length", "huge-length", "zero-temperature",
         "negative-temperature", "negative-seed", "unknown-cell"],
)
def test_invalid_input_gives_a_message(client, files, api_name, arguments, word):
    with pytest.raises(AppError) as error:
        client.predict(*arguments(files), api_name=api_name)
    assert word.lower() in error.value.message.lower()
    assert "Traceback" not in error.value.message
    assert_still_serving(client)


@pytest.mark.parametrize("settings", [(math.nan, 1.0, 0), (10, math.nan, 0), (10, math.inf, 0), (10, 1.0, math.nan)])
def test_writer_refuses_numbers_that_json_cannot_carry(settings):
    with pytest.raises(InvalidInput):
        inputs.check_settings(*settings)


def test_review_is_cut_to_the_maximum_length():
    assert len(inputs.clean_review("good " * 50_000)) == inputs.MAX_REVIEW_CHARACTERS


# ----- missing and broken checkpoints -----


@pytest.fixture(scope="module")
def damaged_checkpoints(checkpoints, tmp_path_factory):
    """alexnet fine, alexnet-large-kernel missing, alexnet-avg-pooling's weights cut short,
    sentiment-lstm's config.json of the wrong type; the rest fine."""
    root = tmp_path_factory.mktemp("damaged")
    for name in ("alexnet", "sentiment-gru", "shakespeare-gru"):
        (root / name).symlink_to(checkpoints / name, target_is_directory=True)
    (root / "alexnet-avg-pooling").mkdir()
    shutil.copy(checkpoints / "alexnet-avg-pooling" / "config.json", root / "alexnet-avg-pooling")
    with open(checkpoints / "alexnet-avg-pooling" / "model.safetensors", "rb") as weights:
        (root / "alexnet-avg-pooling" / "model.safetensors").write_bytes(weights.read(1000))
    shutil.copytree(checkpoints / "sentiment-lstm", root / "sentiment-lstm")
    config = json.loads((root / "sentiment-lstm" / "config.json").read_text())
    (root / "sentiment-lstm" / "config.json").write_text(json.dumps({**config, "vocabulary": 5}))
    return root


@pytest.fixture(scope="module")
def damaged_client(damaged_checkpoints):
    with running_app(damaged_checkpoints) as url:
        yield Client(url, verbose=False)


def test_missing_and_broken_variants_make_classify_domain_raise_naming_each(damaged_client, files):
    with pytest.raises(AppError) as error:
        damaged_client.predict(handle_file(files["drawing"]), api_name="/classify_domain")
    message = error.value.message
    assert "AlexNetLargeKernel" in message and "AlexNetAvgPooling" in message and "AlexNet:" not in message
    assert "python -m training.train_alexnet --variant alexnet-large-kernel --data PACS_DIR" in message
    assert "alexnet-avg-pooling/model.safetensors" in message
    assert damaged_client.predict("ROMEO", 20, 1.0, 1, api_name="/generate").startswith("ROMEO")  # still serving


def test_broken_sentiment_checkpoint_names_its_file_while_the_other_tabs_work(damaged_client):
    with pytest.raises(AppError) as error:
        damaged_client.predict("a great film", api_name="/score_sentiment")
    assert "sentiment-lstm/config.json" in error.value.message and "GRU:" not in error.value.message
    assert damaged_client.predict("ROMEO", 20, 1.0, 1, api_name="/generate").startswith("ROMEO")


def test_the_tabs_name_their_missing_models_before_any_request(damaged_checkpoints):
    from demos.availability import availability_notice
    from demos.domain import VARIANTS

    models = ModelStore(damaged_checkpoints)
    notice = availability_notice(models, VARIANTS)
    assert "AlexNetLargeKernel" in notice and "AlexNetAvgPooling" in notice
    assert "**AlexNet**" not in notice
    assert availability_notice(models, {"alexnet": "AlexNet", "sentiment-gru": "GRU"}) == ""


def test_start_up_prints_one_line_per_missing_model_with_its_command(damaged_checkpoints, capsys):
    import app

    app.report_models(ModelStore(damaged_checkpoints))
    printed = capsys.readouterr().out.splitlines()
    lines = [line for line in printed if " is not available: " in line]
    assert sorted(line.split()[0] for line in lines) == [
        "alexnet-avg-pooling", "alexnet-large-kernel", "sentiment-lstm", "shakespeare-lstm"]
    assert any("python -m training.train_alexnet --variant alexnet-large-kernel" in line for line in lines)
    # The others, one line each: where they came from, and nothing of the libraries' own chatter.
    assert sorted(line for line in printed if line not in lines) == sorted(
        f"{name}: loaded from {damaged_checkpoints / name / 'model.safetensors'}"
        for name in ("alexnet", "sentiment-gru", "shakespeare-gru"))


def test_missing_writer_is_explained(tmp_path):
    with running_app(tmp_path) as url, pytest.raises(AppError) as error:
        Client(url, verbose=False).predict("ROMEO", 20, 1.0, 1, api_name="/generate")
    assert "python -m training.train_shakespeare --cell gru" in error.value.message


def test_the_lstm_writer_writes_when_asked_and_the_gru_by_default(client, checkpoints):
    # The cell is the last parameter, GRU by default, so a client that sends four values keeps working.
    expected = {cell: list(writer.write(load_local(ShakespeareWriter, checkpoints / name), "ROMEO", 60, 1.0, 5))[-1]
                for cell, name in writer.WRITERS.items()}
    assert expected["GRU"] != expected["LSTM"]
    assert client.predict("ROMEO", 60, 1.0, 5, "LSTM", api_name="/generate") == expected["LSTM"]
    assert client.predict("ROMEO", 60, 1.0, 5, api_name="/generate") == expected["GRU"]


def test_a_missing_lstm_writer_is_explained_while_the_gru_writes(tmp_path, checkpoints):
    shutil.copytree(checkpoints / "shakespeare-gru", tmp_path / "shakespeare-gru")
    with running_app(tmp_path) as url:
        client = Client(url, verbose=False)
        assert client.predict("ROMEO", 20, 1.0, 1, "GRU", api_name="/generate").startswith("ROMEO")
        with pytest.raises(AppError) as error:
            client.predict("ROMEO", 20, 1.0, 1, "LSTM", api_name="/generate")
    assert "LSTM writer is not available" in error.value.message
    assert "python -m training.train_shakespeare --cell lstm" in error.value.message


# ----- loading -----


def test_each_model_is_loaded_once_and_shared_across_threads(checkpoints):
    models = ModelStore(checkpoints)
    with ThreadPoolExecutor(4) as pool:
        loaded = list(pool.map(lambda _: models.get("sentiment-gru"), range(8)))
    assert all(model is loaded[0] for model in loaded)


def test_hub_fallback_names_the_repo_it_tried(tmp_path):
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    with pytest.raises(ModelUnavailable, match="someone/hw3-sentiment-gru"):
        ModelStore(tmp_path, hub_org="someone").get("sentiment-gru")
    with pytest.raises(ModelUnavailable, match="valid Hub repo id"):
        ModelStore(tmp_path, hub_org="no spaces allowed").get("sentiment-gru")


def test_a_folder_with_only_the_training_record_still_looks_to_the_hub(tmp_path):
    """AlexNet weights stay out of git: a clone has checkpoints/alexnet/ with its record but no weights."""
    (tmp_path / "alexnet").mkdir()
    (tmp_path / "alexnet" / "metrics.jsonl").write_text("")
    with pytest.raises(ModelUnavailable, match="someone/hw3-alexnet"):
        ModelStore(tmp_path, hub_org="someone").get("alexnet")


def test_training_report_shows_the_last_epoch_and_the_plots(checkpoints):
    text, plots = training_report(ModelStore(checkpoints), sentiment.CLASSIFIERS)
    assert "| **GRU** | 2 of 2 | 0.8125 | 0.4500 | 0.8300 | 0.4100 | 12.0 | 1,700 | test fixture |" in text
    assert "| **LSTM** | 2 of 2 | 0.8125 |" in text
    assert plots == [str(checkpoints / name / file) for name in sentiment.CLASSIFIERS for file in PLOT_FILES.values()]


def test_training_report_shows_the_kept_epoch_not_the_last(checkpoints, tmp_path):
    shutil.copytree(checkpoints / "sentiment-gru", tmp_path / "sentiment-gru")
    (tmp_path / "sentiment-gru" / "training.json").write_text(json.dumps({"hardware": "here", "kept_epoch": 1}))
    text, _ = training_report(ModelStore(tmp_path), {"sentiment-gru": "GRU"})
    assert "| **GRU** | 1 of 2 | 0.6000 | 0.6500 | 0.5500 | 0.6900 | 12.5 | 1,600 | here |" in text


def test_training_report_of_a_refit_names_the_run_that_chose_it(checkpoints, tmp_path):
    shutil.copytree(checkpoints / "sentiment-gru", tmp_path / "sentiment-gru")
    rows = [{"epoch": e, "train_loss": 1.0, "train_accuracy": 0.5, "val_loss": None, "val_accuracy": None,
             "epoch_seconds": 10.0, "examples_per_second": 100.0} for e in (1, 2)]
    (tmp_path / "sentiment-gru" / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    chosen = {"command": "python -m x", "kept_epoch": 2, "split": {"train_characters": 9000},
              "history": [{"epoch": 1, "val_loss": 1.6, "val_accuracy": 0.5},
                          {"epoch": 2, "val_loss": 1.5, "val_accuracy": 0.55}]}
    (tmp_path / "sentiment-gru" / "training.json").write_text(json.dumps({"kept_epoch": 2, "selection_run": chosen}))
    text, _ = training_report(ModelStore(tmp_path), {"sentiment-gru": "GRU"})
    assert "| **GRU** | 2 of 2 | – | – |" in text  # no validation figures of its own
    assert "validation loss of 1.5000 (accuracy 0.5500) at epoch 2" in text and "9,000 characters" in text


def test_training_report_gives_a_compressed_alexnets_own_figures(checkpoints, tmp_path):
    """The table's figures come from training (dense weights); a compressed AlexNet, what a fresh clone
    serves, scores its own, which compression.json records."""
    shutil.copytree(checkpoints / "alexnet", tmp_path / "alexnet")
    text, _ = training_report(ModelStore(tmp_path), {"alexnet": "AlexNet"})
    assert "compressed" not in text  # no record: nothing to say
    record = {"validation": {"dense": {"accuracy": 0.9, "loss": 0.3}, "compressed": {"accuracy": 0.8875, "loss": 0.31}},
              "dense_bytes": 233_190_928, "compressed_bytes": 6_514_253}
    (tmp_path / "alexnet" / "compression.json").write_text(json.dumps(record))
    text, _ = training_report(ModelStore(tmp_path), {"alexnet": "AlexNet"})
    assert "| **AlexNet** |" in text
    assert "**AlexNet** compressed (`compressed.safetensors`, 6.51 MB against 233.19 MB" in text
    assert "validation accuracy 0.8875 (loss 0.3100) on the same split, against 0.9000 for the dense weights" in text


def test_training_report_says_what_is_missing(checkpoints, tmp_path):
    (tmp_path / "sentiment-gru").symlink_to(checkpoints / "sentiment-gru", target_is_directory=True)
    (tmp_path / "sentiment-lstm").mkdir()
    (tmp_path / "sentiment-lstm" / "metrics.jsonl").write_text("{not json\n")
    text, plots = training_report(ModelStore(tmp_path), {**sentiment.CLASSIFIERS, "shakespeare-gru": "writer"})
    assert "| **GRU** |" in text and len(plots) == 3
    assert "sentiment-lstm/metrics.jsonl` cannot be read" in text
    assert "shakespeare-gru/model.safetensors` does not exist" in text and "train_shakespeare" in text


def test_predictions_need_no_server(checkpoints):
    gru, lstm = sentiment.score("a great film", ModelStore(checkpoints))
    assert set(gru.probabilities) == set(lstm.probabilities) == {"negative", "positive"}
    assert gru.parameters > 0 and gru.milliseconds >= 0 and gru.problem is None


def test_importing_the_app_loads_and_starts_nothing(monkeypatch):
    import app

    def forbidden(*args, **kwargs):
        raise AssertionError("called when app.py is imported")

    for module, name in [(models_module, "load_local"), (models_module, "snapshot_download"), (gr.Blocks, "launch")]:
        monkeypatch.setattr(module, name, forbidden)
    importlib.reload(app)


def test_the_api_has_the_three_endpoints_under_their_names(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/classify_domain", "/score_sentiment", "/generate"} <= set(endpoints)
    assert [len(endpoints[name]["parameters"]) for name in ("/classify_domain", "/score_sentiment", "/generate")] \
        == [1, 1, 5]
    assert [len(endpoints[name]["returns"]) for name in ("/classify_domain", "/score_sentiment", "/generate")] \
        == [6, 4, 1]


def test_the_app_serves_the_training_plots_and_no_other_checkpoint_file(app_url, checkpoints):
    import httpx

    def status(path: Path) -> int:
        return httpx.get(f"{app_url.rstrip('/')}/gradio_api/file={path}").status_code

    assert status(checkpoints / "sentiment-gru" / "train_loss.png") == 200
    for private in ("training.json", "model.safetensors", "config.json", "metrics.jsonl"):
        assert status(checkpoints / "sentiment-gru" / private) in (403, 404), private


def test_a_file_record_naming_a_server_path_is_refused_not_opened(client, tmp_path):
    outside = tmp_path / "server-side.png"  # an image the server could read, never uploaded
    Image.new("RGB", (40, 40), "red").save(outside)
    with pytest.raises(AppError) as error:
        client.predict({"path": str(outside)}, api_name="/classify_domain")
    assert "handle_file" in error.value.message


def test_every_parameter_and_output_of_every_endpoint_has_a_name(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for name, endpoint in endpoints.items():
        for item in endpoint["parameters"] + endpoint["returns"]:
            assert item["label"] and not item["label"].startswith("value_"), (name, item["label"])


@pytest.mark.parametrize("name", list(examples_module.DRAWINGS))
def test_the_committed_example_images_are_what_their_drawings_draw(name):
    with Image.open(examples_module.EXAMPLES_DIR / f"{name}.png") as committed:
        assert committed.tobytes() == examples_module.DRAWINGS[name]().tobytes()
