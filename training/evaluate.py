"""Scores a checkpoint on a data set; the last line printed is one JSON object.

    python -m training.evaluate domain --checkpoint checkpoints/alexnet --data ../shared/data/pacs
    python -m training.evaluate sentiment --checkpoint checkpoints/sentiment-gru --data aclImdb_v1.tar.gz
    python -m training.evaluate shakespeare --checkpoint checkpoints/shakespeare-gru --data val.txt

``--split auto`` (the default) never scores training data by accident: on the very data set the
checkpoint was trained on (same size as recorded), it scores the recorded validation split;
on any other data, every example.
"""

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

from hw3core import ALEXNET_VARIANTS, DOMAINS, SentimentClassifier, ShakespeareWriter
from hw3core.checkpoints import CheckpointError, load_local
from hw3core.numerics import flush_denormals
from hw3core.records import RecordError, RunRecord, read_training
from hw3core.registry import MODELS
from training import train_alexnet, train_sentiment
from training.data import (
    DataError,
    ImageFolderDataset,
    ReviewDataset,
    collate_images,
    collate_reviews,
    find_pacs_root,
    pacs_samples,
    read_imdb,
    read_text,
    split_text,
)
from training.distributed import Distributed
from training.loop import Task, run_epoch


def _use_val_split(args, run: RunRecord, total: int) -> bool:
    if args.split == "auto":
        return run.split.get("total") == total
    return args.split == "val"


def _score(model, dataset, collate, batch_metrics, batch_size: int, classes: tuple[str, ...] = ()) -> dict:
    task = Task("evaluate", model, dataset, dataset, collate, batch_metrics, classes=classes)
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    return run_epoch(model, loader, task, Distributed(device=_device(model)), amp=False)


def _device(model) -> torch.device:
    return next(model.parameters()).device


def evaluate_domain(args, run: RunRecord) -> dict:
    name = args.variant or run.task or args.checkpoint.name
    if name not in ALEXNET_VARIANTS:
        raise CheckpointError(f"{args.checkpoint}: cannot tell which AlexNet it holds; pass --variant")
    model = load_local(MODELS[name].cls, args.checkpoint)
    root = find_pacs_root(args.data)
    samples = pacs_samples(root)
    use_val = _use_val_split(args, run, len(samples))
    if use_val:
        val_files = set(run.split["val_files"])
        samples = [sample for sample in samples if sample[0] in val_files]
    scores = _score(model, ImageFolderDataset(root, samples), collate_images, train_alexnet.batch_metrics, 64, DOMAINS)
    per_domain = scores.pop("per_class")
    return {**scores, "per_domain": per_domain, "split": "val" if use_val else "all"}


def evaluate_sentiment(args, run: RunRecord) -> dict:
    model = load_local(SentimentClassifier, args.checkpoint)
    reviews = read_imdb(args.data)
    use_val = _use_val_split(args, run, len(reviews))
    if use_val:
        split = run.split
        _, reviews = train_sentiment.split_reviews(reviews, split["val_size"], split["seed"], split["limit"])
    dataset = ReviewDataset([model.encode(text) for text, _ in reviews], [label for _, label in reviews])
    scores = _score(model, dataset, collate_reviews, train_sentiment.batch_metrics, 256)
    return {**scores, "split": "val" if use_val else "all"}


