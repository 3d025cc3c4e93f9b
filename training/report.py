"""Writes checkpoints/README.md and every model card from what the runs recorded, so no number is typed
by hand; both render the records with hw3core.render, as the app's training panel does.

    python -m training.report [--checkpoints checkpoints] [--seed 0] [--rewrite-records]
"""

import argparse
import importlib
import io
import json
import re
import shlex
from contextlib import redirect_stdout
from pathlib import Path

import torch

from hw3core import ALEXNET_VARIANTS, CELLS, DOMAINS, ShakespeareWriter
from hw3core.checkpoints import PLOT_FILES, RUN_FILE, CheckpointError, load_local
from hw3core.records import RunRecord, read_run
from hw3core.registry import MODELS, models_of, spec_of
from hw3core.render import (
    MISSING,
    SUMMARY_COLUMNS,
    kept_scores,
    megabytes,
    number,
    per_class_table,
    render_run,
    summary_row,
    table,
)
from training import config, hub, plots, train_sentiment

PRIMES = ("ROMEO", "JULIET")
SAMPLE_LENGTH = 1000


def _runs(root: Path) -> dict[str, RunRecord]:
    runs = {}
    for name in MODELS:
        record = read_run(root / name)
        if record is not None:
            runs[name] = record
    return runs


def _model_table(runs: dict[str, RunRecord]) -> list[str]:
    return table(SUMMARY_COLUMNS, [summary_row(f"`{name}`", record) for name, record in runs.items()])


def _per_model(root: Path, runs: dict[str, RunRecord]) -> list[str]:
    lines = []
    for name, record in runs.items():
        lines += ["", f"### `{name}`", "", render_run(record, "#### The run that chose the settings").rstrip(), "",
                  " ".join(f"![{key}]({name}/{file})" for key, file in PLOT_FILES.items() if (root / name / file).is_file())]
    return lines


def _compression_table(runs: dict[str, RunRecord]) -> list[str]:
    """One row per compressed AlexNet, from its compression.json; then each one's figures per domain."""
    lines = ["The AlexNets ship as `compressed.safetensors` (Deep Compression: pruning, fine-tuning with the masks "
             "held, a k-means codebook per layer); the dense weights stay out of git. Accuracies on the recorded "
             "validation split, the compressed one from the model rebuilt from its file:", ""]
    rows, per_domain = [], []
    for name, spec in models_of("domain").items():
        record = runs.get(name)
        compression = record.compression if record else None
        if compression is None:
            rows.append([f"`{name}`", "not compressed yet", "", "", "", ""])
            continue
        dense, compressed = compression.validation["dense"], compression.validation["compressed"]
        rows.append([f"`{name}`", number(dense.accuracy), number(compressed.accuracy),
                     megabytes(compression.dense_bytes), megabytes(compression.compressed_bytes),
                     f"`{compression.command}`"])
        per_domain += [(f"{spec.title} {label}", scores) for label, scores in kept_scores(record)]
    lines += table(["model", "dense val acc", "compressed val acc", "dense size", "compressed size", "command"], rows)
    if per_domain:
        lines += ["", "Per domain (balanced accuracy: the mean of the four domains' accuracies; "
                  f"{MISSING} where a run predates these figures):", "", *per_class_table(per_domain, DOMAINS)]
    lines += ["", "Each model card (`checkpoints/NAME/README.md`) has the density, bits and bytes of every layer, "
              "and the confusion matrices."]
    return lines


def _cell_comparison(runs) -> list[str]:
    counts = {}
    for cell, cls in CELLS.items():
        with redirect_stdout(io.StringIO()):
            counts[cell] = cls(128, 100, bias=True).count_parameters()
    lines = ["| cell | parameters (input 128, hidden 100, bias) | sentiment val acc | s / epoch | reviews / s |",
             "|---|---|---|---|---|"]
    for cell in CELLS:
        run = runs.get(spec_of("sentiment", cell).name)
        if run:
            history = run.history
            lines.append(f"| {cell.upper()} | {counts[cell]:,} | {number(run.kept.val_accuracy)} "
                         f"| {number(run.epoch_seconds, 0)} "
                         f"| {sum(r.examples_per_second for r in history) / len(history):.0f} |")
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
        "", "## Compressed AlexNets (Parts A and B)", "", *_compression_table(runs),
        "", "## GRU vs LSTM (Part C)", "", *_cell_comparison(runs), "",
        "Times per epoch come from the training runs, which shared the machine's cores with other jobs; "
        "`python -m training.benchmark` measures the two cells side by side on an idle machine (see `docs/benchmark.md`).",
        "", "## Runs", *_per_model(root, runs),
        "", "## Shakespeare samples (Part D, the GRU writer `shakespeare-gru`)", *_samples(root, seed),
        "", "## AlexNet architectures (Parts A and B)", *_architectures(), "",
    ]
    return "\n".join(lines)


