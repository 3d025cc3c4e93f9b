"""The run record of a checkpoint folder, typed: what training, compression and evaluation write, and
what the model card, checkpoints/README.md and the app's training panel read.

Three files make it: ``training.json`` (a ``RunRecord``), ``metrics.jsonl`` (one ``Epoch`` a line)
and, for a compressed AlexNet, ``compression.json`` (a ``CompressionRecord``). Each is read here
(``read_run``, ``read_training``, ``read_history``, ``read_compression``), and a file that cannot be
read is a ``RecordError`` naming it. A field a record does not have is None: records from before it
existed (the shipped checkpoints' among them) still load.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from hw3core.checkpoints import METRICS_FILE, RUN_FILE
from hw3core.compression import COMPRESSION_FILE

STAGES = ("dense", "pruned", "fine_tuned", "compressed")  # Deep Compression's, each scored before the next


class RecordError(ValueError):
    """A record file that is not JSON of the expected shape; the message names the file."""


def _known(cls, data: dict) -> dict:
    """The fields of ``cls`` that ``data`` has: a key a later version adds is not an error."""
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, not {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    return {key: value for key, value in data.items() if key in names}


class _Record:
    """JSON in and out: a field the JSON lacks takes its default, one the record lacks is left out."""

    @classmethod
    def from_json(cls, data: dict):
        return cls(**_known(cls, data))

    def to_json(self) -> dict:
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}


@dataclass
class Scores(_Record):
    """One pass over a validation set. A classifier's pass has the per-class figures too: balanced accuracy
    and loss (the means over classes), each class's accuracy, and the confusion matrix (row: true class)."""

    accuracy: float | None = None
    loss: float | None = None
    n: int | None = None
    balanced_accuracy: float | None = None
    balanced_loss: float | None = None
    per_class: dict[str, float] | None = None
    confusion: list[list[int]] | None = None


@dataclass
class Epoch(_Record):
    """One line of metrics.jsonl."""

    epoch: int
    train_loss: float | None = None  # None only in a selection run's summary, which keeps the losses it needs
    train_accuracy: float | None = None
    val_loss: float | None = None  # None: a run on all of the data
    val_accuracy: float | None = None
    epoch_seconds: float | None = None
    examples_per_second: float | None = None
    skipped_examples: int | None = None
    # The model in eval mode on a sample of its training data (a run with dropout).
    train_eval_loss: float | None = None
    train_eval_accuracy: float | None = None
    train_balanced_accuracy: float | None = None
    val_balanced_accuracy: float | None = None
    val_balanced_loss: float | None = None
    val_per_class: dict[str, float] | None = None
    val_confusion: list[list[int]] | None = None

    def to_json(self) -> dict:
        # A refit's missing validation figures stay as nulls: every row has the five figures of a run.
        return {**super().to_json(), "val_loss": self.val_loss, "val_accuracy": self.val_accuracy}

    @property
    def validation(self) -> Scores:
        return Scores(self.val_accuracy, self.val_loss, None, self.val_balanced_accuracy, self.val_balanced_loss,
                      self.val_per_class, self.val_confusion)


@dataclass
class SelectionRun(_Record):
    """The run on a validation split that chose a refit's settings, as the refit records it."""

    command: str
    kept_epoch: int | None = None
    split: dict | None = None
    history: list[Epoch] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict) -> "SelectionRun":
        known = _known(cls, data)
        return cls(**{**known, "history": [Epoch.from_json(row) for row in known.get("history", [])]})

    def to_json(self) -> dict:
        return {**super().to_json(), "history": [row.to_json() for row in self.history]}

    @property
    def kept(self) -> Epoch | None:
        return next((row for row in self.history if row.epoch == self.kept_epoch), None)


