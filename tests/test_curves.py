"""A student's TensorBoard log read back (hw3core.event_files) and compared with ours (hw3core.curves).

Every log is written here with torch's SummaryWriter, in the styles students use; none needs TensorFlow.
"""

import json
import zipfile
from pathlib import Path

import fsspec
import numpy as np
import pytest
from torch.utils.tensorboard import SummaryWriter

from hw3core import compare_curves
from hw3core.curves import MARKS, CurvesError, compare, find_roles, overfitting_epoch, per_epoch
from hw3core.event_files import MAX_BYTES, EventFileError, read_scalars
from hw3core.records import read_history

REPO = Path(__file__).resolve().parent.parent
f32 = lambda value: float(np.float32(value))  # noqa: E731 (what an event file holds)


def only_event_file(folder: Path) -> Path:
    (file,) = [path for path in folder.rglob("*tfevents*")]
    return file


def write(folder: Path, curves: dict[str, list[tuple[int, float]]], new_style: bool = False) -> Path:
    with SummaryWriter(str(folder)) as writer:
        for tag, points in curves.items():
            for step, value in points:
                writer.add_scalar(tag, value, step, new_style=new_style)
    return folder


# A run of 6 epochs whose validation loss is lowest at epoch 4, then rises while training loss falls.
TRAIN_LOSS = [1.0, 0.6, 0.45, 0.35, 0.28, 0.22]
VAL_LOSS = [0.8, 0.6, 0.5, 0.45, 0.5, 0.6]
TRAIN_ACCURACY = [0.6, 0.7, 0.78, 0.84, 0.88, 0.91]
VAL_ACCURACY = [0.7, 0.76, 0.79, 0.82, 0.83, 0.81]


def epochs(values, first: int = 0):
    return list(enumerate(values, first))


def test_the_starter_style_per_step_loss_and_percent_accuracy_read_back_exactly(tmp_path):
    """20,000 per-step points, past the 10,000 TensorBoard's reader keeps by default."""
    steps = 20_000
    losses = np.linspace(1.2, 0.2, steps)
    write(tmp_path / "runs" / "Dec03_alexnet", {
        "Loss/train": list(enumerate(losses)),
        "Accuracy/train": epochs([100 * a for a in TRAIN_ACCURACY]),
        "Accuracy/val": epochs([100 * a for a in VAL_ACCURACY]),
        "Loss/val": epochs(VAL_LOSS),
    })
    curves = read_scalars(tmp_path / "runs")
    assert curves["Dec03_alexnet/Loss/train"].points == [(i, f32(value)) for i, value in enumerate(losses)]
    assert curves["Dec03_alexnet/Accuracy/val"].points == [(i, f32(100 * a)) for i, a in enumerate(VAL_ACCURACY)]

    comparison = compare(tmp_path / "runs", "AlexNet")
    assert comparison.roles == {"train_loss": "Dec03_alexnet/Loss/train", "train_accuracy": "Dec03_alexnet/Accuracy/train",
                                "val_loss": "Dec03_alexnet/Loss/val", "val_accuracy": "Dec03_alexnet/Accuracy/val"}
    # Six epochs of the validation curve: each epoch's training loss is the mean of its 20,000 / 6 steps.
    expected = [f32(v) for v in losses]
    assert comparison.yours["train_loss"] == pytest.approx([np.mean(part) for part in np.array_split(expected, 6)])
    assert comparison.yours["val_accuracy"] == pytest.approx(VAL_ACCURACY)  # percent read as a fraction
    assert "(in percent)" in comparison.verdict[0] and "20,000 points" in comparison.verdict[0]


def test_new_style_scalars_and_the_keras_layout_in_a_zip(tmp_path):
    write(tmp_path / "new", {"train_loss": epochs(TRAIN_LOSS), "val_loss": epochs(VAL_LOSS),
                             "train_acc": epochs(TRAIN_ACCURACY), "val_acc": epochs(VAL_ACCURACY)}, new_style=True)
    new = compare(tmp_path / "new", "AlexNet")
    expected = {"train_loss": TRAIN_LOSS, "train_accuracy": TRAIN_ACCURACY,
                "val_loss": VAL_LOSS, "val_accuracy": VAL_ACCURACY}
    assert set(new.yours) == set(expected)
    for role, values in expected.items():
        assert new.yours[role] == pytest.approx(values)
    assert new.curves["val_acc"].points == [(i, f32(a)) for i, a in enumerate(VAL_ACCURACY)]

    # Keras: one folder per phase, the same tags in each. Zipped as a student would send it.
    write(tmp_path / "logs" / "train", {"epoch_loss": epochs(TRAIN_LOSS), "epoch_accuracy": epochs(TRAIN_ACCURACY)})
    write(tmp_path / "logs" / "validation", {"epoch_loss": epochs(VAL_LOSS), "epoch_accuracy": epochs(VAL_ACCURACY)})
    archive = tmp_path / "logs.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for file in (tmp_path / "logs").rglob("*"):
            zipped.write(file, file.relative_to(tmp_path))
    keras = compare(archive, "AlexNetAvgPooling")
    assert keras.roles == {"train_loss": "logs/train/epoch_loss", "train_accuracy": "logs/train/epoch_accuracy",
                           "val_loss": "logs/validation/epoch_loss", "val_accuracy": "logs/validation/epoch_accuracy"}
    assert keras.yours["val_loss"] == pytest.approx(VAL_LOSS)
    assert not fsspec.filesystem("memory").ls("/", detail=False)  # read in memory, and nothing left there


