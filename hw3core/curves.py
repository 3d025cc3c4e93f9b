"""A student's training curves beside ours and the assignment's marks: is my curve normal, where should
it be by epoch 3, am I overfitting?

The student's TensorBoard log (``hw3core.event_files``) is read with their own tag names: the training and
validation loss and accuracy are found by the words in each name (``Loss/train``, ``val_acc``, Keras's
``validation/epoch_accuracy``...) or named by the user (``tags={"val_accuracy": "my tag"}``). Each is put
on an epoch axis (a curve logged per step is averaged over each epoch's steps), accuracies in percent are
read as fractions, and the verdict says, in words, where the mark was reached, how the best validation
figure compares with ours, and whether validation loss rose while training loss fell.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

from hw3core.event_files import Curve, EventFileError, read_scalars
from hw3core.records import RecordError, read_run
from hw3core.registry import ALEXNET_VARIANTS, spec_of

PARTS = ("AlexNet", "AlexNetLargeKernel", "AlexNetAvgPooling", "SentimentClassification", "SentenceGeneration")
CHOICES = ("auto", *PARTS)
ROLES = {"train_loss": "training loss", "train_accuracy": "training accuracy",
         "val_loss": "validation loss", "val_accuracy": "validation accuracy"}
# Ours for each part: the registry's task of its class (for the text parts, the checkpoint of the cell asked for;
# the GRU by default, the cell the assignment requires).
TASKS = {"SentimentClassification": "sentiment", "SentenceGeneration": "shakespeare"}
OUR_CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"  # in a checkout; pass ``ours`` elsewhere
# A validation loss this much (relative) above its lowest, while training loss went on falling, is overfitting;
# below it, the noise of one validation pass.
OVERFITTING_RISE = 0.02

_LOSS = {"loss", "nll", "xent", "cross", "entropy", "ce"}
_ACCURACY = {"acc", "accuracy", "accu", "correct"}
_VALIDATION = {"val", "valid", "validation", "validate", "eval", "evaluation", "test", "dev"}
_TRAIN = {"train", "training", "trn"}
_NEUTRAL = {"epoch", "epochs", "avg", "average", "mean", "per", "total", "overall", "set", "data", "split", "metrics",
            "scalars", "model", "my", "the", "of", "and"}


class CurvesError(ValueError):
    """What the user can fix: the log, the part, or the tags; the message says how."""


@dataclass(frozen=True)
class Mark:
    """One of the assignment's marks: a figure a curve should reach by an epoch."""

    role: str
    value: float
    by_epoch: int
    text: str  # as the assignment puts it
    from_epoch: int | None = None  # "in 3 to 5 epochs"

    @property
    def lower_is_better(self) -> bool:
        return self.role.endswith("loss")

    def reached(self, value: float) -> bool:
        return value <= self.value if self.lower_is_better else value >= self.value

    def to_json(self) -> dict:
        return {"curve": self.role, "value": self.value, "by_epoch": self.by_epoch, "from_epoch": self.from_epoch,
                "text": self.text}


_PART_A = Mark("val_accuracy", 0.80, 5, "80% validation accuracy in 3 to 5 epochs (Part A)", from_epoch=3)
MARKS = {
    "AlexNet": _PART_A,
    # Part B trains its variants "with the optimal hyperparameters from Part A": Part A's mark is theirs to compare with.
    "AlexNetLargeKernel": _PART_A,
    "AlexNetAvgPooling": _PART_A,
    "SentimentClassification": Mark("val_accuracy", 0.85, 50, "85% validation accuracy in 50 epochs (Part C, the GRU)"),
    "SentenceGeneration": Mark("train_loss", 1.2, 10, "a loss of 1.2 in 10 epochs (Part D)"),
}


@dataclass
class Comparison:
    """The student's curves and ours by epoch (index 0 is epoch 1; None where a run has no figure)."""

    part: str
    curves: dict[str, Curve]  # the student's curves that were used, by name
    roles: dict[str, str]  # role -> the name of the student's curve
    yours: dict[str, list[float]]
    ours: dict[str, list[float | None]]
    ours_name: str | None
    marks: list[Mark]
    verdict: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"part": self.part,
                "curves": {name: [[step, value] for step, value in curve.points] for name, curve in self.curves.items()},
                "roles": self.roles, "marks": [mark.to_json() for mark in self.marks], "verdict": self.verdict,
                "by_epoch": {"yours": self.yours, "ours": self.ours}, "ours": self.ours_name}


