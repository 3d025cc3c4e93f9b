"""The one training loop all three tasks share (its command line: training.config; its processes and
samplers: training.distributed).

A task supplies a model, its two data sets, a collate function and ``batch_metrics`` (the loss
and the number of correct predictions of a batch); ``fit`` does the rest: single process or
DistributedDataParallel under torchrun, mixed precision on GPU, a progress bar, per-epoch
metrics and plots, atomic checkpoints and exact resumption.
"""

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from hw3core.checkpoints import METRICS_FILE, RUN_FILE
from hw3core.compression import COMPRESSED_FILE, COMPRESSION_FILE
from hw3core.numerics import flush_denormals
from hw3core.records import Epoch, RunRecord
from training import distributed, event_log, hub, plots
from training.config import TrainingConfig, parse_arguments, portable_arguments, recorded_command
from training.data import DataError
from training.distributed import Distributed, hardware, reduce, setup_distributed

CLASS_SCORES = ("balanced_accuracy", "balanced_loss", "per_class", "confusion")  # per_class_scores' keys
RESUME_FILE = "resume.pt"  # optimizer moments and RNG states; read back with weights_only=True
# -> (mean loss, correct, count), and for a task with classes a fourth item: class_tally's (C, C + 1) counts.
BatchMetrics = Callable[[nn.Module, dict], tuple]


@dataclass
class Task:
    name: str  # the checkpoint name, e.g. "sentiment-gru"
    model: nn.Module  # a PyTorchModelHubMixin model
    train_set: Dataset
    val_set: Dataset
    collate: Callable
    batch_metrics: BatchMetrics
    clip_grad_norm: float | None = None
    metadata: dict = field(default_factory=dict)  # the split and data description, saved with the run
    description: str = ""  # one line for the model card
    cpu_bfloat16: bool = False  # the model may run under bfloat16 autocast on a CPU that computes it natively
    ordered: bool = False  # the training batches continue each other (CharStreams): read in order, never shuffled
    # A sample of the training data scored as validation is (eval mode) after each epoch: with dropout on,
    # the training pass's own loss is not the model's, and the gap to validation loss needs the model's.
    train_probe: Dataset | None = None
    # A classifier's class names: each pass then also reports its confusion matrix, the accuracy and loss
    # of every class, and their means (balanced accuracy and loss), which choose the kept epoch.
    classes: tuple[str, ...] = ()
    # Training examples drawn with these weights (with replacement, as many per epoch as the set holds)
    # instead of each once in a shuffled order.
    sample_weights: list[float] | None = None


def class_tally(logits: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """(C, C + 1): the confusion matrix (row: true class, column: predicted) and, in the last column,
    each true class's summed plain cross-entropy. Summed over batches and ranks like the other totals."""
    tally = torch.zeros(num_classes, num_classes + 1, dtype=torch.float64, device=logits.device)
    flat = labels * num_classes + logits.argmax(1)
    tally[:, :num_classes] = torch.bincount(flat, minlength=num_classes**2).view(num_classes, num_classes)
    losses = F.cross_entropy(logits.detach().float(), labels, reduction="none").double()
    tally[:, num_classes].index_add_(0, labels, losses)
    return tally


def per_class_scores(tally: Tensor, classes: tuple[str, ...]) -> dict:
    """The figures a class tally gives: balanced accuracy and loss (the classes' means, each class
    counting alike however many examples it has), per-class accuracy and the confusion matrix."""
    confusion = tally[:, :-1]
    support = confusion.sum(1).clamp(min=1)
    accuracy = (confusion.diag() / support).tolist()
    loss = (tally[:, -1] / support).tolist()
    return {
        "balanced_accuracy": sum(accuracy) / len(classes),
        "balanced_loss": sum(loss) / len(classes),
        "per_class": dict(zip(classes, accuracy, strict=True)),
        "confusion": confusion.long().tolist(),
    }


def run(parser: argparse.ArgumentParser, build_task: Callable, task: str, argv=None,
        data_flags: dict[str, str | None] | None = None) -> list[dict]:
    """Parses the flags of a ``task``'s script (the model they pick gives their defaults), builds the task
    (a data error is a message, not a traceback) and trains. ``data_flags`` maps each data-path flag to what
    the records show instead of the path: a placeholder (``{"--data": "PACS_DIR"}``), or None for the file's
    own name (``aclImdb_v1.tar.gz``). A record names its data set, never a folder of the machine that trained."""
    args = parse_arguments(parser, task, argv)
    data_flags = data_flags or {}
    config = TrainingConfig.from_arguments(args, recorded_command(argv, data_flags),
                                           portable_arguments(vars(args), data_flags))
    try:
        built = build_task(args)
    except DataError as error:
        sys.exit(f"error: {error}")
    return fit(built, config)


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}


