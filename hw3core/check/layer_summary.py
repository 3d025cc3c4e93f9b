"""A student's module as torchsummary lists it: each layer the forward calls, its output shape for one
(1, 3, 227, 227) image and its parameters, against the assignment's table row by row."""

import difflib
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hw3core.alexnet import IMAGE_SIZE
from hw3core.check.report import RowResult
from hw3core.check.tables import TABLES, Row

# Layers without weights that a forward may call as functions (F.relu, F.max_pool2d, torch.flatten, F.dropout)
# instead of modules: torchsummary cannot see them. A pooling layer's work shows in the next layer's shape.
FUNCTIONAL = ("ReLU", "Flatten", "Dropout", "MaxPool2d", "AvgPool2d")
SHAPE_CHANGING = ("MaxPool2d", "AvgPool2d")


@dataclass
class _Seen:
    type: str
    shape: tuple[int, ...] | None  # None: the forward did not reach it
    parameters: int


def _leaves(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if not list(m.children())] or [module]


@torch.no_grad()
def summarise(module: nn.Module) -> tuple[list[_Seen], str | None]:
    """Each leaf layer in the order the forward calls it, with its output shape for one (1, 3, 227, 227)
    image and its parameters; then the leaves it never reached. Second: why the forward failed, if it did."""
    leaves = _leaves(module)
    calls: list[tuple[nn.Module, tuple]] = []
    hooks = [leaf.register_forward_hook(
        lambda m, _, out: calls.append((m, tuple(out.shape[1:]) if isinstance(out, Tensor) else None)))
        for leaf in leaves]
    training = module.training
    failure = None
    try:
        module.eval()
        first = next(module.parameters(), None)
        image = torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE, dtype=first.dtype if first is not None else torch.float32,
                            device=first.device if first is not None else "cpu")
        module(image)
    except Exception as error:  # noqa: BLE001 (a student's forward can fail any way; the report says how)
        failure = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
    finally:
        for hook in hooks:
            hook.remove()
        module.train(training)
    called = {id(m) for m, _ in calls}
    seen = [_Seen(type(m).__name__, shape, sum(p.numel() for p in m.parameters(recurse=False))) for m, shape in calls]
    seen += [_Seen(type(m).__name__, None, sum(p.numel() for p in m.parameters(recurse=False)))
             for m in leaves if id(m) not in called]
    return seen, failure


def _shape_text(shape) -> str:
    return "not reached" if shape is None else "[" + ", ".join(["-1", *map(str, shape)]) + "]"


def summary_rows(name: str, module: nn.Module) -> tuple[list[RowResult], list[str]]:
    table = TABLES[name]
    seen, failure = summarise(module)
    rows, problems = [], []
    if failure:
        problems.append(f"Forward: fails on a (1, 3, 227, 227) image with {failure}")
    shapes_off = []  # one wrong shape puts every later one off: only the first is a problem of its own
    matcher = difflib.SequenceMatcher(None, [r.type for r in table], [s.type for s in seen], autojunk=False)
    opcodes = matcher.get_opcodes()
    reached = {i: seen[j] for _, i1, i2, j1, j2 in opcodes for i, j in zip(range(i1, i2), range(j1, j2), strict=False)}

    def done_in_forward(i: int) -> bool:
        """A row with no module of its own: called as a function, if the next layer that ran has its shape."""
        if table[i].type not in SHAPE_CHANGING:
            return True
        after = min((k for k in reached if k > i), default=None)
        return after is not None and reached[after].shape == table[after].output_shape

    for _, i1, i2, j1, j2 in opcodes:
        pairs = list(zip(range(i1, i2), range(j1, j2), strict=False))  # a replaced run may be longer on one side
        for i, j in pairs:
            rows.append(_compare(table[i], seen[j], problems, shapes_off))
        for i in range(i1 + len(pairs), i2):  # in the table, not in yours
            row = table[i]
            if row.type in FUNCTIONAL and done_in_forward(i):
                rows.append(RowResult(row.name, _expected(row), "no module (fine if forward calls it as a function)",
                                      True))
                continue
            rows.append(RowResult(row.name, _expected(row), "missing", False))
            cause = (f"; without it the {'×'.join(map(str, table[i - 1].output_shape[1:]))} map after "
                     f"{table[i - 1].name} is not halved, so every later shape is off"
                     if "Pool" in row.type else "")
            problems.append(f"{row.name}: missing{cause}.")
            shapes_off.append(row.name)
        for j in range(j1 + len(pairs), j2):  # in yours, not in the table
            item = seen[j]
            after = table[i2 - 1].name if i2 else "the input"
            before_shape = table[i2 - 1].output_shape if i2 else None
            harmless = item.parameters == 0 and item.shape is not None and item.shape == before_shape
            rows.append(RowResult(f"{item.type} (yours, after {after})", "—",
                                  f"{item.type} {_shape_text(item.shape)} {item.parameters:,}", harmless))
            if not harmless:
                problems.append(f"{item.type} after {after}: a layer the table does not have.")
    return rows, problems


def _expected(row: Row) -> str:
    return f"{_shape_text(row.output_shape)} {row.parameters:,}"


def _compare(row: Row, item: _Seen, problems: list[str], shapes_off: list[str]) -> RowResult:
    ok_type = item.type == row.type
    ok = ok_type and item.shape == row.output_shape and item.parameters == row.parameters
    yours = f"{_shape_text(item.shape)} {item.parameters:,}" + ("" if ok_type else f" ({item.type})")
    if not ok_type:
        problems.append(f"{row.name}: yours is {item.type}; the table has {row.type}.")
    elif item.shape is not None and item.shape != row.output_shape:
        if not shapes_off:
            problems.append(f"{row.name}: output {_shape_text(item.shape)}; the table's is "
                            f"{_shape_text(row.output_shape)}.")
        shapes_off.append(row.name)
    elif item.parameters != row.parameters:
        problems.append(f"{row.name}: {item.parameters:,} parameters; the table has {row.parameters:,}.")
    return RowResult(row.name, _expected(row), yours, ok)
