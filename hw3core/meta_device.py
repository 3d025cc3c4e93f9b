"""Building a model on the meta device: its layers and shapes, without memory and without drawing initial weights.

A model about to be given stored weights (a served checkpoint), or built for its shapes alone (the check), has
nothing to initialise. On the meta device torch's random initialisers run Python decompositions whose first call
imports torch._dynamo, and Triton and SymPy with it: 149 MB resident on CPU, in a server that never compiles.
"""

import contextlib
from collections.abc import Iterator

import torch
from torch.overrides import TorchFunctionMode


def _fills_in_place(func) -> bool:
    """A torch.nn.init initialiser (``kaiming_normal_``, ``zeros_``, ...) or a tensor's random fill. The
    initialisers are caught whole: inside one, this mode is off, so its own fill would not be seen."""
    name = getattr(func, "__name__", "")
    in_init = getattr(func, "__module__", None) == "torch.nn.init" and name.endswith("_")
    return in_init or func in (torch.Tensor.uniform_, torch.Tensor.normal_, torch.Tensor.random_)


class _SkipInitialisation(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        if _fills_in_place(func):
            tensor = args[0] if args else kwargs["tensor"]  # the initialisers pass it by keyword
            if tensor.is_meta:
                return tensor
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def on_meta_device() -> Iterator[None]:
    """Modules built inside get meta tensors, which initialisation leaves as they are. In this thread only:
    torch's function modes, ``torch.device`` among them, are per thread."""
    with torch.device("meta"), _SkipInitialisation():
        yield
