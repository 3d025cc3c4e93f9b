"""The one training loop all three tasks share.

A task supplies a model, its two data sets, a collate function and ``batch_metrics`` (the loss
and the number of correct predictions of a batch); ``fit`` does the rest: single process or
DistributedDataParallel under torchrun, mixed precision on GPU, a progress bar, per-epoch
metrics and plots, atomic checkpoints and exact resumption.
"""

import argparse
import dataclasses
import json
import math
import os
import platform
import shlex
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
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from hw3core.checkpoints import METRICS_FILE, RUN_FILE, is_valid_repo_id
from hw3core.compression import COMPRESSED_FILE, COMPRESSION_FILE
from hw3core.numerics import flush_denormals
from hw3core.records import Epoch, RunRecord
from hw3core.registry import MODELS
from training import event_log, hub, plots
from training.data import DataError

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
        "per_class": dict(zip(classes, accuracy)),
        "confusion": confusion.long().tolist(),
    }


@dataclass
class TrainingConfig:
    """How ``fit`` trains a task: the flags every training script shares (``common_arguments``), typed."""

    out: Path  # the checkpoint folder
    epochs: int = 1
    batch_size: int = 32  # per process
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup: float = 0.0
    keep: str = "best"
    seed: int = 0
    resume: bool = False
    push_to_hub: str | None = None
    device: str | None = None
    workers: int = 0
    amp: bool = True
    command: str = ""  # the command line, as the record shows it
    arguments: dict = field(default_factory=dict)  # every flag of the run, as the record shows it

    @classmethod
    def from_arguments(cls, args: argparse.Namespace, command: str, arguments: dict) -> "TrainingConfig":
        names = {f.name for f in dataclasses.fields(cls)} - {"amp", "command", "arguments"}
        return cls(**{name: getattr(args, name) for name in names}, amp=not args.no_amp, command=command,
                   arguments=arguments)


def common_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of every training script. A model's own values are its recipe (hw3core.registry), set as the
    parser's defaults once the flags have said which model it is; these are the defaults of no model."""
    default = TrainingConfig(out=Path())
    parser.add_argument("--epochs", type=int, default=default.epochs)
    parser.add_argument("--batch-size", type=int, default=default.batch_size, help="per process")
    parser.add_argument("--lr", type=float, default=default.lr, help="the peak learning rate of AdamW")
    parser.add_argument("--weight-decay", type=float, default=default.weight_decay, help="AdamW's decoupled weight decay")
    parser.add_argument("--schedule", choices=["constant", "cosine"], default=default.schedule,
                        help="the learning rate after warm-up: constant, or a cosine decay to zero at the last step")
    parser.add_argument("--warmup", type=float, default=default.warmup, metavar="FRACTION",
                        help="share of all steps over which the learning rate rises linearly from zero")
    parser.add_argument("--keep", choices=["best", "last"], default=default.keep,
                        help="the weights saved: the epoch of lowest validation loss, or the last epoch")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="use only N examples (smoke runs)")
    parser.add_argument("--out", type=Path, default=None, help="the checkpoint folder (default: checkpoints/NAME)")
    parser.add_argument("--seed", type=int, default=default.seed)
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", default=None)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--workers", type=int, default=default.workers, help="data-loading processes (0: in the main one)")
    parser.add_argument("--no-amp", action="store_true", help="train in float32 on GPU too")


def parse_arguments(parser: argparse.ArgumentParser, name: Callable, argv=None) -> argparse.Namespace:
    """The flags, with the defaults of the model they pick (``name(args)``, its checkpoint name) taken
    from its recipe: the command a user is told, with no other flags, trains the model that ships."""
    picked, _ = parser.parse_known_args(argv)
    parser.set_defaults(**MODELS[name(picked)].recipe)
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = Path("checkpoints") / name(args)
    check_arguments(parser, args)
    return args


