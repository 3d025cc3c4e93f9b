"""What running a student's code needs: leave the module as it was found, inputs of our own, and a tolerance
that follows from the arithmetic.

A check is called in the middle of training, so it must not move the student's model: its weights, their
gradients, its train/eval mode and the global random state are the same after as before. The inputs come from a
private generator, the gradients from ``torch.autograd.grad`` (never ``.backward()``, which would add to
``.grad``), and what the student's own forward changes anyway is put back here.
"""

import contextlib
import random
from collections.abc import Iterator

import torch
from torch import Tensor, nn

SEED = 1678  # the course's number: the same inputs on every run of the check
# Rounding of float32 sums of n products is about eps * sqrt(n) of the values' scale; orders of summation
# differ between two correct implementations (per-gate matrices against one stacked matrix, a loop against a
# fused kernel), so the bound allows that many times more. A wrong formula differs by far more (tested).
ROUNDING_FACTOR = 64


@contextlib.contextmanager
def untouched(module: nn.Module) -> Iterator[None]:
    """Runs the block and then puts back what it changed in ``module``: each submodule's train/eval mode,
    the values of parameters and buffers changed in place, each parameter's ``.grad``, and the global RNG."""
    modes = [(m, m.training) for m in module.modules()]
    tensors = list(module.state_dict(keep_vars=True).values())
    versions = [t._version for t in tensors]
    saved = {id(t): t.detach().clone() for t in tensors if t.numel() <= 1 << 20}  # large weights: by version
    grads = [(p, p.grad) for p in module.parameters()]
    python_random = random.getstate()
    devices = sorted({t.device for t in tensors if t.device.type == "cuda"}, key=str)
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            for m, training in modes:
                m.training = training
            with torch.no_grad():
                for tensor, version in zip(tensors, versions, strict=True):
                    if tensor._version != version and id(tensor) in saved:
                        tensor.copy_(saved[id(tensor)])
            for parameter, grad in grads:
                parameter.grad = grad
            random.setstate(python_random)


def generator(seed: int = SEED) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tolerance(reference: Tensor, terms: int) -> float:
    """How far two correct computations of ``reference`` may be apart: each value a sum of ``terms`` products."""
    eps = torch.finfo(reference.dtype).eps if reference.is_floating_point() else 0.0
    scale = float(reference.detach().abs().max().clamp_min(1.0)) if reference.numel() else 1.0
    return ROUNDING_FACTOR * eps * max(terms, 1) ** 0.5 * scale


def difference(yours: Tensor, ours: Tensor) -> float:
    """The largest absolute difference (inf where the shapes differ)."""
    if not isinstance(yours, Tensor) or yours.shape != ours.shape:
        return float("inf")
    return float((yours.detach().to(ours.dtype) - ours.detach()).abs().max()) if ours.numel() else 0.0


def same(yours, ours: Tensor, terms: int) -> bool:
    return difference(yours, ours) <= tolerance(ours, terms)


def dtype_of(module: nn.Module) -> torch.dtype:
    first = next((p for p in module.parameters() if p.is_floating_point()), None)
    return first.dtype if first is not None else torch.float32


def device_of(module: nn.Module) -> torch.device:
    first = next(module.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def failure(error: BaseException) -> str:
    """An exception from a student's code in one line: its type and the first line of its message."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
