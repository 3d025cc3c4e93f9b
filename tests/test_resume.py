"""Checkpoints survive a kill at any moment, --resume continues to the very same result as a run
that was never interrupted, and nothing a checkpoint folder holds is ever unpickled."""

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from conftest import assert_numerically_close
from hw3core.checkpoints import PLOT_FILES, CheckpointError, load_local
from hw3core.registry import MODELS
from tiny_data import REPO, check_ok, make_text, python_env, read_jsonl, run_module
from training import evaluate, train_shakespeare
from training.loop import RESUME_FILE

pytest_plugins = ["tiny_data_fixtures"]  # tiny_pacs, tiny_imdb, tiny_text, real_data

# Each epoch takes a good fraction of a second, so a kill can land in the middle of the run.
RUN = ["--limit", "80", "--history", "50", "--embedding-dim", "16", "--hidden-size", "64", "--batch-size", "4",
       "--lr", "0.01", "--seed", "3",
       # Independent windows without dropout, and a constant rate: a run of 2 epochs resumed to 3 is then the run
       # of 3 (a cosine decays over the epochs asked for).
       "--no-carry-state", "--dropout", "0", "--schedule", "constant", "--warmup", "0", "--weight-decay", "0"]
# The schedule of every shipped recipe: a kill in a warm-up or a decay resumes at the rate the run had reached.
WARMUP_AND_COSINE = [*RUN, "--schedule", "cosine", "--warmup", "0.2", "--weight-decay", "0.1"]
EPOCHS = 3
TINY = ["--limit", "2", "--history", "10", "--no-carry-state"]  # 21 characters: too few for the recipe's 32 streams
COMPARED = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "skipped_examples")


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    return make_text(tmp_path_factory.mktemp("resume") / "input.txt", 10_000)


def train(text, folder, flags) -> Path:
    out = folder / "shakespeare-gru"
    train_shakespeare.main(["--data", str(text), *flags, "--epochs", str(EPOCHS), "--out", str(out)])
    return out


@pytest.fixture(scope="module")
def uninterrupted(text, tmp_path_factory):
    return train(text, tmp_path_factory.mktemp("uninterrupted"), RUN)


def assert_same_run(out, reference) -> None:
    weights, expected = load_file(out / "model.safetensors"), load_file(reference / "model.safetensors")
    assert weights.keys() == expected.keys()
    for name in expected:
        assert_numerically_close(weights[name], expected[name], msg=name)
    rows, expected_rows = read_jsonl(out / "metrics.jsonl"), read_jsonl(reference / "metrics.jsonl")
    assert len(rows) == len(expected_rows) == EPOCHS
    for row, expected_row in zip(rows, expected_rows, strict=True):
        for key in COMPARED:
            assert row[key] == pytest.approx(expected_row[key], abs=1e-4), (row["epoch"], key)


def assert_whole_on_disk(out) -> int:
    """What a killed run left is readable; returns the number of epochs resume.pt holds."""
    assert isinstance(json.loads((out / "config.json").read_text()), dict)
    assert load_file(out / "model.safetensors")
    load_local(MODELS["shakespeare-gru"].cls, out)
    assert json.loads((out / "training.json").read_text())["command"]
    rows = read_jsonl(out / "metrics.jsonl")  # every line whole JSON
    for file in PLOT_FILES.values():
        with Image.open(out / file) as image:
            image.verify()
    state = torch.load(out / RESUME_FILE, weights_only=True)
    done = len(json.loads(state["history"]))
    assert done >= 1 and len(rows) in (done, done + 1)  # metrics may be one epoch ahead of the resume state
    return done


