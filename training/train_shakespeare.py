"""Part D: train a character-level GRU (or LSTM) writer on Tiny Shakespeare.

    python -m training.train_shakespeare --cell gru --data input.txt --out checkpoints/shakespeare-gru-selection
    python -m training.train_shakespeare --cell gru --data input.txt --val-fraction 0 --keep last \
        --selection-run checkpoints/shakespeare-gru-selection

The first run scores the settings on a validation split (the last tenth of the text); the second,
with the same settings, refits on the whole text and records the run that chose them: the shipped
checkpoint. Each cell's defaults are its recipe in hw3core/registry.py.
"""

import argparse
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from hw3core import CELLS, ShakespeareWriter
from hw3core.records import Epoch, RecordError, SelectionRun, read_run
from hw3core.registry import spec_of
from hw3core.text_models import HOW_A_PRIME_IS_READ
from training.config import common_arguments, script_parser
from training.data import CharChunks, CharStreams, DataError, collate_chars, read_text, split_text
from training.loop import Task, run

DATA_FLAGS = {"--data": None}  # the records show the file's name (input.txt), not where it lies


def batch_metrics(model, batch, state=None):
    logits, state = model(batch["inputs"], state, every_position=True)  # (N, T, V)
    targets = batch["targets"]
    loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
    return loss, (logits.argmax(-1) == targets).sum(), targets.numel(), state


class CarriedState:
    """batch_metrics for CharStreams: each window starts from the state its row's previous window
    ended in, as evaluation and generation read text, detached so that gradients stop at the window's
    start (truncated backpropagation through time). A pass starts from zeros at its window 0."""

    def __init__(self):
        self.state = None

    def __call__(self, model, batch):
        if batch["window"] == 0:
            self.state = None
        loss, correct, count, state = batch_metrics(model, batch, self.state)
        self.state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        return loss, correct, count


def independent_windows(model, batch):
    """batch_metrics for CharChunks: every window starts from zeros."""
    return batch_metrics(model, batch)[:3]


def selection_record(folder: Path) -> dict:
    """The validation run that chose a refit's settings: its command, kept epoch and figures per epoch."""
    try:
        run = read_run(folder)
    except RecordError as error:
        raise DataError(str(error)) from None
    if run is None:
        raise DataError(f"{folder} holds no finished training run (training.json and metrics.jsonl)")
    kept = ("train_loss", "train_eval_loss", "val_loss", "val_accuracy")  # what the refit's plots and card show
    history = [Epoch(row.epoch, **{key: getattr(row, key) for key in kept}) for row in run.history]
    return SelectionRun(run.command, run.kept_epoch, run.split or None, history).to_json()


def build_task(args) -> Task:
    text = read_text(args.data)
    train_text, val_text = split_text(text, args.val_fraction)
    characters = "".join(sorted(set(text)))
    torch.manual_seed(args.seed)
    model = ShakespeareWriter(characters, args.cell, args.embedding_dim, args.hidden_size, True, args.dropout)
    if args.limit:
        train_text, val_text = train_text[: args.limit * args.history + 1], val_text[: args.limit * args.history + 1]

    carry_state = getattr(args, "carry_state", False)
    # Under torchrun each process reads its own rows: one row per example of every process's batch.
    streams = args.batch_size * int(os.environ.get("WORLD_SIZE", 1)) if carry_state else 0

    def windows(part: str) -> CharChunks | CharStreams:
        ids = torch.tensor(model.encode(part))
        return CharStreams(ids, args.history, streams) if carry_state else CharChunks(ids, args.history)

    metadata = {"data": f"Tiny Shakespeare ({Path(args.data).name})", "vocabulary_size": len(characters), "split": {
        "total": len(text), "val_fraction": args.val_fraction, "train_characters": len(train_text),
        "val_characters": len(val_text), "history": args.history,
    }}
    if getattr(args, "selection_run", None):
        metadata["selection_run"] = selection_record(args.selection_run)
    # The text's first tenth (as long as the validation split), scored without dropout as validation is:
    # the training loss of the model itself, not of the model with dropout on.
    probe = windows(train_text[: len(text) // 10 + 1]) if args.dropout else None
    return Task(
        name=spec_of("shakespeare", args.cell).name,
        model=model,
        train_set=windows(train_text),
        val_set=windows(val_text),
        collate=collate_chars,
        batch_metrics=CarriedState() if carry_state else independent_windows,
        clip_grad_norm=args.clip_grad_norm,
        metadata=metadata,
        description=description(args),
        ordered=carry_state,
        train_probe=probe,
    )


def description(args) -> str:
    return (f"A character-level {args.cell.upper()} (embedding {args.embedding_dim}, hidden {args.hidden_size}) "
            f"that writes like Shakespeare; metrics are per character. {HOW_A_PRIME_IS_READ}")


def parser() -> argparse.ArgumentParser:
    """The flags; those a recipe sets have its value as their default once the cell is known (training.config)."""
    parser = script_parser(__doc__)
    parser.add_argument("--cell", choices=sorted(CELLS), default="gru", help="the recurrent cell")
    parser.add_argument("--data", required=True, help="a plain UTF-8 text file, e.g. tinyshakespeare/input.txt")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="the end of the text held out (0: train on all of it, with --keep last)")
    parser.add_argument("--embedding-dim", type=int, default=256, help="of each character")
    parser.add_argument("--hidden-size", type=int, default=512, help="of the cell")
    parser.add_argument("--history", type=int, default=100, help="characters per training sequence")
    parser.add_argument("--clip-grad-norm", type=float, default=1.0, help="the gradient's largest norm")
    parser.add_argument("--dropout", type=float, help="on the character embeddings and the hidden states")
    parser.add_argument("--carry-state", action=argparse.BooleanOptionalAction,
                        help="read the text as --batch-size continuous streams, each window starting from the "
                             "state the previous one ended in (truncated backpropagation through time)")
    parser.add_argument("--selection-run", type=Path, default=None, metavar="DIR",
                        help="the run on the validation split that chose these settings (recorded with this one)")
    common_arguments(parser)
    return parser


def main(argv=None):
    return run(parser(), build_task, "shakespeare", argv, DATA_FLAGS)


if __name__ == "__main__":
    main()