def test_a_run_restarted_in_its_folder_counts_from_its_first_step(tmp_path):
    run = tmp_path / "run"
    write(run, {"loss/train": epochs([9.0] * 5), "loss/val": epochs([9.0] * 5)})
    write(run, {"loss/train": epochs(TRAIN_LOSS[:3]), "loss/val": epochs(VAL_LOSS[:3])})  # restarted from scratch
    assert read_scalars(run)["loss/train"].points == [(i, f32(v)) for i, v in enumerate(TRAIN_LOSS[:3])]
    write(run, {"loss/train": epochs(TRAIN_LOSS[3:], first=3)})  # then resumed after its third epoch
    assert read_scalars(run)["loss/train"].points == [(i, f32(v)) for i, v in enumerate(TRAIN_LOSS)]


def test_names_that_do_not_tell_are_named_by_the_user(tmp_path):
    write(tmp_path, {"curve_a": epochs(TRAIN_LOSS), "curve_b": epochs(VAL_ACCURACY), "lr": epochs([0.1] * 6)})
    with pytest.raises(CurvesError, match="say which is which"):
        compare(tmp_path, "AlexNet")
    named = compare(tmp_path, "AlexNet", tags={"train_loss": "curve_a", "val_accuracy": "curve_b"})
    assert named.roles == {"train_loss": "curve_a", "val_accuracy": "curve_b"}
    assert "Not found by name: training accuracy, validation loss (name its tag: `train_accuracy=TAG`" in named.verdict[0]
    elsewhere = compare(tmp_path, "AlexNet", tags={"train_loss": "curve_a"}, ours=tmp_path / "no-checkpoints")
    assert elsewhere.ours == {} and "Ours is not drawn: this copy has no training record of alexnet." in elsewhere.verdict
    with pytest.raises(CurvesError, match="no tag 'curve_c'; it has: curve_a, curve_b, lr"):
        compare(tmp_path, "AlexNet", tags={"train_loss": "curve_c"})
    with pytest.raises(CurvesError, match="one of AlexNet"):
        compare(tmp_path, "VGG")


@pytest.mark.parametrize("names, expected", [
    (["Loss/train", "Loss/test", "Acc/train", "Acc/test"], ["Loss/train", "Acc/train", "Loss/test", "Acc/test"]),
    (["loss", "val_loss", "accuracy", "val_accuracy"], ["loss", "accuracy", "val_loss", "val_accuracy"]),
    (["trainLoss", "validLoss", "trainAcc", "validAcc", "validAcc/art_painting"],
     ["trainLoss", "trainAcc", "validLoss", "validAcc"]),
    (["training loss", "eval/accuracy", "per_step/train_loss", "loss/train"], ["loss/train", None, None, "eval/accuracy"]),
])
def test_each_curve_is_found_by_the_words_of_its_name(tmp_path, names, expected):
    write(tmp_path, {name: epochs(TRAIN_LOSS) for name in names})
    roles = find_roles(read_scalars(tmp_path))
    assert [roles.get(role) for role in ("train_loss", "train_accuracy", "val_loss", "val_accuracy")] == expected


def test_per_epoch_bins_by_the_steps_that_ended_each_epoch():
    points = [(step, float(step)) for step in range(1, 11)]
    assert per_epoch(points, 2, [4, 10]) == [2.5, 7.5]  # steps 1-4, then 5-10
    assert per_epoch(points, 2, None) == [3.0, 8.0]  # an equal share each
    assert per_epoch(points[:2], 2, None) == [1.0, 2.0]  # once an epoch: as logged


