"""Part D: train a character-level GRU (or LSTM) writer on Tiny Shakespeare.

    python -m training.train_char_rnn --cell gru --data input.txt
"""

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from hw3core import CELLS, ShakespeareWriter
from training.data import CharChunks, collate_chars, read_text, split_text
from training.loop import Task, common_arguments, run

DATA_FLAGS = {"--data": None}  # the records show the file's name (input.txt), not where it lies


def batch_metrics(model, batch):
    logits, _ = model(batch["inputs"], every_position=True)  # (N, T, V)
    targets = batch["targets"]
    loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
    return loss, (logits.argmax(-1) == targets).sum(), targets.numel()


def build_task(args) -> Task:
    text = read_text(args.data)
    train_text, val_text = split_text(text, args.val_fraction)
    characters = "".join(sorted(set(text)))
    torch.manual_seed(args.seed)
    model = ShakespeareWriter(characters, args.cell, args.embedding_dim, args.hidden_size, True, args.dropout)
    if args.limit:
        train_text, val_text = train_text[: args.limit * args.history + 1], val_text[: args.limit * args.history + 1]

    def chunks(part: str) -> CharChunks:
        return CharChunks(torch.tensor(model.encode(part)), args.history)

    return Task(
        name=f"shakespeare-{args.cell}",
        model=model,
        train_set=chunks(train_text),
        val_set=chunks(val_text),
        collate=collate_chars,
        batch_metrics=batch_metrics,
        clip_grad_norm=args.clip_grad_norm,
        metadata={"data": f"Tiny Shakespeare ({Path(args.data).name})", "vocabulary_size": len(characters), "split": {
            "total": len(text), "val_fraction": args.val_fraction, "train_characters": len(train_text),
            "val_characters": len(val_text), "history": args.history,
        }},
        description=description(args),
    )


def description(args) -> str:
    return (f"A character-level {args.cell.upper()} (embedding {args.embedding_dim}, hidden {args.hidden_size}) "
            "that writes like Shakespeare; metrics are per character.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cell", choices=sorted(CELLS), default="gru")
    parser.add_argument("--data", required=True, help="a plain UTF-8 text file, e.g. tinyshakespeare/input.txt")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="the end of the text held out")
    parser.add_argument("--embedding-dim", type=int, default=256)
    parser.add_argument("--hidden-size", type=int, default=512)
    parser.add_argument("--history", type=int, default=100, help="characters per training sequence")
    parser.add_argument("--clip-grad-norm", type=float, default=1.0)
    parser.add_argument("--dropout", type=float, default=0.0, help="on the character embeddings and the hidden states")
    common_arguments(parser, epochs=10, batch_size=64)
    return run(parser, build_task, lambda args: f"shakespeare-{args.cell}", argv, DATA_FLAGS)


if __name__ == "__main__":
    main()
