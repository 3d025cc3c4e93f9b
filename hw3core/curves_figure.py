"""The comparison drawn: the assignment's three figures, the student's curves beside ours on the same axes.

Training and validation loss share one plot, where overfitting shows; each accuracy has its own, with the
assignment's mark where it applies. A ``matplotlib.figure.Figure`` built without pyplot: no global state,
so the app's concurrent requests never draw into one another's figure, and a notebook shows it once.
"""

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from hw3core.curves import ROLES, Comparison, Mark

PANELS = (("Loss: training and validation", ("train_loss", "val_loss"), "loss"),
          ("Training accuracy", ("train_accuracy",), "accuracy"),
          ("Validation accuracy", ("val_accuracy",), "accuracy"))
COLOURS = {"train_loss": "tab:blue", "val_loss": "tab:orange", "train_accuracy": "tab:blue", "val_accuracy": "tab:orange"}


def draw(comparison: Comparison) -> Figure:
    figure = Figure(figsize=(15, 4.2), dpi=100, layout="constrained")
    ours = comparison.ours_name or "ours"
    for axes, (title, roles, ylabel) in zip(figure.subplots(1, 3), PANELS, strict=True):
        for role in roles:
            name = ROLES[role]
            if role in comparison.yours:
                values = comparison.yours[role]
                axes.plot(range(1, len(values) + 1), values, marker="o", color=COLOURS[role], label=f"yours: {name}")
            our_values = comparison.ours.get(role, [])
            if any(value is not None for value in our_values):
                axes.plot(range(1, len(our_values) + 1), our_values, marker="s", markersize=4, linestyle="--",
                          color=COLOURS[role], alpha=0.55, label=f"{ours}: {name}")
        for mark in comparison.marks:
            if mark.role in roles:
                _draw_mark(axes, mark)
        if not axes.get_legend_handles_labels()[1]:
            axes.text(0.5, 0.5, "not in your log", ha="center", va="center", transform=axes.transAxes, color="gray")
        else:
            axes.legend(loc="best", fontsize="small")
        axes.set(title=f"{comparison.part}: {title.lower()}", xlabel="epoch", ylabel=ylabel)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
    return figure


def _draw_mark(axes, mark: Mark) -> None:
    """The mark's figure as a line, and its last epoch (and window) where the runs come near it."""
    label = f"mark: {mark.value:g} by epoch {mark.by_epoch}"
    axes.axhline(mark.value, color="tab:red", linestyle=":", linewidth=1.2, label=label)
    last_drawn = max((len(line.get_xdata()) for line in axes.get_lines()), default=0)
    if mark.by_epoch > last_drawn + 2:
        return  # the mark's epoch far past the runs' (50 against 8) would squeeze them into a corner
    axes.axvline(mark.by_epoch, color="tab:red", linestyle=":", linewidth=1.2)
    if mark.from_epoch:
        axes.axvspan(mark.from_epoch, mark.by_epoch, color="tab:red", alpha=0.06)
