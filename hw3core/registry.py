"""The table of models: one entry per checkpoint the suite trains, ships and serves.

A checkpoint's name is its key everywhere: the folder under checkpoints/, the Hub repo's suffix
(``hw3-NAME``), the training script's ``--variant``/``--cell`` choice and the app's lookups. Its
recipe is the training script's defaults for it, so the command ``ModelSpec.commands`` names
trains what ships. Adding a variant means adding one entry here.
"""

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from hw3core.alexnet import AlexNet, AlexNetAvgPooling, AlexNetLargeKernel
from hw3core.text_models import SentimentClassifier, ShakespeareWriter

DEFAULT_ROOT = Path("checkpoints")

# Each model's recipe, as the training script's flags parse (flag --batch-size is batch_size): what its
# command trains when given no other flags. One line per model; the runs that chose them are in docs/training.md.
_ALEXNET = dict(epochs=5, batch_size=32, lr=5e-4, weight_decay=0.05, schedule="cosine", warmup=0.1, label_smoothing=0.1,
                crop_scale=0.8, sampling="balanced")
_SENTIMENT = dict(epochs=8, batch_size=128, lr=2e-3, weight_decay=0.05, schedule="cosine", warmup=0.05, dropout=0.2,
                  tail_length=128)
# The writers' settings are chosen by a run on a validation split; the shipped weights are their refit on all
# of the text (ModelSpec.refit: the flags the refit adds).
_WRITER = dict(epochs=10, batch_size=32, lr=2e-3, weight_decay=0.1, schedule="cosine", warmup=0.02, dropout=0.2,
               carry_state=True)
RECIPES = {
    # Halving the batch to 16 (twice the steps in the same epochs) raised AlexNet's balanced validation accuracy
    # by 1.4 points; it lowered AlexNetLargeKernel's by 1.6, and AlexNetAvgPooling's once compressed by 0.7.
    "alexnet": {**_ALEXNET, "batch_size": 16},
    "alexnet-large-kernel": _ALEXNET,
    "alexnet-avg-pooling": _ALEXNET,
    "sentiment-gru": _SENTIMENT,
    "sentiment-lstm": _SENTIMENT,
    "shakespeare-gru": _WRITER,
    "shakespeare-lstm": _WRITER,
}
WRITER_REFIT = {"val_fraction": 0, "keep": "last"}  # no validation split: the last epoch is kept
# training.compress's flags for an AlexNet, where its defaults do not suit: pruned to half, an earlier
# AlexNetLargeKernel's 21x21 and 7x7 convolutions lost more than a point of validation accuracy, so they keep 80%.
COMPRESSION = {"alexnet-large-kernel": {"conv_density": 0.8}}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    cls: type[nn.Module]
    title: str  # what the app and the reports call it
    task: str  # "domain", "sentiment" or "shakespeare": the part of the assignment, training.evaluate's task
    script: str  # the training module, run as ``python -m``
    choice: tuple[str, str]  # the script's flag that picks this model, and its value: ("--cell", "gru")
    data: tuple[str, str]  # the script's data flag and the data set a command names: ("--data", "input.txt")
    recipe: dict = field(default_factory=dict)
    refit: dict | None = None  # shipped as a refit on all the data: the flags that refit adds to the recipe
    compression: dict = field(default_factory=dict)  # training.compress's defaults for it (an AlexNet)

    @property
    def cell(self) -> str:
        """The value of the script's flag that picks it: its cell ("gru"), or an AlexNet's variant (its name)."""
        return self.choice[1]

    def commands(self, root: str | Path = DEFAULT_ROOT) -> tuple[str, ...]:
        """What makes this checkpoint under ``root``, in order: its training command, or for a refit the run
        on the validation split that chooses the settings, then the refit that ships."""
        base = f"python -m {self.script} {' '.join(self.choice)} {' '.join(self.data)}"
        out = "" if Path(root) == DEFAULT_ROOT else f" --out {Path(root) / self.name}"
        if self.refit is None:
            return (base + out,)
        chosen = Path(root) / f"{self.name}-selection"
        flags = " ".join(f"--{key.replace('_', '-')} {value}" for key, value in self.refit.items())
        return f"{base} --out {chosen}", f"{base} {flags} --selection-run {chosen}{out}"

    def command(self, root: str | Path = DEFAULT_ROOT) -> str:
        """The commands as one line of shell: what a message tells a user to run."""
        return " && ".join(self.commands(root))


def _alexnet(name: str, cls: type[nn.Module]) -> ModelSpec:
    return ModelSpec(name, cls, cls.__name__, "domain", "training.train_alexnet", ("--variant", name),
                     ("--data", "PACS_DIR"), RECIPES[name], compression=COMPRESSION.get(name, {}))


def _sentiment(cell: str) -> ModelSpec:
    name = f"sentiment-{cell}"
    return ModelSpec(name, SentimentClassifier, cell.upper(), "sentiment", "training.train_sentiment",
                     ("--cell", cell), ("--data", "aclImdb_v1.tar.gz"), RECIPES[name])


def _writer(cell: str) -> ModelSpec:
    name = f"shakespeare-{cell}"
    return ModelSpec(name, ShakespeareWriter, f"{cell.upper()} writer", "shakespeare", "training.train_shakespeare",
                     ("--cell", cell), ("--data", "input.txt"), RECIPES[name], WRITER_REFIT)


# In the order the app shows them and its API returns them.
MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in [
    _alexnet("alexnet", AlexNet),
    _alexnet("alexnet-large-kernel", AlexNetLargeKernel),
    _alexnet("alexnet-avg-pooling", AlexNetAvgPooling),
    _sentiment("gru"),
    _sentiment("lstm"),
    _writer("gru"),
    _writer("lstm"),
]}


def spec_of(task: str, cell: str) -> ModelSpec:
    """The model of ``task`` that ``cell`` picks (as the training script's flag does): ("sentiment", "gru")."""
    for spec in models_of(task).values():
        if spec.cell == cell:
            return spec
    raise KeyError(f"no {task} model is picked by {cell!r}")


def models_of(task: str) -> dict[str, ModelSpec]:
    return {name: spec for name, spec in MODELS.items() if spec.task == task}


def titles(task: str) -> dict[str, str]:
    """Checkpoint name -> title, for the models of one task in the table's order."""
    return {name: spec.title for name, spec in models_of(task).items()}


ALEXNET_VARIANTS: dict[str, type[nn.Module]] = {name: spec.cls for name, spec in models_of("domain").items()}
