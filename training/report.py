"""Writes checkpoints/README.md from what the training runs recorded, so no number is typed by hand.

    python -m training.report [--checkpoints checkpoints] [--seed 0] [--rewrite-records]
"""

import argparse
import io
import json
import re
import shlex
from contextlib import redirect_stdout
from pathlib import Path

import torch

from hw3core import ALEXNET_VARIANTS, CELLS, ShakespeareWriter
from hw3core.checkpoints import (
    CHECKPOINT_CLASSES,
    PLOT_FILES,
    RUN_FILE,
    CheckpointError,
    kept_metrics,
    load_local,
    read_metrics,
)
from hw3core.compression import COMPRESSION_FILE
from training import hub, loop, plots, train_alexnet, train_char_rnn, train_sentiment

PRIMES = ("ROMEO", "JULIET")
SAMPLE_LENGTH = 1000


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _runs(root: Path) -> dict[str, tuple[dict, list[dict]]]:
    runs = {}
    for name in CHECKPOINT_CLASSES:
        folder = root / name
        history = read_metrics(folder)
        if history and (folder / RUN_FILE).is_file():
            runs[name] = (json.loads((folder / RUN_FILE).read_text()), history)
    return runs


def _model_table(runs) -> list[str]:
    lines = ["| model | parameters | data (train / val) | epoch kept | train loss | train acc | val loss | val acc "
             "| s / epoch | hardware |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, (run, history) in runs.items():
        last = kept_metrics(run, history)
        split = run.get("split", {})
        sizes = (f"{split['train']:,} / {split['val']:,}" if "train" in split
                 else f"{split.get('train_characters', 0):,} / {split.get('val_characters', 0):,} chars")
        seconds = sum(row["epoch_seconds"] for row in history) / len(history)
        lines.append(
            f"| `{name}` | {run['parameters']:,} | {run['data'].split(' (')[0]} {sizes} | {last['epoch']} of {len(history)} "
            f"| {last['train_loss']:.4f} | {last['train_accuracy']:.4f} | {_number(last['val_loss'])} "
            f"| {_number(last['val_accuracy'])} | {seconds:.0f} | {run['hardware']} |"
        )
    return lines


def _per_model(root: Path, runs) -> list[str]:
    lines = []
    for name, (run, history) in runs.items():
        lines += ["", f"### `{name}`", "", "```", run["command"], "```", "",
                  f"{run['hardware']}, torch {run['torch']}, {run['wall_seconds'] / 60:.1f} minutes in all. "
                  f"Split: `{json.dumps({k: v for k, v in run.get('split', {}).items() if k != 'val_files'})}`"
                  + (" (the validation file list is in `training.json`)." if "val_files" in run.get("split", {}) else "."),
                  "", "| epoch | train loss | train loss (eval mode) | train acc | val loss | val acc | s | examples / s |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['epoch']} | {r['train_loss']:.4f} | {_number(r.get('train_eval_loss'))} "
                  f"| {r['train_accuracy']:.4f} | {_number(r['val_loss'])} "
                  f"| {_number(r['val_accuracy'])} | {r['epoch_seconds']:.0f} | {r['examples_per_second']:.0f} |"
                  for r in history]
        if "selection_run" in run:
            chosen = run["selection_run"]
            lines += ["", f"Trained on all the data; the settings were chosen by `{chosen['command']}` "
                      f"(validation loss lowest at epoch {chosen['kept_epoch']}):", "",
                      "| epoch | train loss | train loss (eval mode) | val loss | val acc |", "|---|---|---|---|---|"]
            lines += [f"| {r['epoch']} | {r['train_loss']:.4f} | {_number(r.get('train_eval_loss'))} "
                      f"| {_number(r['val_loss'])} | {_number(r['val_accuracy'])} |" for r in chosen["history"]]
        lines += ["", " ".join(f"![{key}]({name}/{file})" for key, file in PLOT_FILES.items()
                               if (root / name / file).is_file())]
    return lines


def _compression_table(root: Path) -> list[str]:
    """One row per compressed AlexNet, from its compression.json."""
    lines = ["The AlexNets ship as `compressed.safetensors` (Deep Compression: pruning, fine-tuning with the masks "
             "held, a k-means codebook per layer); the dense weights stay out of git. Accuracies on the recorded "
             "validation split, the compressed one from the model rebuilt from its file:", "",
             "| model | dense val acc | compressed val acc | dense (MB) | compressed (MB) | command |",
             "|---|---|---|---|---|---|"]
    for name in ALEXNET_VARIANTS:
        path = root / name / COMPRESSION_FILE
        if not path.is_file():
            lines.append(f"| `{name}` | not compressed yet | | | | |")
            continue
        record = json.loads(path.read_text())
        validation = record["validation"]
        lines.append(f"| `{name}` | {validation['dense']['accuracy']:.4f} | {validation['compressed']['accuracy']:.4f} "
                     f"| {record['dense_bytes'] / 1e6:.1f} | {record['compressed_bytes'] / 1e6:.2f} | `{record['command']}` |")
    lines += ["", "Each model card (`checkpoints/NAME/README.md`) has the density, bits and bytes of every layer."]
    return lines


def _cell_comparison(runs) -> list[str]:
    counts = {}
    for cell, cls in CELLS.items():
        with redirect_stdout(io.StringIO()):
            counts[cell] = cls(128, 100, bias=True).count_parameters()
    lines = ["| cell | parameters (input 128, hidden 100, bias) | sentiment val acc | s / epoch | reviews / s |",
             "|---|---|---|---|---|"]
    for cell in CELLS:
        run = runs.get(f"sentiment-{cell}")
        if run:
            history = run[1]
            lines.append(f"| {cell.upper()} | {counts[cell]:,} | {kept_metrics(*run)['val_accuracy']:.4f} "
                         f"| {sum(r['epoch_seconds'] for r in history) / len(history):.0f} "
                         f"| {sum(r['examples_per_second'] for r in history) / len(history):.0f} |")
        else:
            lines.append(f"| {cell.upper()} | {counts[cell]:,} | not trained yet | | |")
    return lines


def _architectures() -> list[str]:
    lines = []
    for cls in ALEXNET_VARIANTS.values():
        model = cls()
        lines += ["", f"`print({cls.__name__}())`, {sum(p.numel() for p in model.parameters()):,} parameters:",
                  "", "```", str(model), "```"]
    return lines


def _samples(root: Path, seed: int) -> list[str]:
    try:
        writer = load_local(ShakespeareWriter, root / "shakespeare-gru")
    except CheckpointError as error:
        return ["", f"No samples: {error}."]
    lines = []
    for prime in PRIMES:
        text = prime + "".join(writer.generate(prime, SAMPLE_LENGTH, temperature=1.0, seed=seed))
        lines += ["", f"Prime `{prime}`, {SAMPLE_LENGTH} characters, temperature 1.0, seed {seed}:", "", "```", text, "```"]
    return lines


def build(root: Path, seed: int) -> str:
    torch.manual_seed(seed)
    runs = _runs(root)
    lines = [
        "# Checkpoints", "",
        "Generated by `python -m training.report` from the files each training run wrote "
        "(`training.json`, `metrics.jsonl`, the plots); nothing here is typed by hand. "
        "Accuracies are fractions; losses are mean cross-entropy in nats (per character for the writers).",
        "", "## Every model", "", *_model_table(runs),
        "", "## Compressed AlexNets (Parts A and B)", "", *_compression_table(root),
        "", "## GRU vs LSTM (Part C)", "", *_cell_comparison(runs), "",
        "Times per epoch come from the training runs, which shared the machine's cores with other jobs; "
        "`python -m training.benchmark` measures the two cells side by side on an idle machine (see `docs/benchmark.md`).",
        "", "## Runs", *_per_model(root, runs),
        "", "## Shakespeare samples (Part D, the GRU writer `shakespeare-gru`)", *_samples(root, seed),
        "", "## AlexNet architectures (Parts A and B)", *_architectures(), "",
    ]
    return "\n".join(lines)


SCRIPTS = {"alexnet": train_alexnet, "sentiment": train_sentiment, "shakespeare": train_char_rnn}


def portable_run(run: dict, last_epoch: int) -> dict:
    """A training record as its script writes one now: each data path replaced by the data set's name or
    file name, '1 thread' in the singular, and a run from before ``--keep`` recorded as keeping its last
    epoch (``last_epoch``), as it did, and a sentiment run from before ``--tail-length`` as reading no tail.
    Everything else is kept as recorded."""
    script = SCRIPTS[run["task"].split("-")[0]]
    program, dash_m, module, *argv = shlex.split(run["command"])
    arguments = loop.portable_arguments(run["arguments"], script.DATA_FLAGS)
    name, _, where = run["data"].partition(" (")
    data = name if script is train_alexnet or not where else f"{name} ({Path(where.rstrip(')')).name})"
    argv = loop.without_paths(argv, script.DATA_FLAGS)
    kept = {}
    if "keep" not in arguments:  # a run from before --keep saved its last epoch, which today's default would not
        argv += ["--keep", "last"]
        arguments["keep"] = "last"
        kept = {"kept_epoch": last_epoch}
    if script is train_sentiment:  # a run from before --tail-length read each review's first words only
        arguments.setdefault("tail_length", 0)
    return {**run, "command": shlex.join(["python", dash_m, module, *argv]), "arguments": arguments, "data": data,
            "hardware": re.sub(r"\b1 threads\b", "1 thread", run["hardware"]), **kept}


def rewrite_records(root: Path) -> None:
    """Rewrites every training.json and model card under ``root`` from their own fields (portable_run)."""
    for name, (run, history) in _runs(root).items():
        run = portable_run(run, history[-1]["epoch"])
        (root / name / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n")
        plots.draw(root / name, history, name, run.get("kept_epoch", history[-1]["epoch"]),
                   run.get("selection_run", {}).get("history"))
        script = SCRIPTS[name.split("-")[0]]
        compression = root / name / COMPRESSION_FILE
        hub.write_model_card(root / name, name, script.description(argparse.Namespace(**run["arguments"])), run,
                             history, json.loads(compression.read_text()) if compression.is_file() else None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rewrite-records", action="store_true",
                        help="first rewrite each training.json and model card as the training scripts write them now")
    args = parser.parse_args(argv)
    if args.rewrite_records:
        rewrite_records(args.checkpoints)
    (args.checkpoints / "README.md").write_text(build(args.checkpoints, args.seed))
    print(f"wrote {args.checkpoints / 'README.md'}")


if __name__ == "__main__":
    main()
