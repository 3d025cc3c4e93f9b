"""Deep Compression of a trained AlexNet: prune, fine-tune with the masks held, quantize, encode.

    python -m training.compress --checkpoint checkpoints/alexnet [--out DIR] [--data PACS_DIR]

Each stage is scored on the checkpoint's recorded validation split before the next one starts, as
in Han, Mao & Dally (ICLR 2016). The folder written (by default the checkpoint's own) holds
``compressed.safetensors`` beside ``config.json``, its training records and ``compression.json``;
the app, ``training.evaluate`` and ``--push-to-hub`` read it like a dense checkpoint.

The PACS folder is needed to fine-tune and to score: ``--data``, else ``$PACS_DIR``, else
``$HW3_DATA_DIR/pacs``.
"""

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from hw3core import ALEXNET_VARIANTS, DOMAINS
from hw3core.checkpoints import (
    CONFIG_FILE,
    METRICS_FILE,
    PLOT_FILES,
    RUN_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    is_valid_repo_id,
    load_local,
)
from hw3core.compression import COMPRESSED_FILE, COMPRESSION_FILE, save_compressed
from hw3core.records import CompressionRecord, RecordError, RunRecord, Scores, read_run, read_training
from hw3core.registry import MODELS
from training import hub, train_alexnet
from training.config import script_parser, without_paths
from training.data import DataError, ImageFolderDataset, collate_images, find_pacs_root, pacs_samples
from training.distributed import Distributed, WeightedShardSampler, hardware
from training.loop import CLASS_SCORES, Task, learning_rate_schedule, run_epoch, uses_bfloat16

# What train_alexnet cropped to before --crop-scale was a flag: its records from then hold no crop_scale.
UNRECORDED_CROP_SCALE = 0.5
FINE_TUNE_SCHEDULE = "cosine"  # from the fine-tuning's peak rate to zero, without warm-up: the weights are trained


def prunable_layers(model: nn.Module) -> list[str]:
    """The weights of every layer but the first convolution and the classifier: those two are small
    (0.06% of AlexNet) and have the fewest spare weights, so they stay dense, as in Deep Compression."""
    names = [name for name, module in model.named_children() if isinstance(module, (nn.Conv2d, nn.Linear))]
    return [f"{name}.weight" for name in names[1:-1]]


def magnitude_masks(model: nn.Module, densities: dict[str, float]) -> dict[str, torch.Tensor]:
    """Per layer, true for the ``density`` share of weights largest in magnitude."""
    state = model.state_dict()
    masks = {}
    for name, density in densities.items():
        weight = state[name].abs().flatten()
        keep = max(1, round(density * weight.numel()))
        threshold = torch.topk(weight, keep, sorted=True).values[-1]
        masks[name] = state[name].abs() >= threshold
    return masks


@torch.no_grad()
def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    parameters = dict(model.named_parameters())
    for name, mask in masks.items():
        parameters[name].mul_(mask)


def layer_plan(model: nn.Module, args) -> tuple[dict[str, float], dict[str, int]]:
    """(density of each pruned weight, bits of each weight)."""
    prunable = prunable_layers(model)
    modules = dict(model.named_children())
    densities, bits = {}, {}
    for name, module in modules.items():
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            continue
        key = f"{name}.weight"
        is_linear = isinstance(module, nn.Linear)
        if key in prunable:
            densities[key] = args.fc_density if is_linear else args.conv_density
        bits[key] = args.fc_bits if is_linear and key in prunable else args.conv_bits
    return densities, bits


def resolve_data(data: str | None) -> Path:
    candidates = [data, os.environ.get("PACS_DIR")]
    if os.environ.get("HW3_DATA_DIR"):
        candidates.append(str(Path(os.environ["HW3_DATA_DIR"]) / "pacs"))
    for candidate in candidates:
        if candidate:
            return find_pacs_root(candidate)
    raise DataError("no PACS folder: pass --data PACS_DIR (fine-tuning and scoring need the images), "
                    "or set PACS_DIR")


def score(model: nn.Module, loader: DataLoader, task: Task, world: Distributed, label: str) -> Scores:
    result = run_epoch(model, loader, task, world, amp=False, description=label)  # float32, as evaluate scores
    return Scores.from_json({key: result[key] for key in ("accuracy", "loss", "n", *CLASS_SCORES)})