def test_the_verdict_names_the_mark_the_best_epoch_and_overfitting(tmp_path):
    write(tmp_path, {"Loss/train": epochs(TRAIN_LOSS), "Loss/val": epochs(VAL_LOSS),
                     "Accuracy/train": epochs(TRAIN_ACCURACY), "Accuracy/val": epochs(VAL_ACCURACY)})
    result = compare_curves(tmp_path, "AlexNet", show=False)
    assert set(result) >= {"part", "curves", "marks", "verdict"} and result["part"] == "AlexNet"
    assert result["curves"]["Loss/val"] == [[i, f32(v)] for i, v in enumerate(VAL_LOSS)]
    assert result["marks"] == [MARKS["AlexNet"].to_json()] and result["marks"][0]["value"] == 0.8
    verdict = "\n".join(result["verdict"])
    ours = [row.val_accuracy for row in read_history(REPO / "checkpoints" / "alexnet")]
    assert "✔ yours reached it at epoch 4 (0.8200)" in verdict
    assert f"Your best validation accuracy: 0.8300 at epoch 5; ours: {max(ours):.4f}" in verdict
    assert "Overfitting from epoch 5: validation loss rose from 0.4500 (epoch 4) to 0.6000 (epoch 6)" in verdict
    json.dumps(result)  # what the app returns as gr.JSON

    late = compare(tmp_path, "SentimentClassification")  # 85% in 50 epochs: not yet, in 6
    assert "not yet: your 6 epochs reached 0.8300 at best; the mark allows 50" in "\n".join(late.verdict)


def test_overfitting_needs_validation_loss_to_rise_while_training_loss_falls():
    assert overfitting_epoch(TRAIN_LOSS, VAL_LOSS) == 5
    assert overfitting_epoch(TRAIN_LOSS, sorted(VAL_LOSS, reverse=True)) is None  # still falling
    assert overfitting_epoch([1.0, 1.1, 1.2], [0.8, 0.9, 1.0]) is None  # both rose: not overfitting
    assert overfitting_epoch([1.0, 0.9, 0.8], [0.800, 0.801, 0.805]) is None  # within a validation pass's noise


def test_compare_curves_in_a_notebook_shows_the_figure_and_prints_the_verdict(tmp_path, capsys, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", shown.append, raising=False) if _has_ipython() else None
    write(tmp_path, {"Loss/train": epochs(TRAIN_LOSS), "Accuracy/val": epochs(VAL_ACCURACY)})
    result = compare_curves(str(tmp_path), "AlexNet")
    assert capsys.readouterr().out.strip().splitlines() == result["verdict"]
    if _has_ipython():
        (figure,) = shown
        assert [axes.get_title() for axes in figure.axes] == [
            "AlexNet: loss: training and validation", "AlexNet: training accuracy", "AlexNet: validation accuracy"]


def _has_ipython() -> bool:
    try:
        import IPython.display  # noqa: F401
    except ImportError:
        return False
    return True


# ----- Hostile logs: each a message, nothing written -----


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "events.out.tfevents.big"
    with big.open("wb") as file:
        file.truncate(MAX_BYTES + 1)  # sparse: no 50 MB written
    with pytest.raises(EventFileError, match="at most 50 MB"):
        read_scalars(big)
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:  # 51 MB of zeros, deflated to 50 KB
        zipped.writestr("run/events.out.tfevents.1", b"\0" * (MAX_BYTES + 2**20))
    with pytest.raises(EventFileError, match="hold 51 MB; at most 50 MB"):
        read_scalars(archive)


def test_damaged_and_empty_logs_are_messages(tmp_path):
    data = only_event_file(write(tmp_path / "run", {"loss": epochs(TRAIN_LOSS)})).read_bytes()
    cases = {
        "truncated": (data[:-3], "ends inside record"),
        "corrupt": (data[:-20] + bytes([data[-20] ^ 0xFF]) + data[-19:], "has a damaged record"),
        "empty": (b"", "is empty"),
        "text": (b"epoch,loss\n1,0.5\n", "is not a TensorBoard event file"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / f"events.out.tfevents.{name}"
        path.write_bytes(content)
        with pytest.raises(EventFileError, match=message):
            read_scalars(path)
    (tmp_path / "none").mkdir()
    with pytest.raises(EventFileError, match="holds no event file"):
        read_scalars(tmp_path / "none")
    with SummaryWriter(str(tmp_path / "nothing")):
        pass  # opened and closed: an event file with no scalars
    with pytest.raises(EventFileError, match="holds no scalars"):
        read_scalars(tmp_path / "nothing")
    not_zip = tmp_path / "fake.zip"
    not_zip.write_bytes(b"PK\x03\x04" + b"\0" * 40)
    with pytest.raises(EventFileError):
        read_scalars(not_zip)


def test_a_zip_member_path_never_leaves_memory(tmp_path):
    data = only_event_file(write(tmp_path / "run", {"loss/train": epochs(TRAIN_LOSS)})).read_bytes()
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../../outside/events.out.tfevents.1", data)
    before = sorted(tmp_path.parent.rglob("*"))
    assert read_scalars(archive)["../../outside/loss/train"].points == [(i, f32(v)) for i, v in enumerate(TRAIN_LOSS)]
    assert sorted(tmp_path.parent.rglob("*")) == before
