"""Parts A and B: train an AlexNet variant to predict the domain of PACS images.

    python -m training.train_alexnet --variant alexnet --data PACS_DIR
    python -m training.train_alexnet --variant alexnet-large-kernel --data PACS_DIR
    python -m training.train_alexnet --variant alexnet-avg-pooling --data PACS_DIR

Each variant's defaults are its recipe in hw3core/registry.py, the one of its shipped checkpoint:
5 epochs of AdamW, a short warm-up then a cosine decay, label smoothing, random crops and flips,
every domain drawn alike.
"""

import argparse
from collections import Counter
from functools import partial

import torch
import torch.nn.functional as F

from hw3core import ALEXNET_VARIANTS, DOMAINS
from hw3core.registry import MODELS
from training.config import common_arguments, script_parser
from training.data import ImageFolderDataset, collate_images, find_pacs_root, pacs_samples, seeded_subset, stratified_split
from training.loop import Task, class_tally, run

DATA_FLAGS = {"--data": "PACS_DIR"}  # the records name the data set, not the folder it lies in


def batch_metrics(model, batch, label_smoothing: float = 0.0):
    # channels_last is the layout oneDNN's convolutions run fastest in, on CPU and GPU alike.
    logits = model(batch["images"].contiguous(memory_format=torch.channels_last))
    labels = batch["labels"]
    smoothing = label_smoothing if model.training else 0.0  # validation reports the plain cross-entropy
    loss = F.cross_entropy(logits.float(), labels, label_smoothing=smoothing)
    return loss, (logits.argmax(1) == labels).sum(), len(labels), class_tally(logits, labels, len(DOMAINS))


def balanced_weights(labels: list[int], shares: list[float] | None = None) -> list[float]:
    """A weight per example that gives every domain the same share of the draws (PACS has twice as many
    sketches as photos, and sketches are the easy domain), or with ``shares`` (one per domain) a share
    in proportion to its own."""
    counts = Counter(labels)
    return [(shares[label] if shares else 1) / counts[label] for label in labels]


def draw_weights(labels: list[int], sampling: str, domain_weights: list[float] | None) -> list[float] | None:
    """The training sampler's weight per example, or None to shuffle every image once per epoch."""
    if sampling == "balanced":
        return balanced_weights(labels, domain_weights)
    return [domain_weights[label] for label in labels] if domain_weights else None


def split_samples(samples: list[tuple[str, int]], val_fraction: float, seed: int, limit: int | None):
    train_ids, val_ids = stratified_split([label for _, label in samples], val_fraction, seed)
    train_ids, val_ids = seeded_subset(train_ids, limit, seed), seeded_subset(val_ids, limit, seed)
    return [samples[i] for i in train_ids], [samples[i] for i in val_ids]


def positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction in (0, 1]")
    return value


def build_task(args) -> Task:
    root = find_pacs_root(args.data)
    samples = pacs_samples(root)
    train, val = split_samples(samples, args.val_fraction, args.seed, args.limit)
    torch.manual_seed(args.seed)
    model = ALEXNET_VARIANTS[args.variant](num_classes=len(DOMAINS), dropout=args.dropout)
    model = model.to(memory_format=torch.channels_last)
    return Task(
        name=args.variant,
        model=model,
        train_set=ImageFolderDataset(root, train, None if args.no_augment else args.crop_scale),
        val_set=ImageFolderDataset(root, val),
        collate=collate_images,
        batch_metrics=partial(batch_metrics, label_smoothing=args.label_smoothing),
        cpu_bfloat16=True,
        classes=DOMAINS,
        sample_weights=draw_weights([label for _, label in train], args.sampling, args.domain_weights),
        metadata={"data": "PACS", "classes": list(DOMAINS), "split": {
            "seed": args.seed, "val_fraction": args.val_fraction, "stratified_by": "domain", "total": len(samples),
            "train": len(train), "val": len(val), "val_files": [path for path, _ in val],
        }},
        description=description(args),
    )


def description(args) -> str:
    return f"{MODELS[args.variant].title} trained from scratch to predict the domain of PACS images ({', '.join(DOMAINS)})."


def parser() -> argparse.ArgumentParser:
    """The flags; those a recipe sets have its value as their default once the variant is known (training.config)."""
    parser = script_parser(__doc__)
    parser.add_argument("--variant", choices=list(ALEXNET_VARIANTS), default="alexnet", help="the model trained")
    parser.add_argument("--data", required=True, help="the PACS folder (holding art_painting, cartoon, ...)")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="share of each domain held out")
    parser.add_argument("--label-smoothing", type=float, help="of the training loss (validation's is plain)")
    parser.add_argument("--no-augment", action="store_true", help="train on the plain images (no crops or flips)")
    parser.add_argument("--crop-scale", type=fraction, metavar="FRACTION",
                        help="the smallest share of an image a random training crop covers")
    parser.add_argument("--sampling", choices=["balanced", "uniform"],
                        help="draw each domain equally often (with replacement), or every image once per epoch")
    parser.add_argument("--domain-weights", type=positive, nargs=len(DOMAINS), metavar="W", default=None,
                        help=f"scale each domain's draws by its weight ({', '.join(DOMAINS)}), on top of --sampling")
    parser.add_argument("--dropout", type=float, default=0.5,
                        help="the rate of the tables' two dropout layers, before the first two linear layers")
    common_arguments(parser)
    return parser


def main(argv=None):
    return run(parser(), build_task, "domain", argv, DATA_FLAGS)


if __name__ == "__main__":
    main()