@torch.no_grad()
def evaluate_shakespeare(args, run: RunRecord, chunk: int = 2000) -> dict:
    """Reads the text start to end with the state carried: every character after the first is scored (``loss``);
    then each speech's opening from a zero state (``speech_start_losses``)."""
    model = load_local(ShakespeareWriter, args.checkpoint)
    text = read_text(args.data)
    use_val = _use_val_split(args, run, len(text))
    if use_val:
        if not run.split["val_fraction"]:
            raise DataError(f"{args.checkpoint} was trained on all of {Path(args.data).name}: no part of it is "
                            "held out to score; pass other text, or --split all")
        text = split_text(text, run.split["val_fraction"])[1]
    ids = torch.tensor([model.char_ids[char] for char in text if char in model.char_ids], device=_device(model))
    loss_sum, correct, state = 0.0, 0, None
    for start in range(0, len(ids) - 1, chunk):
        inputs = ids[start : start + chunk][None]
        targets = ids[start + 1 : start + chunk + 1]
        logits, state = model(inputs[:, : len(targets)], state, every_position=True)
        loss_sum += F.cross_entropy(logits[0], targets, reduction="sum").item()
        correct += int((logits[0].argmax(-1) == targets).sum())
    n = max(len(ids) - 1, 0)
    return {"accuracy": correct / max(n, 1), "loss": loss_sum / max(n, 1), "n": n,
            "skipped": len(text) - len(ids), "split": "val" if use_val else "all", **speech_start_losses(model, text)}


# A speech's opening: a speaker's name, its colon and the first words.
SPEECH_OPENING = 20


def speech_openings(text: str, length: int = SPEECH_OPENING) -> list[str]:
    """The first ``length`` characters of every speech that follows a blank line (one of two characters at least)."""
    return [speech[:length] for speech in text.split("\n\n")[1:] if len(speech) > 1 and not speech.startswith("\n")]


@torch.no_grad()
def speech_start_losses(model: ShakespeareWriter, text: str, batch_size: int = 256) -> dict:
    """The loss on each speech's opening characters after its first, read from a zero state: cold (nothing read
    before them) and as a prime is read (after ``model.lead_in``). The writers train with their state carried from
    window to window, so the carried-state loss says nothing of how they start from nothing."""
    openings = [o for o in speech_openings(text) if not model.unknown_characters(o)]
    lead_in = model.encode(model.lead_in("a speech"))
    sums, count = {"cold_start_loss": 0.0, "speech_start_loss": 0.0}, 0
    device = _device(model)
    for start in range(0, len(openings), batch_size):
        batch = openings[start : start + batch_size]
        # Padded after each opening: the recurrence is causal, so padding never reaches a scored position.
        inputs = pad_sequence([torch.tensor(model.encode(o[:-1])) for o in batch], batch_first=True).to(device)
        targets = pad_sequence([torch.tensor(model.encode(o[1:])) for o in batch], batch_first=True,
                               padding_value=-100).to(device)  # (N, T); -100 is cross_entropy's ignore_index
        count += int((targets >= 0).sum())
        for key, before in (("cold_start_loss", []), ("speech_start_loss", lead_in)):
            read = torch.cat([inputs.new_tensor(before).expand(len(batch), -1), inputs], dim=1)
            logits = model(read, every_position=True)[0][:, len(before):]  # (N, T, V)
            sums[key] += F.cross_entropy(logits.transpose(1, 2), targets, reduction="sum").item()
    return {key: total / max(count, 1) for key, total in sums.items()} | {"speeches": len(openings)}


EVALUATORS = {"domain": evaluate_domain, "sentiment": evaluate_sentiment, "shakespeare": evaluate_shakespeare}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=sorted(EVALUATORS))
    parser.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint folder")
    parser.add_argument("--data", required=True, help="the data set, in any format its training script reads")
    parser.add_argument("--split", choices=["auto", "val", "all"], default="auto")
    parser.add_argument("--variant", choices=list(ALEXNET_VARIANTS),
                        help="domain only: which AlexNet the checkpoint holds (default: as its training.json says)")
    args = parser.parse_args(argv)
    flush_denormals()
    try:
        result = EVALUATORS[args.task](args, read_training(args.checkpoint) or RunRecord())
    except (CheckpointError, DataError, RecordError) as error:
        sys.exit(f"error: {error}")
    shown = ("accuracy", "balanced_accuracy", "per_domain", "confusion", "loss", "cold_start_loss", "speech_start_loss",
             "speeches", "n", "skipped", "split")
    result = {key: result[key] for key in shown if key in result}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
