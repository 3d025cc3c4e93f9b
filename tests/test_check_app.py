"""The "Check your model" tab over real HTTP (gradio_client): the report, students' models run beside
ours with what their own forward computes, sessions kept apart, and the memory bound on uploads."""

import gc
import math
import os
import weakref

import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from student_models import (
    PerGateLSTMCell,
    StarterGRUCell,
    StarterSentenceGeneration,
    StarterSentimentClassification,
    StudentAlexNet,
    starter_ids,
    starter_vocabulary,
)

import app
from demos import check_model as tab
from demos.errors import InvalidInput
from demos.examples import example_images
from demos.inputs import MAX_IMAGE_BYTES
from demos.uploads import NOT_CHECKED, UploadedModels
from hw3core import DOMAINS
from hw3core.alexnet import preprocess_image

EPS = torch.finfo(torch.float32).eps
REVIEWS = ["a great film , I loved it", "boring and bad , not good at all"]
TEXT = "ROMEO:\nWill't Marcius Coriolanus and envy of smelling!\nJULIET:\nAre there incensed to my feet?\n"


def confidences(label: dict) -> dict[str, float]:
    return {item["label"]: item["confidence"] for item in label["confidences"]}


def assert_close_probabilities(served: dict[str, float], theirs: dict[str, float], terms: int) -> None:
    """Probabilities from two float32 computations of one function: eps * sqrt(terms), at most 1e-5
    (the JSON carries Python floats, so nothing is lost in transit)."""
    assert served.keys() == theirs.keys()
    tolerance = min(1e-5, 8 * EPS * math.sqrt(terms))
    for key, value in served.items():
        assert value == pytest.approx(theirs[key], abs=tolerance), key


@pytest.fixture(scope="module")
def students(tmp_path_factory):
    """Each kind of student model, and the file its notebook would save."""
    folder = tmp_path_factory.mktemp("students")
    torch.manual_seed(5)
    alexnet = StudentAlexNet().eval()
    torch.save(alexnet.state_dict(), folder / "best_model.pt")  # 233 MB, as the starter saves it
    characters = sorted(set(TEXT))
    writer = StarterSentenceGeneration(len(characters), 12, PerGateLSTMCell, 16).eval()
    torch.save({"model": writer.state_dict(), "vocabulary": characters}, folder / "writer.pt")
    vocabulary = starter_vocabulary(REVIEWS)
    classifier = StarterSentimentClassification(len(vocabulary), 10, StarterGRUCell, 8).eval()
    torch.save({"model": classifier.state_dict(), "vocabulary": vocabulary}, folder / "classifier.pt")
    torch.save(classifier.state_dict(), folder / "classifier-without-vocabulary.pt")
    (folder / "junk.pt").write_bytes(os.urandom(1000))
    return {"alexnet": alexnet, "writer": writer, "characters": characters, "classifier": classifier,
            "vocabulary": vocabulary, "folder": folder}


def new_client(app_url) -> Client:
    return Client(app_url, verbose=False, analytics_enabled=False)


LSTM_READING = "gates over [h, x]"  # how PerGateLSTMCell multiplies: a file cannot say, so the student picks


def check_file(client, path, model="auto", reading="auto") -> dict:
    return client.predict(handle_file(path), model, reading, api_name="/check_model")[0]


def test_a_file_that_can_be_read_two_ways_asks_which_and_runs_once_picked(app_url, students):
    client = new_client(app_url)
    report = client.predict(handle_file(students["folder"] / "best_model.pt"), "auto", api_name="/check_model")[0]
    assert report["ok"] and report["reading"] is None
    assert any("pick AlexNet or AlexNetAvgPooling" in note for note in report["notes"])
    with pytest.raises(AppError, match="cannot be run.*pick AlexNet or AlexNetAvgPooling"):
        client.predict(handle_file(example_images()[0]), api_name="/your_domain")
    picked = check_file(client, students["folder"] / "best_model.pt", reading="AlexNetAvgPooling")
    assert picked["ok"] and picked["model"] == "AlexNetAvgPooling"
    client.predict(handle_file(example_images()[0]), api_name="/your_domain")  # runs now
    writer = check_file(client, students["folder"] / "writer.pt")
    assert any("can be read 2 ways" in note and LSTM_READING in note for note in writer["notes"])
    with pytest.raises(AppError, match="pick the one your forward uses"):
        client.predict("ROMEO", api_name="/your_writer")