@dataclass
class CompressionRecord(_Record):
    """compression.json: the plan, the validation figures after each stage and every layer's encoding."""

    validation: dict[str, Scores]  # by stage (STAGES)
    dense_bytes: int
    compressed_bytes: int
    command: str = ""
    checkpoint: str = ""
    layers: list[dict] = field(default_factory=list)  # name, shape, bits, kept, positions, bytes, density
    method: str | None = None
    hardware: str | None = None
    precision: str | None = None
    wall_seconds: float | None = None
    fine_tune: dict = field(default_factory=dict)
    split: str = "the validation split recorded in training.json"

    @classmethod
    def from_json(cls, data: dict) -> "CompressionRecord":
        known = _known(cls, data)
        validation = dict(known["validation"])
        split = validation.pop("split", cls.split)
        return cls(**{**known, "split": split,
                      "validation": {stage: Scores.from_json(scores) for stage, scores in validation.items()}})

    def to_json(self) -> dict:
        record = {**super().to_json(), "validation": {"split": self.split, **{
            stage: scores.to_json() for stage, scores in self.validation.items()}}}
        del record["split"]
        return record


@dataclass
class RunRecord(_Record):
    """training.json, with the folder's metrics.jsonl (``history``) and compression.json (``compression``)."""

    command: str = ""
    task: str = ""  # the checkpoint name
    arguments: dict = field(default_factory=dict)
    hardware: str | None = None
    precision: str | None = None
    torch: str | None = None
    parameters: int | None = None
    wall_seconds: float | None = None
    data: str | None = None
    classes: list[str] | None = None
    vocabulary_size: int | None = None
    split: dict = field(default_factory=dict)
    selection_run: SelectionRun | None = None
    kept_epoch: int | None = None  # None: a run from before --keep, which kept its last epoch
    history: list[Epoch] = field(default_factory=list)
    compression: CompressionRecord | None = None

    @classmethod
    def from_json(cls, data: dict, history: list[Epoch] = (), compression: CompressionRecord | None = None):
        known = _known(cls, data)
        selection = known.get("selection_run")
        return cls(**{**known, "selection_run": SelectionRun.from_json(selection) if selection else None,
                      "history": list(history), "compression": compression})

    def to_json(self) -> dict:
        """training.json's content: the history and the compression have files of their own."""
        record = {key: value for key, value in super().to_json().items() if key not in ("history", "compression")}
        if self.selection_run is not None:
            record["selection_run"] = self.selection_run.to_json()
        return record

    @property
    def kept(self) -> Epoch:
        """The epoch whose weights the checkpoint holds (the last, for a run from before --keep)."""
        return next((row for row in self.history if row.epoch == self.kept_epoch), self.history[-1])

    @property
    def keep(self) -> str:
        return self.arguments.get("keep", "last")

    @property
    def epoch_seconds(self) -> float | None:
        seconds = [row.epoch_seconds for row in self.history if row.epoch_seconds is not None]
        return sum(seconds) / len(seconds) if seconds else None


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RecordError(f"`{path}` cannot be read: {error}") from None


def read_history(folder: str | Path) -> list[Epoch]:
    """The per-epoch metrics a training run appended, oldest first ([] if none)."""
    path = Path(folder) / METRICS_FILE
    if not path.is_file():
        return []
    try:
        return [Epoch.from_json(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as error:
        raise RecordError(f"`{path}` cannot be read: {error}") from None


def read_compression(folder: str | Path) -> CompressionRecord | None:
    path = Path(folder) / COMPRESSION_FILE
    if not path.is_file():
        return None
    try:
        return CompressionRecord.from_json(_read_json(path))
    except (KeyError, TypeError) as error:
        raise RecordError(f"`{path}` is not a compression record: {error!r}") from None


def read_training(folder: str | Path, history: list[Epoch] = (), compression: CompressionRecord | None = None
                  ) -> RunRecord | None:
    """The folder's training.json (with the ``history`` and ``compression`` given, none by default), or None
    where it has none: what reads the run's settings and split, not its epochs."""
    path = Path(folder) / RUN_FILE
    if not path.is_file():
        return None
    try:
        return RunRecord.from_json(_read_json(path), history, compression)
    except (KeyError, TypeError) as error:
        raise RecordError(f"`{path}` is not a training record: {error!r}") from None


def read_run(folder: str | Path) -> RunRecord | None:
    """The folder's run record, or None where it has no training.json or no epoch in metrics.jsonl."""
    history = read_history(folder)
    return read_training(folder, history, read_compression(folder)) if history else None
