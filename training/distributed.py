"""Where training runs: one process, or one of several under torchrun, each reading its own share of the data.

``setup_distributed`` says which process this is and on which device; ``loader`` gives it its shard (training
examples shuffled, or drawn by weight with ``WeightedShardSampler``; validation examples each exactly once);
``hardware`` names what it ran on, for the records and the benchmarks.
"""

import math
import os
import platform
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler


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


def reduce(values: Tensor, world: Distributed) -> Tensor:
    """Summed over the ranks, in place."""
    if world.world_size > 1:
        dist.all_reduce(values)
    return values


def loader(dataset: Dataset, task, config, world: Distributed, train: bool) -> DataLoader:
    """This rank's batches of ``dataset``, as ``task`` (a training.loop.Task) and ``config`` say."""
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


def hardware(device: torch.device, world_size: int = 1) -> str:
    """What a run or a measurement ran on, e.g. "x86_64 CPU, 2 threads" or "2 x NVIDIA H100"."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        threads = torch.get_num_threads()
        name = f"{platform.processor() or platform.machine()} CPU, {threads} thread{'s' if threads > 1 else ''}"
    return f"{world_size} x {name}" if world_size > 1 else name