def native_cpu_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AMX or AVX-512 BF16). Elsewhere CPU autocast
    emulates it and runs AlexNet about 3x slower than float32, so it is used only where native."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def uses_bfloat16(task: Task, device: torch.device, amp: bool) -> bool:
    return amp and (device.type == "cuda" or (task.cpu_bfloat16 and native_cpu_bfloat16()))


def _autocast(device: torch.device, enabled: bool):
    # bfloat16 keeps float32's range, so no loss scaling is needed; the RNN recurrences opt out themselves.
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def learning_rate_schedule(optimizer, schedule: str, warmup: float, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A factor per step: linear warm-up over the ``warmup`` share of the steps, then constant or a cosine to zero."""
    warmup = round(warmup * steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(steps - warmup, 1)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def run_epoch(model, loader, task: Task, world: Distributed, amp: bool, optimizer=None, description: str = "",
              scheduler=None, steps: list | None = None) -> dict:
    """One pass over ``loader``: trains when given an optimizer, else evaluates. Metrics summed over ranks.
    ``steps``, when given, gets (the batch's loss as a tensor, the learning rate) per optimizer step: read
    once the epoch ends, so the loop keeps its one host-device sync every 20 steps."""
    training = optimizer is not None
    model.train(training)
    totals = torch.zeros(4, dtype=torch.float64, device=world.device)  # loss sum, correct, count, skipped
    tally = torch.zeros(len(task.classes), len(task.classes) + 1, dtype=torch.float64, device=world.device)
    start = time.perf_counter()
    bar = tqdm(loader, desc=description, disable=not world.is_main, leave=False, dynamic_ncols=True, mininterval=2)
    with torch.set_grad_enabled(training):
        for step, batch in enumerate(bar):
            totals[3] += batch.pop("skipped", 0)
            batch = _to_device(batch, world.device)
            with _autocast(world.device, amp):
                loss, correct, count, *batch_tally = task.batch_metrics(model, batch)
            if not count:  # every example of the batch was unreadable: nothing to learn or score,
                if not (training and world.world_size > 1):
                    continue
                # but the other ranks wait in backward's all-reduce for this one: join them with zero gradients.
                loss = loss.nan_to_num(0.0) * 0.0
            if training:
                if steps is not None:
                    steps.append((loss.detach(), optimizer.param_groups[0]["lr"]))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if task.clip_grad_norm:
                    nn.utils.clip_grad_norm_(model.parameters(), task.clip_grad_norm)
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
            totals[0] += loss.detach().double() * count
            totals[1] += correct.double()
            totals[2] += count
            if task.classes:
                tally += batch_tally[0]
            if world.is_main and step % 20 == 0:  # the only host-device sync, every 20 steps
                seen = max(totals[2].item(), 1)
                bar.set_postfix(
                    loss=f"{totals[0].item() / seen:.4f}",
                    acc=f"{totals[1].item() / seen:.4f}",
                    ex_per_s=f"{seen * world.world_size / (time.perf_counter() - start):.0f}",
                )
    loss_sum, correct, count, skipped = reduce(totals, world).tolist()
    seconds = time.perf_counter() - start
    return {
        "loss": loss_sum / max(count, 1),
        "accuracy": correct / max(count, 1),
        "n": int(count),
        "skipped": int(skipped),
        "seconds": seconds,
        "examples_per_second": count / seconds,
        **(per_class_scores(reduce(tally, world), task.classes) if task.classes else {}),
    }


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _remove_what_compress_made(out: Path) -> None:
    """New weights replace the folder's: the compressed weights and their record, made by training.compress
    from the old ones, would otherwise be shown with the new run's record (and served once the dense file goes)."""
    stale = [name for name in (COMPRESSED_FILE, COMPRESSION_FILE) if (out / name).is_file()]
    for name in stale:
        (out / name).unlink()
    if stale:
        print(f"removed {' and '.join(stale)} from {out}: training.compress made them from the weights this run replaces")


def _save_model(model: nn.Module, out: Path) -> None:
    """save_pretrained into a scratch folder, then move each file over the old one."""
    scratch = out / ".saving"
    model.save_pretrained(scratch)
    for file in scratch.iterdir():
        file.chmod(0o644)  # safetensors writes 0600; the folder is meant to be shared and served
        os.replace(file, out / file.name)
    scratch.rmdir()


def fit(task: Task, config: TrainingConfig) -> list[dict]:
    """Trains ``task.model`` for ``config.epochs`` epochs; returns the per-epoch metrics."""
    world = setup_distributed(config.device)
    flush_denormals()
    # Same initial weights on every rank (DDP also broadcasts them); a different dropout stream per rank.
    torch.manual_seed(config.seed + world.rank)
    model = task.model.to(world.device)
    trained = DistributedDataParallel(model) if world.world_size > 1 else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    amp = uses_bfloat16(task, world.device, config.amp)
    out = Path(config.out)
    history: list[dict] = []
    run = {"command": config.command}

    resumed_schedule = None
    if config.resume and (out / RESUME_FILE).is_file():
        try:
            state = torch.load(out / RESUME_FILE, map_location=world.device, weights_only=True)
        except Exception as error:  # noqa: BLE001 (a truncated file, or a pickle that asks for more than tensors)
            sys.exit(f"error: cannot resume from {out / RESUME_FILE}: {type(error).__name__}: {str(error)[:300]}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        resumed_schedule = state.get("scheduler")
        history = json.loads(state["history"])
        run = json.loads(state["run"])
        torch.set_rng_state(state["rng"][world.rank].cpu())
        if world.is_main:
            print(f"resuming {out} after epoch {len(history)}")
    elif config.resume and world.is_main:
        print(f"nothing to resume in {out}: starting from scratch")

    if not len(task.val_set) and config.keep == "best":
        sys.exit("error: --keep best needs a validation set; a run on all the data keeps its last epoch (--keep last)")
    train_loader = distributed.loader(task.train_set, task, config, world, train=True)
    val_loader = distributed.loader(task.val_set, task, config, world, train=False)
    probe_loader = distributed.loader(task.train_probe, task, config, world, train=False) if task.train_probe else None
    scheduler = learning_rate_schedule(optimizer, config.schedule, config.warmup, config.epochs * len(train_loader))
    if history and resumed_schedule:
        scheduler.load_state_dict(resumed_schedule)
        # Building the scheduler set every group's rate to that of step 0; go on at the one the run stopped at.
        for group, lr in zip(optimizer.param_groups, scheduler.get_last_lr(), strict=True):
            group["lr"] = lr
    writer = None
    if world.is_main:
        out.mkdir(parents=True, exist_ok=True)
        if not history:
            event_log.remove_event_files(out)
        # A resumed run adds a file of its own; TensorBoard (and hw3core.curves) read the folder as one run.
        writer = SummaryWriter(str(out))
        print(f"{task.name}: {len(task.train_set)} training / {len(task.val_set)} validation examples, "
              f"{sum(p.numel() for p in model.parameters()):,} parameters, on {hardware(world.device, world.world_size)}")

    for epoch in range(len(history), config.epochs):
        train_loader.sampler.set_epoch(epoch)
        label = f"epoch {epoch + 1}/{config.epochs}"
        steps = [] if writer else None
        train = run_epoch(trained, train_loader, task, world, amp, optimizer, f"{label} train", scheduler, steps)
        # The plain module: shards may differ by a batch, and evaluation needs no DDP synchronisation.
        # In float32, as training.evaluate and the app run it, so the recorded figures are theirs.
        val = run_epoch(model, val_loader, task, world, amp=False, description=f"{label} val") if len(task.val_set) \
            else {"loss": None, "accuracy": None, "seconds": 0.0, "skipped": 0}  # trained on all the data
        row = Epoch(epoch + 1, train["loss"], train["accuracy"], val["loss"], val["accuracy"],
                    epoch_seconds=train["seconds"] + val["seconds"], examples_per_second=train["examples_per_second"],
                    skipped_examples=train["skipped"] + val["skipped"])
        if task.classes:
            row.train_balanced_accuracy = train["balanced_accuracy"]
            if len(task.val_set):
                for key in CLASS_SCORES:
                    setattr(row, f"val_{key}", val[key])
        if probe_loader is not None:
            probe = run_epoch(model, probe_loader, task, world, amp=False, description=f"{label} train (eval mode)")
            row.train_eval_loss, row.train_eval_accuracy = probe["loss"], probe["accuracy"]
            row.epoch_seconds += probe["seconds"]
        history.append(row.to_json())
        rng = [torch.get_rng_state()]
        if world.world_size > 1:
            rng = [None] * world.world_size
            dist.all_gather_object(rng, torch.get_rng_state())
        if world.is_main:
            print(json.dumps(history[-1]))
            run.update(_run_record(task, config, world, history, amp))
            kept = kept_epoch(history, config.keep)
            if kept == history[-1]["epoch"]:
                _remove_what_compress_made(out)
                _save_model(model, out)
            run["kept_epoch"] = kept
            record = RunRecord.from_json(run, [Epoch.from_json(row) for row in history])
            run = record.to_json()
            _atomic_write_text(out / METRICS_FILE, "".join(json.dumps(row) + "\n" for row in history))
            _atomic_write_text(out / RUN_FILE, json.dumps(run, indent=2) + "\n")
            event_log.write_steps(writer, epoch * len(train_loader), torch.stack([loss for loss, _ in steps]).tolist()
                                  if steps else [], [rate for _, rate in steps])
            event_log.write_epoch(writer, history[-1])
            writer.flush()
            plots.draw(out, history, task.name, kept, run.get("selection_run", {}).get("history"))
            hub.write_model_card(out, task.description, record)
            # Written last: a run killed before this line redoes the epoch from the previous state.
            _atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict(), "history": json.dumps(history),
                          "run": json.dumps(run), "rng": rng}, out / RESUME_FILE)

    if writer is not None:
        writer.close()
    if world.world_size > 1:
        dist.barrier()
        dist.destroy_process_group()
    if world.is_main and config.push_to_hub and not hub.push(out, config.push_to_hub):
        sys.exit(1)
    return history


def kept_epoch(history: list[dict], keep: str) -> int:
    """The epoch whose weights the checkpoint holds: the last, or the one of lowest validation loss
    (a classifier's balanced loss, so that no class is traded away for the most numerous one)."""
    if keep == "last":
        return history[-1]["epoch"]
    loss = "val_balanced_loss" if "val_balanced_loss" in history[-1] else "val_loss"
    return min(history, key=lambda row: (row[loss], -row["epoch"]))["epoch"]


def _run_record(task: Task, config: TrainingConfig, world: Distributed, history: list[dict], amp: bool) -> dict:
    return {
        "task": task.name,
        "arguments": config.arguments,
        "hardware": hardware(world.device, world.world_size),
        "precision": "bfloat16 autocast (validation in float32)" if amp else "float32",
        "torch": torch.__version__,
        "parameters": sum(p.numel() for p in task.model.parameters()),
        "wall_seconds": sum(row["epoch_seconds"] for row in history),
        **task.metadata,
    }
