"""A pruned fully connected layer served as it is stored: only its kept weights, in CSR.

Deep Compression keeps 5% of AlexNet's two large Linear layers; their dense float32 weights are 151 MB
and 67 MB, and at batch size 1 a dense product reads every byte of them. A CSR product reads the kept
weights and their column indices only (``python -m training.benchmark --only served`` compares the two).
"""

import warnings

import torch
from torch import nn

# int32 column indices: half the memory of int64, and as fast or faster in MKL's sparse products here.
INDEX_DTYPE = torch.int32


def csr_from_positions(shape: tuple[int, int], positions: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """The (out, in) CSR matrix holding ``values`` at the flat, increasing row-major ``positions``:
    the order a compressed file stores them in, so no sort is needed."""
    rows, columns = shape
    counts = torch.bincount(positions // columns, minlength=rows)
    crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)]).to(INDEX_DTYPE)
    with warnings.catch_warnings():  # "CSR support is in beta": the operations used here are checked by the tests
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, (positions % columns).to(INDEX_DTYPE), values.float(), shape,
                                       check_invariants=True)


class SparseLinear(nn.Linear):
    """``nn.Linear`` whose weight is a CSR tensor. A subclass, so every view that reads a model's layers
    (``isinstance(layer, nn.Linear)``, ``in_features``, the parameter count) sees the layer it replaces:
    ``weight.numel()`` of a sparse tensor is that of its dense shape. Built for inference: its weight
    takes no gradient, but the gradient reaches its input (Grad-CAM)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        nn.Module.__init__(self)  # not nn.Linear's: it would allocate and initialise a dense weight
        self.out_features, self.in_features = weight.shape
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, in) -> (N, out)
        if self.bias is None:
            return torch.sparse.mm(self.weight, x.t()).t()
        return torch.addmm(self.bias[:, None], self.weight, x.t()).t()  # (out, N), transposed back