def words(name: str) -> list[str]:
    """``Loss/trainEpoch`` -> ["loss", "train", "epoch"]."""
    return re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", name).lower())


def _kind(curve: Curve) -> tuple[str | None, str | None, int]:
    """(metric, phase, words that say neither): the tag's own words first, its run folder's (Keras's train/
    and validation/) for a phase the tag does not name."""
    tag = words(curve.tag)
    metric = "loss" if _LOSS & set(tag) else "accuracy" if _ACCURACY & set(tag) else None
    if _LOSS & set(tag) and _ACCURACY & set(tag):
        metric = None  # "loss_and_acc": not one curve of either
    phase = None
    for group in (tag, words(curve.run)):
        if _VALIDATION & set(group):
            phase = "val"
        elif _TRAIN & set(group):
            phase = "train"
        if phase:
            break
    other = len([word for word in tag if word not in _LOSS | _ACCURACY | _VALIDATION | _TRAIN | _NEUTRAL])
    return metric, phase, other


def _named(name: str, curves: dict[str, Curve]) -> str:
    """The curve a user names: by its full name, or by its tag alone where only one run has that tag."""
    if name in curves:
        return name
    same_tag = [full for full, curve in curves.items() if curve.tag == name]
    return same_tag[0] if len(same_tag) == 1 else name


def find_roles(curves: dict[str, Curve], tags: dict[str, str] | None = None) -> dict[str, str]:
    """role -> curve name: the user's ``tags`` first, then the name that says the role with the fewest other
    words (``accuracy/validation`` before ``accuracy/validation/art_painting``), the latest run on a tie. A
    loss or accuracy that names no phase is the training one when no name says "train"."""
    tags = dict(tags or {})
    unknown = [role for role in tags if role not in ROLES]
    if unknown:
        raise CurvesError(f"{', '.join(unknown)}: the curves to name are {', '.join(ROLES)}.")
    tags = {role: _named(name, curves) for role, name in tags.items()}
    missing = [name for name in tags.values() if name not in curves]
    if missing:
        raise CurvesError(f"Your log has no tag {', '.join(map(repr, missing))}; it has: {', '.join(curves)}.")
    roles = dict(tags)
    taken = set(tags.values())
    kinds = {name: _kind(curve) for name, curve in curves.items()}
    for metric in ("loss", "accuracy"):
        phased = {phase: [name for name, (m, p, _) in kinds.items() if m == metric and p == phase and name not in taken]
                  for phase in ("train", "val", None)}
        if not phased["train"]:
            phased["train"] = phased[None]
        for phase in ("train", "val"):
            role = f"{phase}_{metric}"
            if role in roles or not phased[phase]:
                continue
            roles[role] = min(phased[phase], key=lambda name: (kinds[name][2], -curves[name].wall_time))
    return {role: roles[role] for role in ROLES if role in roles}


def _epoch_count(curves: dict[str, Curve], roles: dict[str, str]) -> tuple[int, list[int] | None]:
    """How many epochs the run has, and the steps that end them where the log says so: validation is
    logged once an epoch, so its points count the epochs; when their steps are the global step (not
    0..E or 1..E), they are where each epoch ended."""
    for role in ("val_accuracy", "val_loss"):
        if role in roles:
            steps = [step for step, _ in curves[roles[role]].points]
            epochs = len(steps)
            numbered = steps in (list(range(epochs)), list(range(1, epochs + 1)))
            return epochs, None if numbered else steps
    return min(len(curves[name].points) for name in roles.values()), None


def per_epoch(points: list[tuple[int, float]], epochs: int, ends: list[int] | None) -> list[float]:
    """A curve's value at each epoch: its points themselves when logged once an epoch, else each epoch's mean
    over its steps (those up to the step that ended the epoch, or an equal share of the points)."""
    values = [value for _, value in points]
    if len(points) <= epochs:
        return values
    if ends:
        bins, start = [], float("-inf")
        for end in ends:
            bins.append([value for step, value in points if start < step <= end])
            start = end
        if all(bins):
            return [sum(b) / len(b) for b in bins]
    size, extra = divmod(len(values), epochs)
    means, at = [], 0
    for epoch in range(epochs):
        share = values[at:at + size + (epoch < extra)]
        means.append(sum(share) / len(share))
        at += len(share)
    return means


