"""/your_curves over real HTTP (gradio_client): a student's TensorBoard log beside our run of the same part."""

import zipfile

import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from student_models import StarterGRUCell, StarterSentimentClassification, starter_vocabulary
from torch.utils.tensorboard import SummaryWriter

from conftest import METRICS
from demos.errors import InvalidInput
from demos.your_curves import parse_tags

VAL_ACCURACY = [71.0, 78.5, 82.25]  # in percent, as many students log it


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("logs")
    with SummaryWriter(str(folder / "runs" / "alexnet")) as writer:
        for epoch, accuracy in enumerate(VAL_ACCURACY):
            writer.add_scalar("Loss/train", 1.0 - 0.2 * epoch, epoch)
            writer.add_scalar("Accuracy/val", accuracy, epoch)
            writer.add_scalar("mystery", 0.5 + 0.1 * epoch, epoch)
    (event_file,) = (folder / "runs").rglob("*tfevents*")
    archive = folder / "runs.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(event_file, event_file.relative_to(folder))
    (folder / "notes.txt").write_text("not a log")
    return {"file": event_file, "zip": archive, "text": folder / "notes.txt"}


def new_client(app_url) -> Client:
    return Client(app_url, verbose=False, analytics_enabled=False)


def test_a_students_log_beside_ours_with_the_mark_and_the_verdict(app_url, logs):
    client = new_client(app_url)
    result, plot, verdict = client.predict(handle_file(logs["file"]), "AlexNet", api_name="/your_curves")
    assert result["part"] == "AlexNet" and result["roles"] == {"train_loss": "Loss/train", "val_accuracy": "Accuracy/val"}
    assert [value for _, value in result["curves"]["Accuracy/val"]] == VAL_ACCURACY
    assert [step for step, _ in result["curves"]["Loss/train"]] == [0, 1, 2]
    assert result["marks"][0]["value"] == 0.8 and result["marks"][0]["by_epoch"] == 5
    assert result["by_epoch"]["ours"]["val_accuracy"] == [row["val_accuracy"] for row in METRICS]  # the served record
    assert any("yours reached it at epoch 3 (0.8225)" in line for line in result["verdict"])
    assert "yours reached it at epoch 3" in verdict and plot

    zipped, *_ = client.predict(handle_file(logs["zip"]), "AlexNet", "train_accuracy=mystery", api_name="/your_curves")
    assert zipped["roles"]["train_accuracy"] == "runs/alexnet/mystery"


def test_auto_takes_the_part_of_the_checked_model_and_bad_logs_are_messages(app_url, logs, tmp_path):
    client = new_client(app_url)
    with pytest.raises(AppError, match="Which part is this run"):
        client.predict(handle_file(logs["file"]), "auto", api_name="/your_curves")
    with pytest.raises(AppError, match="is not a TensorBoard event file"):
        client.predict(handle_file(logs["text"]), "AlexNet", api_name="/your_curves")
    with pytest.raises(AppError, match="no tag 'nothing'"):
        client.predict(handle_file(logs["file"]), "AlexNet", "val_loss=nothing", api_name="/your_curves")
    with pytest.raises(AppError, match="No file"):
        client.predict(None, "AlexNet", api_name="/your_curves")
    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict(handle_file(logs["file"]), 3, api_name="/your_curves")
    with pytest.raises(AppError, match="name each curve as ROLE=TAG"):
        client.predict(handle_file(logs["file"]), "AlexNet", ["val_loss"], api_name="/your_curves")
    assert client.predict(handle_file(logs["file"]), "AlexNet", api_name="/your_curves")[0]["part"] == "AlexNet"

    # Once a model is checked in the session, auto is its class.
    vocabulary = starter_vocabulary(["a great film", "a bad film"])
    classifier = StarterSentimentClassification(len(vocabulary), 10, StarterGRUCell, 8)
    torch.save({"model": classifier.state_dict(), "vocabulary": vocabulary}, tmp_path / "classifier.pt")
    client.predict(handle_file(tmp_path / "classifier.pt"), "auto", api_name="/check_model")
    result = client.predict(handle_file(logs["file"]), "auto", api_name="/your_curves")[0]
    assert result["part"] == "SentimentClassification" and result["marks"][0]["value"] == 0.85


def test_tags_are_role_equals_tag_pairs():
    assert parse_tags("train_loss=Loss/train; val_accuracy = acc\n") == {"train_loss": "Loss/train", "val_accuracy": "acc"}
    assert parse_tags("") == {}
    with pytest.raises(InvalidInput, match="ROLE=TAG"):
        parse_tags("loss")
