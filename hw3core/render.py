"""One renderer of run records (hw3core.records) in Markdown, for the model card, checkpoints/README.md
and the app's training panel, plus the confusion matrix as an HTML heatmap for the app.

A figure a record does not have (a run from before it was recorded, a refit without validation)
shows as ``MISSING``, the same in every place.
"""

import html
import json

from hw3core.records import STAGES, CompressionRecord, Epoch, RunRecord, Scores
from hw3core.registry import MODELS

MISSING = "–"


def number(value, digits: int = 4) -> str:
    return f"{value:,.{digits}f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else MISSING


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(row) + " |" for row in rows)]


SUMMARY_COLUMNS = ["Model", "Epoch kept", "Val accuracy", "Val loss", "Train accuracy", "Train loss", "s / epoch",
                   "Examples / s", "Trained on"]


def summary_row(title: str, record: RunRecord) -> list[str]:
    """The epoch whose weights the checkpoint holds, in one row."""
    kept = record.kept
    return [title, f"{kept.epoch} of {len(record.history)}", number(kept.val_accuracy), number(kept.val_loss),
            number(kept.train_accuracy), number(kept.train_loss), number(kept.epoch_seconds, 1),
            number(kept.examples_per_second, 0), record.hardware or MISSING]


def kept_scores(record: RunRecord) -> list[tuple[str, Scores]]:
    """The figures of the weights a checkpoint ships, on the recorded validation split: the dense weights
    (the kept epoch, or compression.json's own scoring of them) and the compressed file's."""
    compression = record.compression
    if compression is None:
        return [(f"dense (epoch {record.kept.epoch})", record.kept.validation)]
    return [("dense", compression.validation["dense"]), ("compressed", compression.validation["compressed"])]


def per_class_table(rows: list[tuple[str, Scores]], classes: tuple[str, ...]) -> list[str]:
    """Accuracy, balanced accuracy (the mean over classes) and each class's accuracy, a row per set of weights."""
    def cells(scores: Scores) -> list[str]:
        per_class = scores.per_class or {}
        return [number(scores.accuracy), number(scores.balanced_accuracy), *(number(per_class.get(c)) for c in classes)]

    return table(["weights", "accuracy", "balanced accuracy", *classes], [[label, *cells(scores)] for label, scores in rows])


def confusion_table(confusion: list[list[int]] | None, classes: tuple[str, ...]) -> list[str]:
    """Rows: the true class; columns: the predicted one."""
    if not confusion:
        return [f"No confusion matrix: this run predates it ({MISSING})."]
    rows = [[c, *(f"{n:,}" for n in row)] for c, row in zip(classes, confusion, strict=True)]
    return table(["true \\ predicted", *classes], rows)


def confusion_html(title: str, confusion: list[list[int]] | None, classes: tuple[str, ...]) -> str:
    """The confusion matrix as a heatmap table (each cell shaded by its share of the true class's images),
    HTML that needs no plotting library."""
    heading = f"<p><strong>{html.escape(title)}</strong></p>"
    if not confusion:
        return heading + f"<p>No confusion matrix recorded ({MISSING}): the run predates it.</p>"
    header = "".join(f"<th>{html.escape(c)}</th>" for c in classes)
    body = []
    for c, row in zip(classes, confusion, strict=True):
        total = max(sum(row), 1)
        cells = "".join(
            f'<td style="background: rgba(37, 99, 235, {n / total:.2f}); color: {"white" if n / total > 0.5 else "inherit"};'
            f' text-align: right; padding: 2px 8px">{n:,}</td>' for n in row)
        body.append(f"<tr><th style='text-align: left'>{html.escape(c)}</th>{cells}</tr>")
    return (f"{heading}<table class='confusion-matrix'><tr><th>true \\ predicted</th>{header}</tr>"
            f"{''.join(body)}</table>")


def epoch_table(history: list[Epoch]) -> list[str]:
    """One row per epoch; the columns a run has (train loss in eval mode, balanced validation accuracy)."""
    probe = any(row.train_eval_loss is not None for row in history)
    balanced = any(row.val_balanced_accuracy is not None for row in history)
    header = ["epoch", "train loss", *(["train loss (eval mode)"] if probe else []), "train accuracy", "val loss",
              "val accuracy", *(["balanced val accuracy"] if balanced else []), "s", "examples / s"]
    rows = [[str(row.epoch), number(row.train_loss), *([number(row.train_eval_loss)] if probe else []),
             number(row.train_accuracy), number(row.val_loss), number(row.val_accuracy),
             *([number(row.val_balanced_accuracy)] if balanced else []), number(row.epoch_seconds, 0),
             number(row.examples_per_second, 0)] for row in history]
    return table(header, rows)