def script(name: str):
    """The training module of a checkpoint."""
    return importlib.import_module(MODELS[name].script)


# The earlier spellings older records wrote, and the ones that run today.
RENAMED_MODULES = {"training.train_char_rnn": "training.train_shakespeare"}
RENAMED_FLAGS = {"--data-dir": "--data"}


def _dest(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def current_command(command: str, data_flags: dict[str, str | None]) -> str:
    """A recorded ``python -m MODULE FLAGS`` in today's spelling, each data path replaced as ``data_flags`` say."""
    _, _, module, *argv = shlex.split(command)
    argv = ["=".join([RENAMED_FLAGS.get(flag, flag), *value]) for flag, *value in (token.split("=", 1) for token in argv)]
    return shlex.join(["python", "-m", RENAMED_MODULES.get(module, module), *config.without_paths(argv, data_flags)])


def portable_run(run: dict, last_epoch: int) -> dict:
    """A training record as its script writes one now: its commands and flags in today's spelling (the
    selection run's too), each data path replaced by the data set's name or file name, '1 thread' in the
    singular, and a run from before ``--keep`` recorded as keeping its last epoch (``last_epoch``), as it
    did, and a sentiment run from before ``--tail-length`` as reading no tail. Everything else is kept."""
    trainer = script(run["task"])
    command = current_command(run["command"], trainer.DATA_FLAGS)
    dests = {_dest(old): _dest(new) for old, new in RENAMED_FLAGS.items()}
    arguments = config.portable_arguments({dests.get(key, key): value for key, value in run["arguments"].items()},
                                          trainer.DATA_FLAGS)
    name, _, where = run["data"].partition(" (")
    data = name if MODELS[run["task"]].task == "domain" or not where else f"{name} ({Path(where.rstrip(')')).name})"
    changed = {}
    if "keep" not in arguments:  # a run from before --keep saved its last epoch, which today's default would not
        command += " --keep last"
        arguments["keep"] = "last"
        changed["kept_epoch"] = last_epoch
    if trainer is train_sentiment:  # a run from before --tail-length read each review's first words only
        arguments.setdefault("tail_length", 0)
    if "selection_run" in run:
        changed["selection_run"] = {**run["selection_run"],
                                    "command": current_command(run["selection_run"]["command"], trainer.DATA_FLAGS)}
    return {**run, "command": command, "arguments": arguments, "data": data,
            "hardware": re.sub(r"\b1 threads\b", "1 thread", run["hardware"]), **changed}


def rewrite_records(root: Path) -> None:
    """Rewrites every training.json and model card under ``root`` from their own fields (portable_run)."""
    for name, record in _runs(root).items():
        run = portable_run(json.loads((root / name / RUN_FILE).read_text()), record.history[-1].epoch)
        (root / name / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n")
        history = [row.to_json() for row in record.history]
        plots.draw(root / name, history, name, run.get("kept_epoch", history[-1]["epoch"]),
                   run.get("selection_run", {}).get("history"))
    write_cards(root)


def write_cards(root: Path) -> None:
    """Every checkpoint's model card, from its records."""
    for name, record in _runs(root).items():
        hub.write_model_card(root / name, script(name).description(argparse.Namespace(**record.arguments)), record)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rewrite-records", action="store_true",
                        help="first rewrite each training.json and model card as the training scripts write them now")
    args = parser.parse_args(argv)
    if args.rewrite_records:
        rewrite_records(args.checkpoints)
    else:
        write_cards(args.checkpoints)
    (args.checkpoints / "README.md").write_text(build(args.checkpoints, args.seed))
    print(f"wrote {args.checkpoints / 'README.md'}")


if __name__ == "__main__":
    main()