def test_the_report_is_the_fixed_json_and_a_students_alexnet_runs_as_its_own_forward(app_url, students):
    client = new_client(app_url)
    report = check_file(client, students["folder"] / "best_model.pt", "AlexNet")
    assert set(report) >= {"model", "cell", "ok", "rows", "problems"}
    assert report["model"] == "AlexNet" and report["cell"] is None and report["ok"] is True
    assert report["problems"] == []
    assert report["rows"][0] == {"row": "Conv2d-1", "expected": report["rows"][0]["expected"],
                                 "yours": report["rows"][0]["yours"], "ok": True}
    drawing = example_images()[0]
    yours, ours, *_ = client.predict(handle_file(drawing), api_name="/your_domain")
    with torch.no_grad():
        theirs = torch.softmax(students["alexnet"](preprocess_image(Image.open(drawing).convert("RGB"))[None]), -1)[0]
    assert_close_probabilities(confidences(yours), dict(zip(DOMAINS, theirs.tolist(), strict=True)), terms=9216)
    assert yours["label"] == max(confidences(yours), key=confidences(yours).get)
    assert set(confidences(ours)) == set(DOMAINS)  # ours of the same class, in /classify_domain's format
    classify = client.predict(handle_file(drawing), api_name="/classify_domain")
    assert confidences(ours) == pytest.approx(confidences(classify[0]), abs=1e-6)


def test_a_students_writer_gives_its_own_top_5_and_ours(app_url, students):
    client = new_client(app_url)
    report = check_file(client, students["folder"] / "writer.pt", reading=LSTM_READING)
    assert report["ok"] and report["model"] == "SentenceGeneration" and report["cell"] == "LSTMCell"
    assert report["reading"] == LSTM_READING
    text = "ROMEO:\nWill"
    yours, ours, *_ = client.predict(text, api_name="/your_writer")
    characters = students["characters"]
    with torch.no_grad():
        logits = students["writer"](torch.tensor([[characters.index(char) for char in text]]))[0]
    probabilities = torch.softmax(logits, -1)
    top = probabilities.topk(5)
    theirs = {{"\n": "↵", " ": "␣"}.get(characters[i], characters[i]): p
              for i, p in zip(top.indices.tolist(), top.values.tolist(), strict=True)}
    assert_close_probabilities(confidences(yours), theirs, terms=28 * len(text))
    inspect = client.predict(text, "LSTM", api_name="/inspect_text")[1]
    assert confidences(ours) == pytest.approx(confidences(inspect), abs=1e-6)
    written, ours_written = client.predict("JULIET", api_name="/your_generate")
    assert written.startswith("JULIET") and len(written) == len("JULIET") + tab.GENERATED_LENGTH
    assert set(written) <= set(characters)
    assert ours_written.startswith("JULIET") and len(ours_written) == len(written)  # ours, from the same prime


def test_a_students_classifier_reads_a_review_as_the_starter_does(app_url, students):
    client = new_client(app_url)
    assert check_file(client, students["folder"] / "classifier.pt")["ok"]
    review = "a great film , not boring at all"
    yours, ours, _ = client.predict(review, api_name="/your_sentiment")
    ids = torch.tensor([starter_ids(review, students["vocabulary"])])
    with torch.no_grad():
        theirs = torch.softmax(students["classifier"](ids, torch.tensor([ids.shape[1]])), -1)[0]
    assert_close_probabilities(confidences(yours), dict(zip(("negative", "positive"), theirs.tolist(), strict=True)),
                               terms=18 * ids.shape[1])
    assert set(confidences(ours)) == {"negative", "positive"}


def test_without_a_vocabulary_the_report_passes_and_says_how_to_save_one(app_url, students):
    client = new_client(app_url)
    report, summary, *_ = client.predict(handle_file(students["folder"] / "classifier-without-vocabulary.pt"), "auto",
                                         api_name="/check_model")
    assert report["ok"] and "'vocabulary': vocabulary" in summary
    with pytest.raises(AppError, match="cannot be run.*'vocabulary': vocabulary"):
        client.predict("a great film", api_name="/your_sentiment")


def test_two_clients_never_see_each_others_model(app_url, students):
    first, second = new_client(app_url), new_client(app_url)
    assert check_file(first, students["folder"] / "writer.pt", reading=LSTM_READING)["ok"]
    for api_name, argument in (("/your_writer", "ROMEO"), ("/your_sentiment", "a great film")):
        with pytest.raises(AppError, match="No model checked yet") as raised:
            second.predict(argument, api_name=api_name)
        assert raised.value.message == NOT_CHECKED
    assert check_file(second, students["folder"] / "classifier.pt")["ok"]
    assert second.predict("a great film", api_name="/your_sentiment")[0]["label"] in ("negative", "positive")
    assert first.predict("ROMEO", api_name="/your_writer")[0]["label"]  # still the first client's writer
    with pytest.raises(AppError, match="Your checked model is a SentenceGeneration"):
        first.predict("a great film", api_name="/your_sentiment")


