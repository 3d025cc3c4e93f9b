"""Parts A and B: train an AlexNet variant to predict the domain of PACS images.

    python -m training.train_alexnet --variant alexnet --data-dir ../shared/data/pacs
"""

import argparse
import os

import torch
import torch.nn.functional as F

from hw3core import ALEXNET_VARIANTS, DOMAINS
from training.data import ImageFolderDataset, collate_images, find_pacs_root, pacs_samples, seeded_subset, stratified_split
from training.loop import Task, common_arguments, run

CHECKPOINT_NAMES = {"alexnet": "alexnet", "large_kernel": "alexnet-large-kernel", "avg_pooling": "alexnet-avg-pooling"}


def batch_metrics(model, batch):
    logits = model(batch["images"])
    labels = batch["labels"]
    return F.cross_entropy(logits.float(), labels), (logits.argmax(1) == labels).sum(), len(labels)


def build_task(args) -> Task:
    root = find_pacs_root(args.data_dir)
    samples = pacs_samples(root)
    train_ids, val_ids = stratified_split([label for _, label in samples], args.val_fraction, args.seed)
    train_ids, val_ids = seeded_subset(train_ids, args.limit, args.seed), seeded_subset(val_ids, args.limit, args.seed)
    train = [samples[i] for i in train_ids]
    val = [samples[i] for i in val_ids]
    torch.manual_seed(args.seed)
    model = ALEXNET_VARIANTS[args.variant](num_classes=len(DOMAINS))
    return Task(
        name=CHECKPOINT_NAMES[args.variant],
        model=model,
        train_set=ImageFolderDataset(root, train),
        val_set=ImageFolderDataset(root, val),
        collate=collate_images,
        batch_metrics=batch_metrics,
        metadata={"data": f"PACS ({root})", "classes": list(DOMAINS), "split": {
            "seed": args.seed, "val_fraction": args.val_fraction, "stratified_by": "domain", "total": len(samples),
            "train": len(train), "val": len(val), "val_files": [path for path, _ in val],
        }},
        description=f"{type(model).__name__} trained from scratch to predict the domain of PACS images "
        f"({', '.join(DOMAINS)}).",
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=sorted(ALEXNET_VARIANTS), default="alexnet")
    parser.add_argument("--data-dir", required=True, help="the PACS folder (holding art_painting, cartoon, ...)")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    common_arguments(parser, epochs=5, batch_size=128, workers=min(4, os.cpu_count() or 1))
    return run(parser, build_task, lambda args: CHECKPOINT_NAMES[args.variant], argv)


if __name__ == "__main__":
    main()
