"""A compressed checkpoint as it is served: the pruned Linear layers stay sparse, never decoded dense.

The model is built on the meta device (no weight allocated or drawn only to be overwritten);
each pruned ``nn.Linear`` is replaced by a ``SparseLinear`` built straight from the file's positions and
codebook; every other weight (the convolutions, the small last layer, the biases) is decoded dense,
the form its products run fastest in. The answers are the dense decode's, to float rounding.
"""

import math

from torch import nn

from hw3core.compression import CompressedTensors
from hw3core.meta_device import on_meta_device
from hw3core.sparse_linear import SparseLinear, csr_from_positions

# A pruned Linear layer keeping at most this share of its weights is served sparse. The shipped AlexNets'
# two large layers keep 5%, where CSR is several times faster than dense at batch 1 and faster at batch 32
# (training.benchmark); near half kept, a dense product reads no more and runs at BLAS speed.
SPARSE_UP_TO = 0.25


def is_served_sparse(entry: dict) -> bool:
    """Whether a compressed weight (its layout entry) is served sparse, when it is a Linear layer's."""
    return entry["positions"] != "dense" and entry["kept"] <= SPARSE_UP_TO * math.prod(entry["shape"])


def build_served(cls: type[nn.Module], config: dict, file: CompressedTensors) -> nn.Module:
    """``cls(**config)`` holding the weights of ``file``, in eval mode. Its layer and parameter names are
    the dense model's and every one must be in the file with its shape (a file of another variant is refused)."""
    with on_meta_device():
        model = cls(**config)
    state = dict(file.plain)
    sparse = set()
    for name, layer in list(model.named_modules()):
        weight = f"{name}.weight"
        if isinstance(layer, nn.Linear) and weight in file.layout and is_served_sparse(file.layout[weight]):
            if file.layout[weight]["shape"] != [layer.out_features, layer.in_features]:
                raise ValueError(f"{weight} is {file.layout[weight]['shape']} in the file, "
                                 f"[{layer.out_features}, {layer.in_features}] in {cls.__name__}")
            csr = csr_from_positions((layer.out_features, layer.in_features), *file.kept(weight))
            bias = state.pop(f"{name}.bias", None) if layer.bias is not None else None
            model.set_submodule(name, SparseLinear(csr, bias))
            sparse |= {weight, f"{name}.bias"} if layer.bias is not None else {weight}
    state.update({name: file.dense(name) for name in file.layout if name not in sparse})
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if set(missing) != sparse or unexpected:
        raise ValueError(f"the file does not fit {cls.__name__}: missing {sorted(set(missing) - sparse)}, "
                       f"unexpected {sorted(unexpected)}")
    return model.eval()