def test_a_file_that_cannot_be_read_is_an_error_saying_why(app_url, students, tmp_path):
    client = new_client(app_url)
    with pytest.raises(AppError, match="junk.pt is not a PyTorch checkpoint"):
        check_file(client, students["folder"] / "junk.pt")
    torch.save(students["classifier"], tmp_path / "whole-model.pt")  # a pickled module
    with pytest.raises(AppError) as raised:
        check_file(client, tmp_path / "whole-model.pt")
    assert "model.state_dict()" in raised.value.message and "weights_only" not in raised.value.message
    with pytest.raises(AppError, match="No model checked yet"):
        client.predict("ROMEO", api_name="/your_writer")


def test_a_wrong_model_is_reported_and_not_run(app_url, tmp_path):
    client = new_client(app_url)
    torch.save(StarterSentimentClassification(30, 6, StarterGRUCell, 5).state_dict(), tmp_path / "m.pt")
    report = check_file(client, tmp_path / "m.pt", "SentenceGeneration")
    assert not report["ok"] and report["model"] == "SentenceGeneration"
    assert any(p.startswith("Linear (classifier): 2 outputs") for p in report["problems"])


def test_an_image_keeps_its_10_mb_limit_under_the_300_mb_upload_limit(app_url, tmp_path):
    assert app.MAX_UPLOAD == "300mb" and MAX_IMAGE_BYTES == 10 * 1024 * 1024
    big = tmp_path / "big.png"
    Image.new("RGB", (64, 64)).save(big)
    with open(big, "ab") as file:  # a valid PNG, padded past 10 MB after its end
        file.write(os.urandom(MAX_IMAGE_BYTES))
    client = new_client(app_url)
    with pytest.raises(AppError, match="the limit for an image is 10 MB"):
        client.predict(handle_file(big), api_name="/classify_domain")


# ----- the memory bound, without HTTP: the handler as the tab calls it -----


def test_memory_stays_bounded_over_10_alexnet_uploads_in_a_row(students):
    uploads = UploadedModels(max_alexnets=2)
    path = str(students["folder"] / "best_model.pt")
    sessions, alive = [], []
    rss_before = _resident_bytes()
    for _ in range(10):
        *_, session, _, _, _, _ = tab.check_upload(path, "AlexNet", None, uploads)  # a new session each time
        sessions.append(session)
        alive.append(weakref.ref(uploads.get(session["token"]).model))
        assert uploads.count(large=True) <= 2
    gc.collect()
    assert sum(ref() is not None for ref in alive) == 2
    growth = _resident_bytes() - rss_before
    assert growth < 4 * 233e6, f"resident memory grew by {growth / 1e6:.0f} MB over 10 uploads"
    with pytest.raises(InvalidInput, match="dropped to make room.*upload it again"):
        uploads.get(sessions[0]["token"])
    uploads.get(sessions[-1]["token"])  # the newest is held
    for session in sessions:  # the sessions end: their models are freed
        uploads.release(session["token"])
    gc.collect()
    assert len(uploads) == 0 and all(ref() is None for ref in alive)


def test_a_dropped_model_is_told_the_limit_of_its_own_kind():
    from torch import nn

    from demos.uploads import Held

    uploads = UploadedModels(max_alexnets=1, max_text_models=1)
    writer = uploads.hold(Held(nn.Linear(1, 1), "SentenceGeneration", "GRUCell"))
    alexnet = uploads.hold(Held(nn.Linear(1, 1), "AlexNet", None))
    uploads.hold(Held(nn.Linear(1, 1), "SentimentClassification", "GRUCell"))  # drops the writer, not the AlexNet
    assert uploads.get(alexnet).name == "AlexNet"
    with pytest.raises(InvalidInput, match="at most 1 uploaded text models"):
        uploads.get(writer)


def test_a_new_upload_replaces_the_sessions_model(students):
    uploads = UploadedModels()
    path = str(students["folder"] / "writer.pt")
    *_, first, _, _, _, _ = tab.check_upload(path, "auto", None, uploads, LSTM_READING)
    *_, second, _, _, _, _ = tab.check_upload(path, "auto", first, uploads, LSTM_READING)
    assert len(uploads) == 1 and second["token"] != first["token"]
    with pytest.raises(InvalidInput, match="No model checked yet"):
        uploads.get(first["token"])


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_the_tabs_session_state_frees_its_model_when_the_session_ends(checkpoints, students):
    import gradio as gr

    from demos.uploads import UPLOADS

    demo = app.build_app(checkpoints)
    states = [block for block in demo.blocks.values()
              if isinstance(block, gr.State) and block.time_to_live == tab.SESSION_SECONDS]
    assert len(states) == 1  # the tab's session state
    *_, session, _, _, _, _ = tab.check_upload(str(students["folder"] / "writer.pt"), "auto", None, UPLOADS,
                                               LSTM_READING)
    assert UPLOADS.get(session["token"])
    states[0].delete_callback(session)  # what Gradio calls when the session's state is deleted
    with pytest.raises(InvalidInput, match="No model checked yet"):
        UPLOADS.get(session["token"])