def _ours(folder: Path) -> dict[str, list[float | None]]:
    """Our run's curves by epoch, from its record; a refit on all the data has the validation curves of
    the run that chose its settings."""
    record = read_run(folder)
    if record is None:
        return {}
    rows = record.history
    curves = {role: [getattr(row, role) for row in rows] for role in ROLES}
    selection = record.selection_run.history if record.selection_run else []
    for role in ("val_loss", "val_accuracy"):
        if all(value is None for value in curves[role]) and selection:
            curves[role] = [getattr(row, role) for row in selection]
    return {role: values for role, values in curves.items() if any(value is not None for value in values)}


def _part(part) -> str:
    """A part's name, or a model (or its class) whose class name is one."""
    name = part if isinstance(part, str) else getattr(part, "__name__", type(part).__name__)
    if name == "auto":
        raise CurvesError(f"Which part is this run? Name its model: one of {', '.join(PARTS)}.")
    if name not in PARTS:
        raise CurvesError(f"The part must be one of {', '.join(PARTS)}, not {name!r}.")
    return name


def compare(log, part, tags: dict[str, str] | None = None, ours: str | Path | None = None,
            cell: str = "gru") -> Comparison:
    """The student's log (a path: event file, folder or zip) against our run of ``part`` and its mark."""
    part = _part(part)
    try:
        curves = read_scalars(log)
    except EventFileError as error:
        raise CurvesError(str(error)) from None
    roles = find_roles(curves, tags)
    if not roles:
        raise CurvesError("No loss or accuracy curve was found by its name among your tags ("
                          f"{', '.join(list(curves)[:20])}): say which is which, e.g. "
                          "tags={'train_loss': ..., 'train_accuracy': ..., 'val_accuracy': ...}.")
    epochs, ends = _epoch_count(curves, roles)
    notes = []
    yours = {}
    for role, name in roles.items():
        points = curves[name].points
        values = per_epoch(points, epochs, ends)
        how = f"`{name}`"
        if len(points) > epochs:
            how += f" (logged per step: each epoch's mean over its steps, {len(points):,} points)"
        if role.endswith("accuracy") and max(values) > 1.0:
            values = [value / 100 for value in values]
            how += " (in percent)"
        yours[role] = values
        notes.append(f"{ROLES[role]} {how}")
    name = spec_of(TASKS[part], cell).name if part in TASKS else next(
        key for key, cls in ALEXNET_VARIANTS.items() if cls.__name__ == part)
    folder = Path(ours or OUR_CHECKPOINTS) / name
    try:
        our_curves = _ours(folder) if folder.is_dir() else {}
    except RecordError:
        our_curves = {}
    comparison = Comparison(part, {roles[role]: curves[roles[role]] for role in roles}, roles, yours, our_curves,
                            name if our_curves else None, [MARKS[part]])
    missing = [role for role in ROLES if role not in roles]
    comparison.verdict = [
        f"Read from your log ({epochs} epoch{'s' if epochs != 1 else ''}): {'; '.join(notes)}."
        + (f" Not found by name: {', '.join(ROLES[role] for role in missing)} (name its tag: `{missing[0]}=TAG` in "
           f"the app, `tags={{'{missing[0]}': TAG}}` in a notebook)." if missing else ""),
        *[_mark_verdict(mark, yours, our_curves) for mark in comparison.marks],
        _best_verdict(part, yours, our_curves),
        _overfitting_verdict(yours),
    ]
    if not our_curves:
        comparison.verdict.append(f"Ours is not drawn: this copy has no training record of {name}.")
    return comparison


def _reached(mark: Mark, values: list[float | None]) -> int | None:
    return next((epoch for epoch, value in enumerate(values, 1) if value is not None and mark.reached(value)), None)


