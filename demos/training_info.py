"""How a tab's models were trained: the kept epoch's metrics and the curve plots of each checkpoint.

Read again on every page load, so a training run that is still going shows its latest epoch.
"""

import gradio as gr

from demos.model_store import ModelStore, ModelUnavailable
from hw3core.alexnet import DOMAINS
from hw3core.checkpoints import PLOT_FILES
from hw3core.compression import COMPRESSED_FILE
from hw3core.records import RecordError, RunRecord, read_run
from hw3core.render import (
    MISSING,
    SUMMARY_COLUMNS,
    confusion_html,
    kept_scores,
    megabytes,
    number,
    per_class_table,
    summary_row,
    table,
)


def refit_note(title: str, record: RunRecord) -> list[str]:
    """For a model refit on all of its data (no validation figures of its own): the run that chose it."""
    chosen = record.selection_run
    if chosen is None:
        return []
    kept = chosen.kept
    return [f"- **{title}** was trained on all of its data, so it has no validation figures of its own; the run "
            f"that chose its settings, on {number((chosen.split or {}).get('train_characters'), 0)} characters, "
            f"scored a validation loss of {number(kept and kept.val_loss)} (accuracy "
            f"{number(kept and kept.val_accuracy)}) at epoch {kept.epoch if kept else MISSING}."]


def compression_note(title: str, record: RunRecord) -> list[str]:
    """For a compressed AlexNet: its compressed file's own validation figures, from compression.json. The
    table's are the dense weights' (from training), and a fresh clone serves the compressed file."""
    compression = record.compression
    if compression is None:
        return []
    dense, compressed = compression.validation["dense"], compression.validation["compressed"]
    sizes = f"{megabytes(compression.compressed_bytes)} against {megabytes(compression.dense_bytes)}"
    return [f"- **{title}** compressed (`{COMPRESSED_FILE}`, {sizes}; served when the dense weights are absent, as "
            f"in a fresh clone): validation accuracy {number(compressed.accuracy)} (loss {number(compressed.loss)}) "
            f"on the same split, against {number(dense.accuracy)} for the dense weights."]


def _records(models: ModelStore, titles: dict[str, str]):
    """(title, folder, record or None, problem or None) per model."""
    for name, title in titles.items():
        try:
            folder = models.folder(name)
        except ModelUnavailable as error:
            yield title, None, None, str(error)
            continue
        try:
            record = read_run(folder)
        except RecordError as error:
            yield title, folder, None, str(error)
            continue
        if record is None:
            yield title, folder, None, f"no training record (`{folder}/metrics.jsonl` is missing or empty)."
        else:
            yield title, folder, record, None


def training_report(models: ModelStore, titles: dict[str, str]) -> tuple[str, list[str]]:
    """Markdown (a table of the kept epochs, a classifier's figures per class, then what is missing) and
    the paths of the plots."""
    rows, per_class, classes, notes, plots = [], [], (), [], []
    for title, folder, record, problem in _records(models, titles):
        if problem is not None:
            notes.append(f"- **{title}**: {problem}")
        if record is not None:
            rows.append(summary_row(f"**{title}**", record))
            if record.classes:
                classes = tuple(record.classes)
                per_class += [(f"{title} {label}", scores) for label, scores in kept_scores(record)]
            notes += refit_note(title, record) + compression_note(title, record)
        if folder is not None:
            # No captions: Gradio lays them over the image's bottom edge, the x-axis label; each plot has its title.
            plots += [str(folder / file) for file in PLOT_FILES.values() if (folder / file).is_file()]
    lines = [*table(SUMMARY_COLUMNS, rows), ""] if rows else []
    if per_class:
        lines += [f"Per {'domain' if classes == DOMAINS else 'class'}, for the weights served (balanced accuracy: the "
                  f"mean over the classes; {MISSING} where a run predates these figures):", "",
                  *per_class_table(per_class, classes), ""]
    lines += notes
    return "\n".join(lines), plots


def confusion_report(models: ModelStore, titles: dict[str, str]) -> str:
    """A confusion-matrix heatmap per classifier of ``titles``, for the weights served (compressed, where
    compression.json records them, else the kept epoch's); "" when none of them is a classifier."""
    figures = []
    for title, _, record, _ in _records(models, titles):
        if record is not None and record.classes:
            label, scores = kept_scores(record)[-1]
            figures.append(confusion_html(f"{title} ({label} weights)", scores.confusion, tuple(record.classes)))
    if not figures:
        return ""
    return ("<p>Confusion matrices on the validation split (row: true domain, column: predicted; shade: share of "
            "the row)</p><div class='confusion-matrices'>" + "".join(f"<div>{f}</div>" for f in figures) + "</div>")


def build_training_panel(models: ModelStore, titles: dict[str, str]) -> None:
    """An open accordion with the metrics table and the curves, filled when the page loads."""
    with gr.Accordion("How these models were trained", open=True):
        report = gr.Markdown("Reading the training records…")
        confusion = gr.HTML(visible=False, elem_classes="confusion-report")
        gallery = gr.Gallery(label="Training curves", columns=3, fit_columns=False, height="auto",
                             object_fit="contain", interactive=False, visible=False, buttons=["fullscreen"],
                             elem_classes="training-curves")

    def refresh():
        text, plots = training_report(models, titles)
        matrices = confusion_report(models, titles)
        return text, gr.HTML(matrices, visible=bool(matrices)), gr.Gallery(value=plots, visible=bool(plots))

    gr.on(None, refresh, outputs=[report, confusion, gallery], api_visibility="private", show_progress="hidden")