def test_a_cells_file_is_checked_for_its_layout_and_count_and_says_how_to_run_its_forward(tmp_path):
    torch.save(PerGateLSTMCell(128, 100).state_dict(), tmp_path / "cell.pt")
    assert {"GRUCell", "LSTMCell"} <= set(tab.CHOICES)
    uploads = UploadedModels()
    report, summary, _, session, alexnet_view, writer_view, sentiment_view, _ = tab.check_upload(
        str(tmp_path / "cell.pt"), "LSTMCell", None, uploads)
    assert report["ok"] and report["model"] == "LSTMCell"
    assert uploads.get(session["token"]).model is None and tab.waiting_weights(session, uploads) is not None
    assert not any(view.visible for view in (alexnet_view, writer_view, sentiment_view))
    assert "check_model(cell, \"LSTMCell\")" in summary and "a cell alone" in session["why"]


def test_weights_that_read_two_ways_wait_for_the_pick_without_a_new_upload(students):
    uploads = UploadedModels()
    path = str(students["folder"] / "best_model.pt")
    _, summary, _, asked, _, _, _, readings = tab.check_upload(path, "auto", None, uploads)
    assert "under **Read your weights as**, then press **Check** again" in summary
    assert readings.choices[1:] == [("AlexNet", "AlexNet"), ("AlexNetAvgPooling", "AlexNetAvgPooling")]
    with pytest.raises(InvalidInput, match="cannot be run.*pick AlexNet or AlexNetAvgPooling"):
        tab.session_model(asked, uploads, "AlexNet")
    waiting = tab.waiting_weights(asked, uploads)
    assert waiting is not None and uploads.count(large=True) == 1  # within the AlexNets' bound
    report, *_, picked, alexnet_view, _, _, _ = tab.check_upload(None, "auto", asked, uploads, "AlexNetAvgPooling",
                                                                  held=waiting)
    assert report["model"] == "AlexNetAvgPooling" and alexnet_view.visible
    assert tab.session_model(picked, uploads, "AlexNet").name == "AlexNetAvgPooling" and len(uploads) == 1


def test_weights_checked_as_the_wrong_class_wait_for_another_without_a_new_upload(students):
    uploads = UploadedModels()
    path = str(students["folder"] / "best_model.pt")
    report, summary, _, wrong, alexnet_view, *_ = tab.check_upload(path, "AlexNetLargeKernel", None, uploads)
    assert not report["ok"] and not alexnet_view.visible
    assert any("pick AlexNet" in note for note in report["notes"])
    assert "pick it under **It should be** and press **Check** again: no new upload needed" in summary
    with pytest.raises(InvalidInput, match="Your AlexNetLargeKernel was checked but cannot be run: it does not match"):
        tab.session_model(wrong, uploads, "AlexNet")
    waiting = tab.waiting_weights(wrong, uploads)
    assert waiting is not None and uploads.count(large=True) == 1
    report, summary, *_, right, alexnet_view, _, _, _ = tab.check_upload(None, "AlexNet", wrong, uploads, held=waiting)
    assert report["ok"] and report["model"] == "AlexNet" and alexnet_view.visible
    assert "no new upload" not in summary
    assert tab.session_model(right, uploads, "AlexNet").model is not None
    assert tab.waiting_weights(right, uploads) is None and len(uploads) == 1  # the model runs: the weights went


def test_an_upload_as_large_as_an_alexnet_is_held_in_the_alexnets_slots_whatever_it_was_checked_as():
    from demos.uploads import LARGE_BYTES, Held
    from hw3core.check.student import StudentWeights

    uploads = UploadedModels(max_alexnets=1, max_text_models=8)
    large = StudentWeights({"embedding.weight": torch.empty(LARGE_BYTES // 4 + 1)})
    first = uploads.hold(Held(None, "SentimentClassification", "GRUCell", weights=large))
    assert uploads.count(large=True) == 1 and uploads.count(large=False) == 0
    uploads.hold(Held(None, None, None, weights=large))  # not one of the assignment's models: as large, the same
    with pytest.raises(InvalidInput, match="at most 1 uploaded AlexNets \\(or files as large\\)"):
        uploads.get(first)
    uploads.hold(Held(None, "SentenceGeneration", "GRUCell", weights=StudentWeights({"w": torch.empty(10)})))
    assert uploads.count(large=True) == 1 and uploads.count(large=False) == 1
    words = [f"word{i}" for i in range(LARGE_BYTES // 40)]  # small tensors, but a vocabulary of 64 MB and more
    uploads.hold(Held(None, "SentimentClassification", "GRUCell", weights=StudentWeights({"w": torch.empty(10)},
                                                                                         vocabulary=words)))
    assert uploads.count(large=True) == 1 and uploads.count(large=False) == 1

