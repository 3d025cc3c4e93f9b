"""A student's AlexNet run beside ours with the same weights: where the outputs first differ, and why.

Both run on the same seeded images in eval mode. The student's modules are hooked, and each of its weighted
layers (a Conv2d or a Linear, in the order the forward calls them) is matched to the table's weighted row of
the same rank: the first whose output differs places the mistake between it and the weighted row before. There
each mistake of the catalogue below is tried on our rows (a ReLU left out, another pooling kernel, the other
pooling, another flatten order), and the one that gives the student's output is named with its fix. Output
differences after the last row (softmax in ``forward``) and outputs that change from run to run (dropout left
on in eval mode) are named too; so are the kernel, stride and padding of every convolution and pooling module,
which shapes alone cannot tell apart (``MaxPool2d(2, 2)`` and ``(3, 2)`` both halve 55 to 27).
"""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hw3core.alexnet import IMAGE_SIZE
from hw3core.check.compare import END_MISTAKES, device_of, difference, dtype_of, failure, generator, same, untouched
from hw3core.check.report import RowResult
from hw3core.check.tables import TABLES, Row

BATCH = 2
_MATMUL = re.compile(r"\((\d+)x(\d+) and (\d+)x(\d+)\)")


@dataclass
class Variant:
    """One mistake on our rows: the row it changes, what it is, its fix, and the changed row as a function."""

    row: Row
    what: str
    fix: str
    layer: Callable[[Tensor], Tensor]


def images(dtype: torch.dtype = torch.float32, device="cpu") -> Tensor:
    return torch.randn(BATCH, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator(), dtype=dtype).to(device)


def _variants(row: Row) -> list[Variant]:
    if row.type == "ReLU":
        return [Variant(row, f"yours has no {row.name}", f"apply a ReLU at {row.name}", lambda x: x)]
    if row.type in ("MaxPool2d", "AvgPool2d"):
        other = nn.AvgPool2d if row.type == "MaxPool2d" else nn.MaxPool2d
        return [
            Variant(row, f"{row.name} pools with kernel 2 and stride 2; the table's is kernel 3, stride 2 (the "
                    "same output shape)", f"{row.type}(kernel_size=3, stride=2)", nn.MaxPool2d(2, 2)
                    if row.type == "MaxPool2d" else nn.AvgPool2d(2, 2)),
            Variant(row, f"{row.name} is {other.__name__}; the table's is {row.type}", f"use {row.type} there",
                    other(3, 2)),
        ]
    if row.type == "Flatten":
        return [Variant(row, f"{row.name} flattens the (256, 6, 6) map in another order (channels last)",
                        "torch.flatten(x, 1) on the (N, 256, 6, 6) map, as the table's Flatten does",
                        lambda x: x.permute(0, 2, 3, 1).flatten(1))]
    return []


def _run_rows(ours: nn.Sequential, x: Tensor, start: int, stop: int, replaced: dict[int, Callable] | None = None):
    """Our rows start..stop-1 (0-based) on x, with some rows replaced."""
    x = x.clone()  # our ReLUs work in place
    for index in range(start, stop):
        x = (replaced or {}).get(index, ours[index])(x)
    return x