def alexnet_record(checkpoint: Path) -> RunRecord:
    """The training record of an AlexNet checkpoint; its ``task`` names the variant."""
    run = read_training(checkpoint) or RunRecord()
    run.task = run.task or checkpoint.name  # a folder without a record is named for its variant
    if run.task not in ALEXNET_VARIANTS:
        raise CheckpointError(f"{checkpoint}: {RUN_FILE} does not name an AlexNet variant ({run.task!r})")
    return run


def compress(args, run: RunRecord) -> CompressionRecord:
    checkpoint, out, name = args.checkpoint, args.out or args.checkpoint, run.task
    split = run.split
    if not split:  # scoring needs the images training held out, and only the record names them
        raise CheckpointError(f"{checkpoint / RUN_FILE} is missing or records no validation split")
    if not (checkpoint / WEIGHTS_FILE).is_file():
        raise CheckpointError(f"{checkpoint / WEIGHTS_FILE} is missing: compression starts from the dense weights")
    model = load_local(MODELS[name].cls, checkpoint).to(memory_format=torch.channels_last)
    root = resolve_data(args.data)
    train, val = train_alexnet.split_samples(pacs_samples(root), split["val_fraction"], split["seed"], args.limit)
    if not args.limit and sorted(path for path, _ in val) != sorted(split["val_files"]):
        raise DataError(f"{root} does not give the validation split recorded in {checkpoint / RUN_FILE}")

    stages = tqdm(total=5, desc="compress", unit="stage", dynamic_ncols=True)
    start = time.perf_counter()
    world = Distributed()
    torch.manual_seed(args.seed)
    smoothing = run.arguments.get("label_smoothing", 0.0)
    crop_scale = run.arguments.get("crop_scale", UNRECORDED_CROP_SCALE)  # fine-tuning sees the crops training saw
    # Fine-tuning draws the domains as training did (runs before balanced sampling drew every image once).
    sampling = run.arguments.get("sampling", "uniform")
    weights = train_alexnet.draw_weights([label for _, label in train], sampling, run.arguments.get("domain_weights"))
    task = Task(name, model, ImageFolderDataset(root, train, crop_scale),
                ImageFolderDataset(root, val),
                collate_images, lambda m, b: train_alexnet.batch_metrics(m, b, smoothing), cpu_bfloat16=True,
                classes=DOMAINS)
    amp = uses_bfloat16(task, world.device, True)
    sampler = WeightedShardSampler(weights, seed=args.seed) if weights else None
    train_loader = DataLoader(task.train_set, args.batch_size, shuffle=sampler is None, sampler=sampler,
                              collate_fn=collate_images)
    val_loader = DataLoader(task.val_set, 64, collate_fn=collate_images)
    stages.update()
    record = {"dense": score(model, val_loader, task, world, "dense val")}
    stages.update()

    densities, bits = layer_plan(model, args)
    masks = magnitude_masks(model, densities)
    apply_masks(model, masks)
    record["pruned"] = score(model, val_loader, task, world, "pruned val")
    stages.update()

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    optimizer.register_step_post_hook(lambda *_: apply_masks(model, masks))  # pruned weights stay zero
    scheduler = learning_rate_schedule(optimizer, FINE_TUNE_SCHEDULE, 0.0, args.epochs * len(train_loader))
    for epoch in range(args.epochs):
        run_epoch(model, train_loader, task, world, amp, optimizer, f"fine-tune {epoch + 1}/{args.epochs}", scheduler)
    record["fine_tuned"] = score(model, val_loader, task, world, "fine-tuned val")
    stages.update()

    out.mkdir(parents=True, exist_ok=True)
    layout = save_compressed(out / COMPRESSED_FILE, model.state_dict(), masks, bits)
    (out / COMPRESSED_FILE).chmod(0o644)  # safetensors writes 0600; the folder is meant to be shared and served
    # The figure that counts: the model rebuilt from the file, as the app and evaluate load it.
    if out.resolve() != checkpoint.resolve():
        shutil.copy(checkpoint / CONFIG_FILE, out / CONFIG_FILE)
    rebuilt = load_local(MODELS[name].cls, out, COMPRESSED_FILE)
    record["compressed"] = score(rebuilt.to(memory_format=torch.channels_last), val_loader, task, world,
                                 "compressed val")
    stages.update()
    stages.close()

    record = CompressionRecord(
        command=shlex.join(["python", "-m", "training.compress", *without_paths(args.argv, train_alexnet.DATA_FLAGS)]),
        checkpoint=name,
        method="magnitude pruning, fine-tuning with the masks held, k-means codebook per layer, "
               "relative (gap) or bitmask positions",
        hardware=hardware(world.device),
        precision="fine-tuning in bfloat16 autocast, scoring in float32" if amp else "float32",
        wall_seconds=time.perf_counter() - start,
        fine_tune={"epochs": args.epochs, "lr": args.lr, "weight_decay": args.weight_decay,
                   "schedule": FINE_TUNE_SCHEDULE, "batch_size": args.batch_size, "label_smoothing": smoothing,
                   "sampling": sampling, "domain_weights": run.arguments.get("domain_weights")},
        validation=record,
        dense_bytes=sum(p.numel() * p.element_size() for p in model.parameters()),
        compressed_bytes=(out / COMPRESSED_FILE).stat().st_size,
        layers=[{"name": key, **entry, "density": entry["kept"] / torch.Size(entry["shape"]).numel()}
                for key, entry in layout.items()],
    )
    _write_folder(checkpoint, out, record)
    return record


