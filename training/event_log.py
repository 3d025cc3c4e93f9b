"""TensorBoard event files beside a run's metrics.jsonl, so ``tensorboard --logdir checkpoints`` shows
every run, and a student's runs beside ours (``--logdir_spec ours:checkpoints,mine:runs``).

Per epoch (step = epoch number): training and validation loss and accuracy, and for an AlexNet the
balanced figures and each domain's validation accuracy. Per optimizer step (step = global step): the
training loss and learning rate. The tags name their curve and phase in words, as hw3core.curves
reads a student's.

Run as a module, it writes the event files of the shipped checkpoints from their records (no training):
    python -m training.event_log [--checkpoints checkpoints]
"""

import argparse
import os
import time
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from hw3core.event_files import EVENT_FILE_MARK
from hw3core.records import RecordError, read_run
from hw3core.registry import MODELS

EPOCH_TAGS = {
    "train_loss": "loss/train",
    "val_loss": "loss/validation",
    "train_accuracy": "accuracy/train",
    "val_accuracy": "accuracy/validation",
    "train_eval_loss": "loss/train_without_dropout",  # the training data scored in eval mode (Task.train_probe)
    "train_eval_accuracy": "accuracy/train_without_dropout",
    "train_balanced_accuracy": "balanced_accuracy/train",
    "val_balanced_accuracy": "balanced_accuracy/validation",
    "val_balanced_loss": "balanced_loss/validation",
}
PER_CLASS_TAG = "accuracy_per_domain/validation/{}"
STEP_LOSS_TAG = "per_step/train_loss"
STEP_RATE_TAG = "per_step/learning_rate"
SELECTION_RUN = "selection-run"  # a refit's subfolder: the run on a validation split that chose its settings


def remove_event_files(folder: Path) -> None:
    """A fresh run's folder starts without the event files of the run it replaces (and their selection run's)."""
    for file in [*folder.glob(f"*{EVENT_FILE_MARK}*"), *(folder / SELECTION_RUN).glob(f"*{EVENT_FILE_MARK}*")]:
        file.unlink()


def write_epoch(writer: SummaryWriter, row: dict) -> None:
    """One line of metrics.jsonl: each figure it has, at step = its epoch."""
    epoch = row["epoch"]
    for key, tag in EPOCH_TAGS.items():
        if row.get(key) is not None:
            writer.add_scalar(tag, row[key], epoch)
    for label, accuracy in (row.get("val_per_class") or {}).items():
        writer.add_scalar(PER_CLASS_TAG.format(label), accuracy, epoch)


def write_steps(writer: SummaryWriter, first_step: int, losses: list[float], rates: list[float]) -> None:
    """An epoch's optimizer steps: the loss of each training batch and the learning rate it was taken with."""
    for step, (loss, rate) in enumerate(zip(losses, rates, strict=True), first_step):
        writer.add_scalar(STEP_LOSS_TAG, loss, step)
        writer.add_scalar(STEP_RATE_TAG, rate, step)


def write_history(folder: Path, history: list[dict]) -> Path:
    """An event file of the epochs ``history`` holds (metrics.jsonl's rows), named without the machine that
    wrote it (SummaryWriter names its files after the host); returns it."""
    scratch = folder / ".writing"
    scratch.mkdir(parents=True, exist_ok=True)
    with SummaryWriter(str(scratch)) as writer:
        for row in history:
            write_epoch(writer, row)
    (written,) = scratch.iterdir()
    portable = folder / f"events.out.{EVENT_FILE_MARK}.{int(time.time())}.metrics-jsonl"
    os.replace(written, portable)
    scratch.rmdir()
    return portable


def write_checkpoint(folder: Path) -> list[Path]:
    """The event files of a checkpoint folder from its records: its run, and a refit's selection run."""
    record = read_run(folder)
    if record is None:
        raise RecordError(f"`{folder}` has no training record (training.json and metrics.jsonl)")
    remove_event_files(folder)
    files = [write_history(folder, [row.to_json() for row in record.history])]
    if record.selection_run and record.selection_run.history:
        files.append(write_history(folder / SELECTION_RUN, [row.to_json() for row in record.selection_run.history]))
    return files


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    args = parser.parse_args(argv)
    for name in MODELS:
        folder = args.checkpoints / name
        if not folder.is_dir():
            print(f"{folder}: not there, skipped")
            continue
        for file in write_checkpoint(folder):
            print(f"{file} ({file.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
