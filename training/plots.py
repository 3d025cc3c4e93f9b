"""The three curves the assignment asks for, redrawn after every epoch."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from hw3core.checkpoints import PLOT_FILES  # noqa: E402

CURVES = {
    "train_loss": ("Training loss", "loss"),
    "train_accuracy": ("Training accuracy", "accuracy"),
    "val_accuracy": ("Validation accuracy", "accuracy"),
}


def draw(folder: Path, history: list[dict], name: str, kept_epoch: int | None = None) -> None:
    """The curves of checkpoint ``name``, titled with it (the app shows them without captions, which
    would cover the axis labels), with the epoch whose weights were kept marked."""
    epochs = [row["epoch"] for row in history]
    for key, (title, ylabel) in CURVES.items():
        figure, axes = plt.subplots(figsize=(5, 3.2), dpi=100)
        axes.plot(epochs, [row[key] for row in history], marker="o")
        if kept_epoch in epochs:
            row = history[epochs.index(kept_epoch)]
            axes.plot([kept_epoch], [row[key]], marker="*", markersize=16, color="tab:red", linestyle="none",
                      label=f"kept (epoch {kept_epoch})")
            axes.legend(loc="best", fontsize="small")
        axes.set(title=f"{name}: {title.lower()}", xlabel="epoch", ylabel=ylabel)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        figure.tight_layout()
        tmp = folder / (PLOT_FILES[key] + ".tmp")
        figure.savefig(tmp, format="png")
        plt.close(figure)
        tmp.replace(folder / PLOT_FILES[key])
