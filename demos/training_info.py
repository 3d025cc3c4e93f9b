"""How a tab's models were trained: the kept epoch's metrics and the curve plots of each checkpoint.

Read again on every page load, so a training run that is still going shows its latest epoch.
"""

import json
from pathlib import Path

import gradio as gr

from demos.models import ModelStore, ModelUnavailable
from hw3core.checkpoints import PLOT_FILES, RUN_FILE, kept_metrics, read_metrics
from hw3core.compression import COMPRESSED_FILE, COMPRESSION_FILE

COLUMNS = ["Model", "Epoch kept", "Val accuracy", "Val loss", "Train accuracy", "Train loss", "s / epoch",
           "Examples / s", "Trained on"]
# Gradio draws gallery tiles square and scrolls after ~500 px; the plots are wide (5 x 3.2 in) and few.
CSS = """
.training-curves .thumbnail-item { aspect-ratio: 3 / 2 !important; }
.training-curves .grid-wrap { max-height: none !important; min-height: 0 !important; }
.result-note { overflow-wrap: anywhere; }
"""
def _number(value, digits: int) -> str:
    return f"{value:,.{digits}f}" if isinstance(value, (int, float)) else "—"


def _run(folder: Path) -> dict:
    try:
        run = json.loads((folder / RUN_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return run if isinstance(run, dict) else {}


def metrics_row(title: str, folder: Path) -> list[str]:
    """One table row from the epoch whose weights the checkpoint holds (``kept_epoch`` in its
    training.json, else the last); raises ValueError if metrics.jsonl is unreadable."""
    history = read_metrics(folder)
    run = _run(folder)
    kept = kept_metrics(run, history)
    return [
        f"**{title}**",
        f"{kept.get('epoch', '—')} of {len(history)}",
        _number(kept.get("val_accuracy"), 4),
        _number(kept.get("val_loss"), 4),
        _number(kept.get("train_accuracy"), 4),
        _number(kept.get("train_loss"), 4),
        _number(kept.get("epoch_seconds"), 1),
        _number(kept.get("examples_per_second"), 0),
        str(run.get("hardware", "—")),
    ]


def refit_note(title: str, run: dict) -> list[str]:
    """For a model refit on all of its data (no validation figures of its own): the run that chose it."""
    chosen = run.get("selection_run")
    if not isinstance(chosen, dict):
        return []
    kept = next((row for row in chosen.get("history", []) if row.get("epoch") == chosen.get("kept_epoch")), {})
    return [f"- **{title}** was trained on all of its data, so it has no validation figures of its own; the run "
            f"that chose its settings, on {_number(chosen.get('split', {}).get('train_characters'), 0)} characters, "
            f"scored a validation loss of {_number(kept.get('val_loss'), 4)} (accuracy "
            f"{_number(kept.get('val_accuracy'), 4)}) at epoch {kept.get('epoch', '—')}."]


def compression_note(title: str, folder: Path) -> list[str]:
    """For a compressed AlexNet: its compressed file's own validation figures, from compression.json. The
    table's are the dense weights' (from training), and a fresh clone serves the compressed file."""
    try:
        record = json.loads((folder / COMPRESSION_FILE).read_text())
        dense, compressed = record["validation"]["dense"], record["validation"]["compressed"]
        sizes = f"{record['compressed_bytes'] / 1e6:.1f} MB against {record['dense_bytes'] / 1e6:.0f} MB"
    except (OSError, ValueError, KeyError, TypeError):  # not compressed, or a record this code cannot read
        return []
    return [f"- **{title}** compressed (`{COMPRESSED_FILE}`, {sizes}; served when the dense weights are absent, as "
            f"in a fresh clone): validation accuracy {_number(compressed.get('accuracy'), 4)} (loss "
            f"{_number(compressed.get('loss'), 4)}) on the same split, against {_number(dense.get('accuracy'), 4)} "
            f"for the dense weights."]


def training_report(models: ModelStore, titles: dict[str, str]) -> tuple[str, list[str]]:
    """Markdown (a table of the kept epochs, then what is missing) and the paths of the plots."""
    rows, notes, plots = [], [], []
    for name, title in titles.items():
        try:
            folder = models.folder(name)
        except ModelUnavailable as error:
            notes.append(f"- **{title}**: {error}")
            continue
        try:
            rows.append(metrics_row(title, folder))
            notes += refit_note(title, _run(folder)) + compression_note(title, folder)
        except IndexError:
            notes.append(f"- **{title}**: no training record (`{folder}/metrics.jsonl` is missing or empty).")
        except (OSError, ValueError, AttributeError) as error:
            notes.append(f"- **{title}**: `{folder}/metrics.jsonl` cannot be read: {error}")
        # No captions: Gradio lays them over the image's bottom edge, the x-axis label; each plot has its title.
        plots += [str(folder / file) for file in PLOT_FILES.values() if (folder / file).is_file()]
    lines = []
    if rows:
        lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines.append("")
    lines += notes
    return "\n".join(lines), plots


def build_training_panel(models: ModelStore, titles: dict[str, str]) -> None:
    """An open accordion with the metrics table and the curves, filled when the page loads."""
    with gr.Accordion("How these models were trained", open=True):
        report = gr.Markdown("Reading the training records…")
        gallery = gr.Gallery(label="Training curves", columns=3, fit_columns=False, height="auto",
                             object_fit="contain", interactive=False, visible=False, buttons=["fullscreen"],
                             elem_classes="training-curves")

    def refresh():
        text, plots = training_report(models, titles)
        return text, gr.Gallery(value=plots, visible=bool(plots))

    gr.on(None, refresh, outputs=[report, gallery], api_visibility="private", show_progress="hidden")