def _mark_verdict(mark: Mark, yours: dict, ours: dict) -> str:
    window = f"epochs {mark.from_epoch} to {mark.by_epoch}" if mark.from_epoch else f"{mark.by_epoch} epochs"
    text = f"The mark, {mark.text}: "
    if mark.role not in yours:
        return text + f"not measured: your log has no {ROLES[mark.role]}."
    values = yours[mark.role]
    epoch = _reached(mark, values)
    best = min(values) if mark.lower_is_better else max(values)
    if epoch is not None and epoch <= mark.by_epoch:
        text += f"✔ yours reached it at epoch {epoch} ({values[epoch - 1]:.4f})."
    elif epoch is not None:
        text += f"✘ yours reached it at epoch {epoch} ({values[epoch - 1]:.4f}), later than {window}."
    elif len(values) < mark.by_epoch:
        text += (f"not yet: your {len(values)} epoch{'s' if len(values) != 1 else ''} reached {best:.4f} at best; "
                 f"the mark allows {mark.by_epoch}.")
    else:
        text += f"✘ yours did not reach it in {len(values)} epochs (best {best:.4f})."
    if mark.role in ours:
        our_epoch = _reached(mark, ours[mark.role])
        text += f" Ours reached it at epoch {our_epoch}." if our_epoch else " Ours did not reach it either."
    return text


def _best_verdict(part: str, yours: dict, ours: dict) -> str:
    role = "val_loss" if part == "SentenceGeneration" else "val_accuracy"
    if role not in yours:
        return f"Your log has no {ROLES[role]}, so your best is not compared with ours."
    pick = min if role.endswith("loss") else max
    best = pick(yours[role])
    text = f"Your best {ROLES[role]}: {best:.4f} at epoch {yours[role].index(best) + 1}"
    our_values = [value for value in ours.get(role, []) if value is not None]
    if not our_values:
        return text + "."
    our_best = pick(our_values)
    gap = best - our_best
    better = gap < 0 if role.endswith("loss") else gap > 0
    return (text + f"; ours: {our_best:.4f} at epoch {ours[role].index(our_best) + 1} "
            f"({abs(gap):.4f} {'better' if better else 'worse' if gap else 'the same'} than ours).")


def overfitting_epoch(train_loss: list[float], val_loss: list[float]) -> int | None:
    """The first epoch after the lowest validation loss, when validation loss then rose (by more than
    OVERFITTING_RISE) while training loss went on falling; None when it did not."""
    epochs = min(len(train_loss), len(val_loss))
    if epochs < 2:
        return None
    lowest = min(range(epochs), key=lambda i: val_loss[i])
    last = epochs - 1
    if lowest == last or val_loss[last] <= val_loss[lowest] * (1 + OVERFITTING_RISE):
        return None
    return lowest + 2 if train_loss[last] < train_loss[lowest] else None


def _overfitting_verdict(yours: dict) -> str:
    if "val_loss" not in yours or "train_loss" not in yours:
        return ("Overfitting shows as validation loss rising while training loss falls: log the validation loss "
                "(writer.add_scalar('Loss/val', loss, epoch)) to see it.")
    train, val = yours["train_loss"], yours["val_loss"]
    start = overfitting_epoch(train, val)
    if start is None:
        return "No overfitting: validation loss did not rise while training loss fell."
    last = min(len(train), len(val))
    return (f"Overfitting from epoch {start}: validation loss rose from {val[start - 2]:.4f} (epoch {start - 1}) to "
            f"{val[last - 1]:.4f} (epoch {last}) while training loss fell from {train[start - 2]:.4f} to "
            f"{train[last - 1]:.4f}. The weights of epoch {start - 1} were your best: keep those (early stopping), "
            "or regularise (dropout, weight decay, augmentation).")


def compare_curves(log, part="auto", *, tags: dict[str, str] | None = None, ours: str | Path | None = None,
                   cell: str = "gru", show: bool = True) -> dict:
    """In a notebook: your TensorBoard log (``runs/``, an event file or a zip) beside our run of ``part`` (a
    part's class name, or your model) and the assignment's mark. Shows the figure and prints the verdict;
    returns what the app's ``/your_curves`` returns: ``{"part", "curves", "marks", "verdict", ...}``."""
    comparison = compare(log, part, tags, ours, cell)
    if show:
        from hw3core.curves_figure import draw

        figure = draw(comparison)
        try:
            from IPython.display import display
        except ImportError:
            display = None
        if display is not None:
            display(figure)
        print("\n".join(comparison.verdict))
    return comparison.to_json()