def run(parser: argparse.ArgumentParser, build_task: Callable, name: Callable, argv=None,
        data_flags: dict[str, str] | None = None) -> list[dict]:
    """Parses the flags, builds the task (a data error is a message, not a traceback) and trains.
    ``name(args)`` is the checkpoint name, the default output folder under checkpoints/.
    ``data_flags`` maps each data-path flag to what the records show instead of the path: a placeholder
    (``{"--data": "PACS_DIR"}``), or None for the file's own name (``aclImdb_v1.tar.gz``). A record
    names its data set, never a folder of the machine that trained."""
    args = parse_arguments(parser, name, argv)
    data_flags = data_flags or {}
    given = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    command = shlex.join(["python", "-m", task_module(), *without_paths(given, data_flags)])
    config = TrainingConfig.from_arguments(args, command, portable_arguments(vars(args), data_flags))
    try:
        task = build_task(args)
    except DataError as error:
        sys.exit(f"error: {error}")
    return fit(task, config)


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuses bad flags before any data is read."""
    if args.epochs < 1 or args.batch_size < 1 or args.lr <= 0 or (args.limit is not None and args.limit < 1):
        parser.error("--epochs, --batch-size, --lr and --limit must be positive")
    if args.weight_decay < 0 or not 0 <= args.warmup < 1:
        parser.error("--weight-decay must be at least 0 and --warmup a fraction in [0, 1)")
    if not 0 <= getattr(args, "dropout", 0) < 1:  # every training script has it, each with its own meaning
        parser.error("--dropout must be a rate in [0, 1)")
    if args.push_to_hub and not is_valid_repo_id(args.push_to_hub):
        parser.error(f"--push-to-hub {args.push_to_hub!r} is not a Hub repo id (expected 'owner/name')")


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str | None) -> Distributed:
    """One process, or one of several started by torchrun (which sets RANK and WORLD_SIZE)."""
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if "RANK" not in os.environ:
        return Distributed(device=torch.device("cuda" if use_cuda else "cpu"))
    local_rank = int(os.environ["LOCAL_RANK"])
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Distributed(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        device=torch.device(f"cuda:{local_rank}" if use_cuda else "cpu"),
    )


def _reduce(values: Tensor, world: Distributed) -> Tensor:
    if world.world_size > 1:
        dist.all_reduce(values)
    return values


def _loader(dataset: Dataset, task: Task, config: TrainingConfig, world: Distributed, train: bool) -> DataLoader:
    if train and task.sample_weights is not None:
        sampler = WeightedShardSampler(task.sample_weights, world.world_size, world.rank, seed=config.seed)
    elif train:
        sampler = DistributedSampler(dataset, world.world_size, world.rank, shuffle=not task.ordered, seed=config.seed)
    else:  # every example exactly once: DistributedSampler would pad the last shard with repeats
        sampler = range(world.rank, len(dataset), world.world_size)
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        collate_fn=task.collate,
        num_workers=config.workers,
        pin_memory=world.device.type == "cuda",
        persistent_workers=config.workers > 0,
    )


class WeightedShardSampler(torch.utils.data.Sampler):
    """Draws ``len(weights)`` indices with replacement, each in proportion to its weight, from a
    generator seeded by the seed and the epoch (so a resumed run draws what it would have), and gives
    this rank its share: DistributedSampler's contract, for weighted draws."""

    def __init__(self, weights: list[float], world_size: int = 1, rank: int = 0, seed: int = 0):
        self.weights = torch.as_tensor(weights, dtype=torch.double)
        self.world_size, self.rank, self.seed, self.epoch = world_size, rank, seed, 0
        self.per_rank = math.ceil(len(weights) / world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        drawn = torch.multinomial(self.weights, self.per_rank * self.world_size, replacement=True, generator=generator)
        return iter(drawn[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return self.per_rank


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
    loss_sum, correct, count, skipped = _reduce(totals, world).tolist()
    seconds = time.perf_counter() - start
    return {
        "loss": loss_sum / max(count, 1),
        "accuracy": correct / max(count, 1),
        "n": int(count),
        "skipped": int(skipped),
        "seconds": seconds,
        "examples_per_second": count / seconds,
        **(per_class_scores(_reduce(tally, world), task.classes) if task.classes else {}),
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


def hardware(device: torch.device, world_size: int = 1) -> str:
    """What a run or a measurement ran on, e.g. "x86_64 CPU, 2 threads" or "2 x NVIDIA H100"."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        threads = torch.get_num_threads()
        name = f"{platform.processor() or platform.machine()} CPU, {threads} thread{'s' if threads > 1 else ''}"
    return f"{world_size} x {name}" if world_size > 1 else name


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
        except Exception as error:  # a truncated file, or a pickle that asks for more than tensors
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
    train_loader = _loader(task.train_set, task, config, world, train=True)
    val_loader = _loader(task.val_set, task, config, world, train=False)
    probe_loader = _loader(task.train_probe, task, config, world, train=False) if task.train_probe else None
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


def data_name(path, placeholder: str | None) -> str:
    return placeholder or Path(str(path)).name


def without_paths(argv: list[str], data_flags: dict[str, str | None]) -> list[str]:
    """The command line with each data path replaced as ``data_flags`` says (``--data-dir PACS_DIR``)."""
    argv = list(argv)
    for i, token in enumerate(argv):
        flag, _, value = token.partition("=")
        if flag in data_flags and value:
            argv[i] = f"{flag}={data_name(value, data_flags[flag])}"
        elif i and argv[i - 1] in data_flags:
            argv[i] = data_name(token, data_flags[argv[i - 1]])
    return argv


def portable_arguments(arguments: dict, data_flags: dict[str, str | None]) -> dict:
    """The parsed flags as JSON, each data path replaced as ``data_flags`` says."""
    dests = {flag.lstrip("-").replace("-", "_"): placeholder for flag, placeholder in data_flags.items()}
    return {key: data_name(value, dests[key]) if key in dests and value is not None
            else str(value) if isinstance(value, Path) else value
            for key, value in arguments.items()}


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


def task_module() -> str:
    """The module that is running, as ``python -m`` names it (for the recorded command)."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return spec.name if spec else Path(sys.argv[0]).stem