def compare_alexnet_forward(module: nn.Module, ours: nn.Sequential, name: str) -> tuple[list[RowResult], list[str]]:
    """The rows and problems of running the student's AlexNet ``module`` beside ``ours`` (its weights)."""
    table = TABLES[name]
    weighted = [i for i, row in enumerate(table) if row.parameters]
    x = images(device=device_of(module))  # ours runs in float32, the student's model in its own dtype
    rows: list[RowResult] = []
    problems = _attributes(module, table)
    calls: list[tuple[nn.Module, Tensor]] = []
    leaves = [m for m in module.modules() if not list(m.children())]
    with untouched(module), torch.no_grad():
        module.eval()
        hooks = [leaf.register_forward_hook(lambda m, _, out: calls.append((m, out.detach().clone())
                                                                           if isinstance(out, Tensor) else None))
                 for leaf in leaves]
        try:
            yours = module(x.to(dtype_of(module)))
            first_calls = list(calls)
            again = module(x.to(dtype_of(module)))
        except Exception as error:  # noqa: BLE001 (a student's forward can fail any way; the report says how)
            rows.append(RowResult("Forward", "ours, with your weights", "fails", False))
            return rows, problems + [f"Forward: fails on ({BATCH}, 3, 227, 227) images with {failure(error)}"
                                     f"{_shape_cause(error)}"]
        finally:
            for hook in hooks:
                hook.remove()
        if not isinstance(yours, Tensor):
            rows.append(RowResult("Forward", "the logits (N, 4)", f"a {type(yours).__name__}", False))
            return rows, problems + [f"Forward: returns a {type(yours).__name__}; the table's model returns the "
                                     f"logits of {table[-1].name}, a tensor (N, {table[-1].output_shape[0]})."]
        if not same(again, yours, 1):  # still in eval mode: which layer's output changes first
            where = _first_changed(module, x.to(dtype_of(module)), weighted, table)
            rows.append(RowResult("Forward", "the same output on every run in eval mode", "changes from run to run",
                                  False))
            return rows, problems + [f"Forward: changes from run to run in eval mode: dropout stays on{where}. Fix: "
                                     "nn.Dropout modules, or F.dropout(x, p, training=self.training)."]
    ours.eval()
    with torch.no_grad():
        outputs, h = [], x
        for layer in ours:
            h = layer(h)
            outputs.append(h.clone())  # the next row's ReLU works in place
    expected = outputs[-1]
    student_weighted = [out for m, out in (c for c in first_calls if c) if isinstance(m, (nn.Conv2d, nn.Linear))]
    terms = [table[i].parameters // max(table[i].output_shape[0], 1) for i in weighted]  # fan-in (+1)

    differs = next((rank for rank, index in enumerate(weighted) if rank < len(student_weighted)
                    and not same(student_weighted[rank], outputs[index], terms[rank])), None)
    if differs is None and same(yours, expected, max(terms)):
        rows.append(RowResult("Forward", "ours, with your weights", f"the same on {BATCH} images, layer by layer",
                              True))
        return rows, problems
    gap = difference(yours, expected)
    rows.append(RowResult("Forward", "ours, with your weights", f"differs by up to {gap:.3g}", False))
    if differs is not None:  # a mistake between this weighted layer and the one before
        rank, index = differs, weighted[differs]
        before = weighted[rank - 1] if rank else -1
        start = outputs[before] if rank else x
        between = f"between {table[before].name} and {table[index].name}" if rank else f"at {table[index].name}"
        variants = [v for i in range(before + 1, index) for v in _variants(table[i])]
        for variant in variants:
            guess = _run_rows(ours, start, before + 1, index + 1, {table.index(variant.row): variant.layer})
            if same(student_weighted[rank], guess, terms[rank]):
                return rows, problems + [f"Forward: differs from ours {between}: {variant.what}. Fix: {variant.fix}."]
        tried = [v.what.split(";")[0] for v in variants]
        return rows, problems + [f"Forward: differs from ours {between} (by up to "
                                 f"{difference(student_weighted[rank], outputs[index]):.3g} at {table[index].name})"
                                 + (f"; none of the mistakes tried there gives your output ({'; '.join(tried)})"
                                    if tried else "") + "."]
    for what, changed in END_MISTAKES.items():
        if same(yours, changed(expected), max(terms)):
            return rows, problems + [f"Forward: ends in {what}, after {table[-1].name}: CrossEntropyLoss reads logits "
                                     f"(it applies its own log-softmax), so training on these outputs is wrong. Fix: "
                                     f"return the logits of {table[-1].name}."]
    return rows, problems + [f"Forward: every layer's output is ours, but what forward returns differs by up to "
                             f"{gap:.3g}: something after {table[-1].name} changes it."]


def _first_changed(module: nn.Module, x: Tensor, weighted: list[int], table: tuple[Row, ...]) -> str:
    """Where outputs first change between two runs: the dropout before that weighted layer."""
    runs = []
    for _ in range(2):
        seen: list[Tensor] = []
        hooks = [m.register_forward_hook(lambda m, _, out: seen.append(out.detach().clone()))
                 for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        try:
            module(x)
        finally:
            for hook in hooks:
                hook.remove()
        runs.append(seen)
    for rank, (first, second) in enumerate(zip(*runs, strict=False)):
        if rank < len(weighted) and not torch.equal(first, second):
            index = weighted[rank]
            dropout = next((table[i].name for i in range(index - 1, -1, -1) if table[i].type == "Dropout"), None)
            return f" ({dropout}, before {table[index].name})" if dropout else f" (before {table[index].name})"
    return ""


def _attributes(module: nn.Module, table: tuple[Row, ...]) -> list[str]:
    """The kernel, stride and padding of each convolution and pooling module against its row (matched by order
    among rows of its kind): what shapes cannot tell."""
    problems = []
    for kinds, types in (((nn.Conv2d,), ("Conv2d",)), ((nn.MaxPool2d, nn.AvgPool2d), ("MaxPool2d", "AvgPool2d"))):
        found = [m for m in module.modules() if isinstance(m, kinds)]
        wanted = [row for row in table if row.type in types]
        if len(found) != len(wanted):
            continue
        for layer, row in zip(found, wanted, strict=True):
            settings = {"kernel": _pair(layer.kernel_size), "stride": _pair(layer.stride),
                        "padding": _pair(layer.padding)}
            table_settings = {"kernel": row.kernel, "stride": row.stride, "padding": row.padding}
            off = [f"{what} {settings[what]}; the table's is {value}" for what, value in table_settings.items()
                   if value is not None and settings[what] != value]
            if off:
                problems.append(f"{row.name}: {', '.join(off)}.")
    return problems


def _pair(value) -> int | str:
    if isinstance(value, int):
        return value
    return value[0] if len(set(value)) == 1 else "×".join(map(str, value))


def _shape_cause(error: BaseException) -> str:
    """The likely cause of a shape error, from the sizes in its message."""
    found = _MATMUL.search(str(error))
    if not found:
        return "."
    flattened, expected = int(found[2]), int(found[3])
    if expected == 256 * 6 * 6 and flattened % 256 == 0 and math.isqrt(flattened // 256) ** 2 == flattened // 256:
        side = math.isqrt(flattened // 256)
        cause = ("smaller: a padding left out, or a stride or pooling too many" if side < 6 else
                 "larger: a pooling layer (or a stride) left out")
        return (f". The flattened map has {flattened:,} = 256 × {side} × {side} values, where the table's 6×6 map has "
                f"9,216: the map is {cause}.")
    return f". Linear-16 reads {expected:,} values and your flattened map has {flattened:,}: a flatten of the wrong size."