def per_class_section(record: RunRecord) -> list[str]:
    """A classifier's figures per class for the weights it ships, and their confusion matrices."""
    if not record.classes:  # not a classifier of classes (the text models' records have none)
        return []
    classes = tuple(record.classes)
    rows = kept_scores(record)
    lines = ["", "Per domain, on the validation split (balanced accuracy: the mean of the domains' accuracies):", "",
             *per_class_table(rows, classes)]
    if not any(scores.confusion for _, scores in rows):
        return [*lines, "", f"No per-domain figures or confusion matrix ({MISSING}): the run predates them."]
    for label, scores in rows:
        lines += ["", f"Confusion matrix, {label} weights (row: true domain, column: predicted):", "",
                  *confusion_table(scores.confusion, classes)]
    return lines


def megabytes(count: int) -> str:
    """A file's or a model's size, as every rendering shows it: the compressed files differ in the second decimal."""
    return f"{count / 1e6:.2f} MB"


def compression_section(compression: CompressionRecord) -> list[str]:
    epochs = compression.fine_tune.get("epochs")
    lines = ["", "## Compressed", "",
             "Deep Compression (Han, Mao & Dally, 2016): magnitude pruning, fine-tuning with the masks held"
             f" ({epochs} epoch{'' if epochs == 1 else 's'}), a k-means codebook per layer. The weights ship as "
             f"`compressed.safetensors`, {megabytes(compression.compressed_bytes)} instead of "
             f"{megabytes(compression.dense_bytes)}, made by:", "", "```", compression.command, "```", "",
             *table(["stage", "val accuracy", "val loss", "balanced val accuracy"],
                    [[stage.replace("_", "-"), number(scores.accuracy), number(scores.loss),
                      number(scores.balanced_accuracy)]
                     for stage in STAGES if (scores := compression.validation.get(stage)) is not None])]
    if compression.layers:
        lines += ["", *table(["layer", "shape", "weights kept", "bits", "positions", "bytes"], [
            [layer["name"], "×".join(map(str, layer["shape"])), f"{100 * layer['density']:.1f}%", str(layer["bits"]),
             layer["positions"], f"{layer['bytes']:,}"] for layer in compression.layers])]
    return lines


def selection_section(record: RunRecord, heading: str) -> list[str]:
    chosen = record.selection_run
    if chosen is None:
        return []
    split = chosen.split or {}
    sizes = (f"Trained on {number(split.get('train_characters'), 0)} characters, validated on the last "
             f"{number(split.get('val_characters'), 0)}; its" if "train_characters" in split else "Its")
    return ["", heading, "", "```", chosen.command, "```", "",
            f"{sizes} validation loss was lowest at epoch {chosen.kept_epoch}.", "", *epoch_table(chosen.history)]


def render_run(record: RunRecord, selection_heading: str = "## The run that chose the settings") -> str:
    """The run in Markdown: the command, where and how long it ran, which epoch's weights are kept, its
    epochs, a classifier's per-domain figures and confusion matrices, the run that chose a refit's
    settings, a compressed AlexNet's stages and layers, and the command that trains the model again
    (the one the app names when it is missing)."""
    kept_line = ""
    if record.kept_epoch is not None:
        balanced = bool(record.history) and record.history[-1].val_balanced_loss is not None  # as kept_epoch chose
        loss = "balanced validation loss" if balanced else "validation loss"
        which = f"the one of lowest {loss}" if record.keep == "best" else "the last"
        kept_line = f" The weights are those of epoch {record.kept_epoch}, {which} (`--keep {record.keep}`)."
    lines = ["```", record.command, "```", "",
             f"On {record.hardware or MISSING}, {len(record.history)} epochs in "
             f"{(record.wall_seconds or 0) / 60:.1f} minutes.{kept_line}"]
    split = {key: value for key, value in record.split.items() if key != "val_files"}
    if split:
        lines[-1] += f" Split: `{json.dumps(split)}`" + (
            " (the validation file list is in `training.json`)." if "val_files" in record.split else ".")
    dropout = record.arguments.get("dropout")
    if dropout:
        lines += ["", f"The training loss and accuracy are those of the training passes, with dropout ({dropout}) on; "
                  "validation runs without it, as the model is used, which is why it can score above training."
                  + (' "Train loss (eval mode)" is the model without dropout on the first tenth of the text it trains '
                     "on, scored as validation is." if any(row.train_eval_loss is not None for row in record.history)
                     else "")]
    if record.history[0].val_loss is None:
        lines += ["", "This run trained on all of the data, so it has no validation figures; its settings were "
                  "chosen by a run on the validation split (below)."]
    lines += ["", *epoch_table(record.history), *per_class_section(record),
              *selection_section(record, selection_heading)]
    if record.compression is not None:
        lines += compression_section(record.compression)
    if record.task in MODELS:
        lines += ["", "Trained again from scratch by (the recipe is the script's defaults for this model, `RECIPES` in "
                  "`hw3core/registry.py`):", "", "```", *MODELS[record.task].commands(), "```"]
    return "\n".join(lines) + "\n"
