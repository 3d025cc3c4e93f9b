"""Part C: train a GRU or LSTM sentiment classifier on IMDB reviews.

    python -m training.train_sentiment --cell gru --data aclImdb_v1.tar.gz

Each cell's defaults are its recipe in hw3core/registry.py, the one of its shipped checkpoint.
"""

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from hw3core import CELLS, SentimentClassifier
from hw3core.registry import spec_of
from hw3core.text import MIN_LENGTH, build_vocabulary, words_read
from training.config import common_arguments, script_parser
from training.data import ReviewDataset, balanced_holdout, collate_reviews, read_imdb, seeded_subset
from training.loop import Task, run

DATA_FLAGS = {"--data": None}  # the records show the file's name (aclImdb_v1.tar.gz), not where it lies


def batch_metrics(model, batch):
    logits = model(batch["reviews"], batch["lengths"])
    labels = batch["labels"]
    return F.cross_entropy(logits.float(), labels), (logits.argmax(1) == labels).sum(), len(labels)


def split_reviews(reviews: list[tuple[str, int]], val_size: int, seed: int, limit: int | None):
    labels = [label for _, label in reviews]
    train_ids, val_ids = balanced_holdout(labels, val_size, seed)
    train_ids, val_ids = seeded_subset(train_ids, limit, seed), seeded_subset(val_ids, limit, seed)
    return [reviews[i] for i in train_ids], [reviews[i] for i in val_ids]


def build_task(args) -> Task:
    try:  # before the reviews are read: a window that cannot be read is the flags' fault
        words_read(0, args.max_length, args.tail_length)
    except ValueError as error:
        sys.exit(f"error: --tail-length: {error}")
    reviews = read_imdb(args.data)
    train, val = split_reviews(reviews, args.val_size, args.seed, args.limit)
    vocabulary = build_vocabulary((text for text, _ in train), args.min_count, args.max_vocabulary)
    torch.manual_seed(args.seed)
    model = SentimentClassifier(vocabulary, args.cell, args.embedding_dim, args.hidden_size, True, args.max_length,
                                args.dropout, args.tail_length)

    def dataset(reviews):
        return ReviewDataset([model.encode(text) for text, _ in reviews], [label for _, label in reviews])

    return Task(
        name=spec_of("sentiment", args.cell).name,
        model=model,
        train_set=dataset(train),
        val_set=dataset(val),
        collate=collate_reviews,
        batch_metrics=batch_metrics,
        clip_grad_norm=args.clip_grad_norm,
        metadata={"data": f"IMDB ({Path(args.data).name})", "vocabulary_size": len(vocabulary), "split": {
            "seed": args.seed, "pooled": "all labelled reviews", "total": len(reviews), "val_size": args.val_size,
            "limit": args.limit, "train": len(train), "val": len(val),
            "val_positive": sum(label for _, label in val),
        }},
        description=description(args),
    )


def description(args) -> str:
    window = (f"first {args.max_length} tokens" if not args.tail_length else
              f"{args.max_length} tokens: of a longer review, its first words and its last {args.tail_length}")
    return (f"IMDB review sentiment with a hand-written {args.cell.upper()} cell (embedding {args.embedding_dim}, "
            f"hidden {args.hidden_size}, {window}).")


def review_length(value: str) -> int:
    length = int(value)
    if length < MIN_LENGTH:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_LENGTH} (BEGIN and END), not {length}")
    return length


def parser() -> argparse.ArgumentParser:
    """The flags; those a recipe sets have its value as their default once the cell is known (training.config)."""
    parser = script_parser(__doc__)
    parser.add_argument("--cell", choices=sorted(CELLS), default="gru", help="the recurrent cell")
    parser.add_argument("--data", required=True, help="aclImdb_v1.tar.gz, an extracted aclImdb folder, or a CSV")
    parser.add_argument("--val-size", type=int, default=5000, help="reviews held out, half of each label")
    parser.add_argument("--embedding-dim", type=int, default=128, help="of each word")
    parser.add_argument("--hidden-size", type=int, default=100, help="of the cell")
    parser.add_argument("--max-length", type=review_length, default=200, help="tokens read per review (2 or more)")
    parser.add_argument("--tail-length", type=int, metavar="N",
                        help="of a review longer than the window, read its last N words after its first ones "
                             "(0: only its first words, as the assignment's starter code)")
    parser.add_argument("--min-count", type=int, default=100, help="a word's occurrences to enter the vocabulary")
    parser.add_argument("--max-vocabulary", type=int, default=20_000, help="the most frequent words kept")
    parser.add_argument("--clip-grad-norm", type=float, default=1.0, help="the gradient's largest norm")
    parser.add_argument("--dropout", type=float, help="on the word embeddings and on the last hidden state")
    common_arguments(parser)
    return parser


def main(argv=None):
    return run(parser(), build_task, "sentiment", argv, DATA_FLAGS)


if __name__ == "__main__":
    main()