def _write_folder(checkpoint: Path, out: Path, record: CompressionRecord) -> None:
    if out.resolve() != checkpoint.resolve():  # a folder of its own: take the config and the training records
        for file in (CONFIG_FILE, METRICS_FILE, RUN_FILE, *PLOT_FILES.values()):
            if (checkpoint / file).is_file():
                shutil.copy(checkpoint / file, out / file)
    (out / COMPRESSION_FILE).write_text(json.dumps(record.to_json(), indent=2) + "\n")
    run = read_run(out)
    if run is not None:
        description = train_alexnet.description(argparse.Namespace(variant=record.checkpoint))
        hub.write_model_card(out, description, run)


def main(argv=None) -> dict:
    parser = script_parser(__doc__)
    parser.add_argument("--checkpoint", type=Path, required=True, help="a dense AlexNet checkpoint folder")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: the checkpoint folder)")
    parser.add_argument("--data", default=None,
                        help="the PACS folder (default: $PACS_DIR or $HW3_DATA_DIR/pacs)")
    parser.add_argument("--conv-density", type=float, default=0.5, help="share of each pruned convolution's weights kept")
    parser.add_argument("--fc-density", type=float, default=0.05, help="share of each hidden linear layer's weights kept")
    parser.add_argument("--conv-bits", type=int, default=8, help="codebook bits of convolutions and the classifier")
    parser.add_argument("--fc-bits", type=int, default=4, help="codebook bits of the hidden linear layers")
    parser.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs with the masks held")
    parser.add_argument("--lr", type=float, default=1e-4, help="the fine-tuning's peak learning rate")
    parser.add_argument("--weight-decay", type=float, default=0.05, help="AdamW's, while fine-tuning")
    parser.add_argument("--batch-size", type=int, default=64, help="of fine-tuning")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="use only N images (smoke runs)")
    parser.add_argument("--seed", type=int, default=0, help="of the fine-tuning's draws")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", default=None)
    # The variant's own defaults (MODELS[name].compression), so the command a record shows remakes its file,
    # read before the other flags (and --help, which then prints them).
    picker = argparse.ArgumentParser(add_help=False)
    picker.add_argument("--checkpoint", type=Path)
    checkpoint = picker.parse_known_args(argv)[0].checkpoint
    if checkpoint is not None:
        try:
            run = alexnet_record(checkpoint)
        except (CheckpointError, RecordError) as error:
            sys.exit(f"error: {error}")
        parser.set_defaults(**MODELS[run.task].compression)
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv  # for the record's command
    if args.push_to_hub and not is_valid_repo_id(args.push_to_hub):
        parser.error(f"--push-to-hub {args.push_to_hub!r} is not a Hub repo id (expected 'owner/name')")
    if not (0 < args.conv_density <= 1 and 0 < args.fc_density <= 1):
        parser.error("--conv-density and --fc-density must be in (0, 1]")
    if not (1 <= args.conv_bits <= 8 and 1 <= args.fc_bits <= 8) or args.epochs < 0 or args.lr <= 0:
        parser.error("--conv-bits and --fc-bits must be 1 to 8, --epochs at least 0 and --lr positive")
    try:
        record = compress(args, run)
    except (CheckpointError, DataError, RecordError) as error:
        sys.exit(f"error: {error}")
    print(json.dumps({stage: round(scores.accuracy, 4) for stage, scores in record.validation.items()}
                     | {"compressed_bytes": record.compressed_bytes}))
    out = args.out or args.checkpoint
    if args.push_to_hub and not hub.push(out, args.push_to_hub):
        sys.exit(1)
    return record


if __name__ == "__main__":
    main()