@pytest.mark.parametrize("flags", [RUN, WARMUP_AND_COSINE], ids=["constant", "warmup-and-cosine"])
def test_resume_after_sigkill_matches_the_uninterrupted_run(text, uninterrupted, tmp_path, flags):
    reference = uninterrupted if flags is RUN else train(text, tmp_path / "uninterrupted", flags)
    out = tmp_path / "shakespeare-gru"
    argv = [sys.executable, "-m", "training.train_shakespeare", "--data", str(text), *flags, "--epochs", str(EPOCHS),
            "--out", str(out)]
    process = subprocess.Popen(argv, cwd=REPO, env=python_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (out / RESUME_FILE).exists():  # written last in an epoch: the first epoch is saved
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "no epoch finished in 120 s"
            time.sleep(0.02)
        first_epoch = read_jsonl(out / "metrics.jsonl")[0]["epoch_seconds"]
        delay = random.uniform(0, 0.5 * first_epoch)  # somewhere in epoch 2 or while saving it
        time.sleep(delay)
        assert process.poll() is None, f"the run finished before the kill ({delay:.3f} s after epoch 1)"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
        process.stderr.close()

    done = assert_whole_on_disk(out)
    assert done < EPOCHS, f"killed {delay:.3f} s after epoch 1, yet all epochs were saved"

    result = check_ok(run_module("training.train_shakespeare", "--data", text, *flags, "--epochs", EPOCHS,
                                 "--out", out, "--resume"))
    assert f"resuming {out} after epoch {done}" in result.stdout
    assert_same_run(out, reference)
    assert not list(out.glob("*.tmp")) and not (out / ".saving").exists()


def test_resume_continues_a_shorter_run_exactly(text, uninterrupted, tmp_path, capsys):
    out = tmp_path / "shakespeare-gru"
    train_shakespeare.main(["--data", str(text), *RUN, "--epochs", "2", "--out", str(out)])
    capsys.readouterr()
    train_shakespeare.main(["--data", str(text), *RUN, "--epochs", str(EPOCHS), "--out", str(out), "--resume"])
    printed = capsys.readouterr().out
    assert f"resuming {out} after epoch 2" in printed
    assert [json.loads(line)["epoch"] for line in printed.splitlines() if line.startswith("{")] == [3]  # one more
    assert_same_run(out, uninterrupted)


def test_resume_of_a_finished_run_changes_nothing(text, uninterrupted, tmp_path):
    history = train_shakespeare.main(["--data", str(text), *RUN, "--epochs", str(EPOCHS), "--out", str(uninterrupted),
                                   "--resume"])
    assert [row["epoch"] for row in history] == list(range(1, EPOCHS + 1))
    assert_same_run(uninterrupted, uninterrupted)


def test_resume_with_nothing_to_resume_starts_from_scratch(tiny_text, tmp_path, capsys):
    out = tmp_path / "fresh"
    history = train_shakespeare.main(["--data", str(tiny_text), *TINY, "--embedding-dim", "4",
                                   "--hidden-size", "4", "--epochs", "1", "--out", str(out), "--resume"])
    assert len(history) == 1 and "nothing to resume" in capsys.readouterr().out
    assert (out / RESUME_FILE).is_file()


# ----- Never a pickle -----


class Payload:
    """Unpickling this creates ``marker``: proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_a_malicious_resume_file_is_refused(tiny_text, tmp_path):
    out, marker = tmp_path / "run", tmp_path / "pwned"
    out.mkdir()
    torch.save({"model": Payload(marker), "history": "[]"}, out / RESUME_FILE)
    with pytest.raises(SystemExit) as exit_info:
        train_shakespeare.main(["--data", str(tiny_text), *TINY, "--epochs", "1",
                             "--out", str(out), "--resume"])
    assert "cannot resume from" in str(exit_info.value.code) and "UnpicklingError" in str(exit_info.value.code)
    assert not marker.exists()

    control = tmp_path / "control"  # the payload does run when a pickle is loaded without weights_only
    torch.save(Payload(control), tmp_path / "control.pt")
    torch.load(tmp_path / "control.pt", weights_only=False)
    assert control.exists()


def test_malicious_weights_are_refused(tiny_text, tmp_path, capsys):
    checkpoint, marker = tmp_path / "shakespeare-gru", tmp_path / "pwned"
    train_shakespeare.main(["--data", str(tiny_text), *TINY, "--embedding-dim", "4",
                         "--hidden-size", "4", "--epochs", "1", "--out", str(checkpoint)])
    torch.save({"embedding.weight": Payload(marker)}, checkpoint / "model.safetensors")
    with pytest.raises(CheckpointError):
        load_local(MODELS["shakespeare-gru"].cls, checkpoint)
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["shakespeare", "--checkpoint", str(checkpoint), "--data", str(tiny_text)])
    assert "model.safetensors" in str(exit_info.value.code)

    (checkpoint / "model.safetensors").unlink()  # a pickle under the old name is not a fallback either
    torch.save({"embedding.weight": Payload(marker)}, checkpoint / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="missing"):
        load_local(MODELS["shakespeare-gru"].cls, checkpoint)
    assert not marker.exists()
