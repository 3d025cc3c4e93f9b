"""The three curves the assignment asks for, redrawn after every epoch."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from hw3core.checkpoints import PLOT_FILES  # noqa: E402

CURVES = {
    "train_loss": ("Loss: training and validation", "loss"),
    "train_accuracy": ("Training accuracy", "accuracy"),
    "val_accuracy": ("Validation accuracy", "accuracy"),
}
# Drawn beside a curve when a run records it: the training data scored without dropout (Task.train_probe).
EVAL_MODE = {"train_loss": "train_eval_loss"}
# Drawn on the same axes: validation loss beside training loss, where overfitting shows (it rises as training's falls).
SAME_AXES = {"train_loss": ("val_loss", "validation")}


def draw(folder: Path, history: list[dict], name: str, kept_epoch: int | None = None,
         selection: list[dict] | None = None) -> None:
    """The curves of checkpoint ``name``, titled with it (the app shows them without captions, which
    would cover the axis labels), with the epoch whose weights were kept marked. A run on all the data
    has no validation curve of its own: the one of the run that chose its settings (``selection``,
    that run's history) is drawn instead, labelled as such."""
    epochs = [row["epoch"] for row in history]
    for key, (title, ylabel) in CURVES.items():
        figure, axes = plt.subplots(figsize=(5, 3.2), dpi=100)
        values = [row.get(key) for row in history]
        eval_mode = key in EVAL_MODE and any(EVAL_MODE[key] in row for row in history)
        if all(value is None for value in values) and selection and all(key in row for row in selection):
            axes.plot([row["epoch"] for row in selection], [row[key] for row in selection], marker="o",
                      color="tab:gray", label="the run that chose the settings")
        elif all(value is None for value in values):  # a run on all the data has no validation split
            axes.text(0.5, 0.5, "no validation split:\ntrained on all the data", ha="center", va="center",
                      transform=axes.transAxes)
        else:
            beside = SAME_AXES.get(key)
            axes.plot(epochs, values, marker="o",
                      label="training pass" if eval_mode else "training" if beside else None)
            if beside and any(row.get(beside[0]) is not None for row in history):
                axes.plot(epochs, [row.get(beside[0]) for row in history], marker="^", label=beside[1])
            elif beside and selection and all(row.get(beside[0]) is not None for row in selection):
                axes.plot([row["epoch"] for row in selection], [row[beside[0]] for row in selection], marker="^",
                          color="tab:gray", label=f"{beside[1]} (the run that chose the settings)")
        if eval_mode:
            axes.plot(epochs, [row.get(EVAL_MODE[key]) for row in history], marker="s",
                      label="without dropout (eval mode)")
        if kept_epoch in epochs and values[epochs.index(kept_epoch)] is not None:
            axes.plot([kept_epoch], [values[epochs.index(kept_epoch)]], marker="*", markersize=16, color="tab:red",
                      linestyle="none", label=f"kept (epoch {kept_epoch})")
        if axes.get_legend_handles_labels()[1]:
            axes.legend(loc="best", fontsize="small")
        axes.set(title=f"{name}: {title.lower()}", xlabel="epoch", ylabel=ylabel)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        figure.tight_layout()
        tmp = folder / (PLOT_FILES[key] + ".tmp")
        figure.savefig(tmp, format="png")
        plt.close(figure)
        tmp.replace(folder / PLOT_FILES[key])
