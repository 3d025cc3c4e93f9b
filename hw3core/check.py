"""Check your model: a student's AlexNet, sentiment classifier or writer against the assignment's tables.

    python -m hw3core.check best_model.pt [--model auto|AlexNet|...] [--json]

In a notebook: ``from hw3core import check_model; check_model(model, "AlexNet")`` prints the report.

Given a state dict (or a file holding one, or an ``nn.Module``) and optionally the class it should be,
the check names the assignment's class it is, compares it row by row with that class's table
(``hw3core.tables``), and names each problem by its row with its likely cause. An ``nn.Module`` is
also run on one (1, 3, 227, 227) image, and each layer's type, output shape and parameter count are
compared, as torchsummary lists them. Where the weights fit one of this project's classes exactly,
they are loaded into it (``Checked.model``), so the app can run them beside ours; a layout that
cannot be mapped without guessing is checked for shapes only, and the report says why.
"""

import argparse
import difflib
import json
import math
import sys
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from hw3core.alexnet import IMAGE_SIZE, AlexNet, AlexNetAvgPooling, AlexNetLargeKernel
from hw3core.student import (
    SAVE_WITH_VOCABULARY,
    Layer,
    StudentFileError,
    StudentWeights,
    layers,
    parameter_count,
    read_weights,
)
from hw3core.student_cells import ASSIGNMENT_SIZES, CellLayout, read_cell
from hw3core.student_text import StarterSentiment
from hw3core.tables import CELL_PARAMETERS, CELL_SIZES, PACS_CATEGORIES, TABLES, TOTALS, Row, weighted_rows
from hw3core.text_models import ShakespeareWriter

ALEXNETS = {"AlexNet": AlexNet, "AlexNetLargeKernel": AlexNetLargeKernel, "AlexNetAvgPooling": AlexNetAvgPooling}
TEXT_MODELS = ("SentimentClassification", "SentenceGeneration")
MODELS = (*ALEXNETS, *TEXT_MODELS)
CHOICES = ("auto", *MODELS)
CELL_KEYS = {"GRUCell": "gru", "LSTMCell": "lstm"}
# What a text model's last layer is usually called: classifier (the starter's), fc, decoder...
CLASSIFIER_NAMES = ("classif", "fc", "decoder", "head", "output", "linear")
# Layers without weights that a forward may call as functions (F.relu, F.max_pool2d, torch.flatten, F.dropout)
# instead of modules: torchsummary cannot see them. A pooling layer's work shows in the next layer's shape.
# A hidden size no one hard-codes: the student's cell class is built with it to see whether it is used.
PROBE_HIDDEN_SIZE = 37
FUNCTIONAL = ("ReLU", "Flatten", "Dropout", "MaxPool2d", "AvgPool2d")
SHAPE_CHANGING = ("MaxPool2d", "AvgPool2d")


@dataclass
class RowResult:
    row: str
    expected: str
    yours: str
    ok: bool


@dataclass
class Report:
    model: str | None
    cell: str | None
    rows: list[RowResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def ok(self) -> bool:
        return self.model is not None and not self.problems

    def as_json(self) -> dict:
        return {"model": self.model, "cell": self.cell, "ok": self.ok,
                "rows": [vars(row) for row in self.rows], "problems": list(self.problems), "notes": list(self.notes)}

    def text(self) -> str:
        """torchsummary's format: one line per row, a ✔ or ✘ each, problems first."""
        title = self.model or "not one of the assignment's models"
        verdict = "✔ matches the assignment" if self.ok else f"✘ {len(self.problems)} problem(s)"
        lines = [f"Your model: {title}" + (f" ({self.cell})" if self.cell else "")
                 + (f" [{self.source}]" if self.source else "") + f": {verdict}"]
        lines += [f"  ✘ {problem}" for problem in self.problems]
        lines += [f"  · {note}" for note in self.notes]
        if self.rows:
            names = max(22, *(len(row.row) + 2 for row in self.rows))
            width = max(len(row.expected) for row in self.rows) + 2
            rule = 4 + names + 2 * width
            lines += ["=" * rule, f"   {'Layer (type)':<{names}}{'Expected':<{width}}{'Yours':<{width}}", "-" * rule]
            lines += [f"{'✔' if row.ok else '✘'}  {row.row:<{names}}{row.expected:<{width}}{row.yours}"
                      for row in self.rows]
            lines.append("=" * rule)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:  # a notebook shows the printed report; this is the line after it
        return f"<Report {self.model}: {'ok' if self.ok else f'{len(self.problems)} problem(s)'}>"


@dataclass
class Checked:
    """The report, and the student's weights in our class where they fit it exactly (else None)."""

    report: Report
    model: nn.Module | None = None
    why_not_run: str | None = None


def check(source, model: str = "auto") -> Checked:
    """Checks a file path, a checkpoint folder, a state dict or an nn.Module; ``model`` is one of CHOICES.
    Raises StudentFileError (its message says why) for what cannot be read as weights at all."""
    if model not in CHOICES:
        raise ValueError(f"model must be one of {', '.join(CHOICES)}, not {model!r}")
    weights = read_weights(source)
    found = layers(weights.state)
    if not found:
        raise StudentFileError("The state dict has no floating-point weights.")
    text_like = any("embed" in layer.prefix.lower() for layer in found) or model in TEXT_MODELS
    if model in ALEXNETS or (model == "auto" and any(layer.weight.ndim == 4 for layer in found) and not text_like):
        return _check_alexnet(weights, found, model)
    if text_like or model in TEXT_MODELS:
        return _check_text(weights, found, model)
    report = Report(None, None, source=weights.source, problems=[(
        "Not one of the assignment's models: it has no convolutions (an AlexNet) and no embedding (a text model). "
        "Pick the class it should be to compare it row by row.")])
    return Checked(report, why_not_run="it is not one of the assignment's models")


def check_model(source, model: str = "auto") -> Report:
    """Prints the report (see ``check``) and returns it."""
    report = check(source, model).report
    print(report.text())
    return report


# ----- AlexNets -----


def _meta(name: str) -> nn.Module:
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        return ALEXNETS[name]()


def _check_alexnet(weights: StudentWeights, found: list[Layer], model: str) -> Checked:
    candidates = list(ALEXNETS) if model == "auto" else [model]
    best = None
    for name in candidates:  # the table that fits best; on a tie, the first (AlexNet before AlexNetAvgPooling)
        attempt = _alexnet_report(name, weights, found)
        score = sum(row.ok for row in attempt.rows) - len(attempt.problems)
        if best is None or score > best[0]:
            best = (score, name, attempt)
    _, name, report = best
    pools_seen = weights.module is not None and any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))
                                                    for m in weights.module.modules())
    if model == "auto" and name == "AlexNet" and not pools_seen:
        what = "a state dict" if weights.module is None else "a model that pools in its forward (no pooling modules)"
        report.notes.append(f"AlexNet and AlexNetAvgPooling have the same weights, so {what} cannot tell them "
                            "apart: taken as AlexNet. If yours averages, pick AlexNetAvgPooling.")
    if not report.ok:
        return Checked(report, why_not_run="it does not match the table")
    ours = _meta(name)
    mapped = {}
    for (key, _), layer in zip(ours.named_parameters(), _parameters_in_order(found), strict=True):
        mapped[key] = layer.to(torch.float32, copy=True).contiguous()
    ours.load_state_dict(mapped, assign=True, strict=True)  # takes the student's tensors as our parameters
    return Checked(report, ours.eval())


def _parameters_in_order(found: list[Layer]) -> list[Tensor]:
    """The convolutions, then the linears, each in the file's order (safetensors sorts its names, and
    'classifier.1' sorts before 'features.0'), as _weight_rows pairs them with the table."""
    ordered = [layer for layer in found if layer.weight.ndim == 4] + [layer for layer in found if layer.weight.ndim == 2]
    return [tensor for layer in ordered for tensor in (layer.weight, layer.bias) if tensor is not None]


def _alexnet_report(name: str, weights: StudentWeights, found: list[Layer]) -> Report:
    report = Report(name, None, source=weights.source)
    weight_rows, weight_problems = _weight_rows(name, found)
    if weights.module is not None:
        report.rows, summary_problems = _summary_rows(name, weights.module)
        # the weight comparison names causes the summary cannot (kernel sizes, biases): one problem per row
        report.problems = _merge_by_row(summary_problems, weight_problems)
    else:
        report.rows, report.problems = weight_rows, weight_problems
    total = parameter_count(weights.state)
    report.rows.append(RowResult("Total", f"{TOTALS[name]:,} parameters", f"{total:,} parameters", total == TOTALS[name]))
    if total != TOTALS[name] and not report.problems:
        report.problems.append(f"Total: {total:,} parameters; the table's total is {TOTALS[name]:,}.")
    return report


def _merge_by_row(problems: list[str], weight_problems: list[str]) -> list[str]:
    """One problem per row: the weight comparison's (it names the cause) where both have one."""
    by_row = {p.split(":")[0]: p for p in weight_problems}
    merged, used = [], set()
    for problem in problems:
        row = problem.split(":")[0]
        if row in by_row and row not in used:
            merged.append(by_row[row])
            used.add(row)
        elif row not in by_row:
            merged.append(problem)
    merged += [p for row, p in by_row.items() if row not in used]
    return list(dict.fromkeys(merged))


def _shape(layer: Layer) -> str:
    """'96×3×11×11 + 96 = 34,944': the weight's shape, the bias's, the parameters."""
    weight = "×".join(map(str, layer.weight.shape))
    bias = f" + {'×'.join(map(str, layer.bias.shape))}" if layer.bias is not None else " (no bias)"
    return f"{weight}{bias} = {layer.parameters:,}"


def _weight_rows(name: str, found: list[Layer]) -> tuple[list[RowResult], list[str]]:
    """The table's weighted rows against the state dict's layers, convolutions and linears each in order."""
    table = weighted_rows(name)
    expected = layers(_meta(name).state_dict())
    rows, problems = [], []
    for kind, ndim in (("Conv2d", 4), ("Linear", 2)):
        pairs_table = [(row, exp) for row, exp in zip(table, expected, strict=True) if row.type == kind]
        yours = [layer for layer in found if layer.weight.ndim == ndim]
        for index, (row, exp) in enumerate(pairs_table):
            if index >= len(yours):
                rows.append(RowResult(row.name, _shape(exp), "missing", False))
                problems.append(f"{row.name}: missing; the table has {sum(r.type == kind for r in table)} {kind} "
                                f"layers, yours {len(yours)}.")
                continue
            layer = yours[index]
            ok = _same(layer, exp)
            rows.append(RowResult(row.name, _shape(exp), _shape(layer), ok))
            if not ok:
                problems.append(_cause(name, row, layer, exp, last=index == len(pairs_table) - 1))
        for layer in yours[len(pairs_table):]:
            rows.append(RowResult(f"{kind} (extra)", "—", f"{layer.prefix}: {_shape(layer)}", False))
            problems.append(f"{layer.prefix}: a {kind} layer more than the table's {len(pairs_table)}.")
    for layer in found:
        if layer.weight.ndim not in (2, 4):
            rows.append(RowResult(f"{layer.prefix} (extra)", "—", _shape(layer), False))
            problems.append(f"{layer.prefix}: weights of shape {list(layer.weight.shape)} that no row of the table "
                            "has (a BatchNorm layer?).")
    return rows, problems


def _same(layer: Layer, expected: Layer) -> bool:
    return (layer.weight.shape == expected.weight.shape and layer.bias is not None
            and layer.bias.shape == expected.bias.shape)


def _cause(name: str, row: Row, layer: Layer, expected: Layer, last: bool) -> str:
    """The row's problem in words, with what likely caused it."""
    parts = []
    if row.type == "Conv2d":
        out, inp, kh, kw = layer.weight.shape
        e_out, e_in, e_k, _ = expected.weight.shape
        if (kh, kw) != (e_k, e_k):
            setting = ", ".join(f"{what} {value}" for what, value in (("padding", row.padding), ("stride", row.stride))
                                if value and value != (0 if what == "padding" else 1))
            parts.append(f"a {kh}×{kw} kernel; the table's is {e_k}×{e_k}" + (f" ({setting})" if setting else ""))
        if out != e_out:
            parts.append(f"{out} output channels; the table has {e_out}")
        if inp != e_in:
            before = "an RGB image's 3" if e_in == 3 else f"the {e_in} channels of the layer before"
            parts.append(f"{inp} input channels; the table's input is {before}")
    else:
        out, inp = layer.weight.shape
        e_out, e_in = expected.weight.shape
        if last and out == PACS_CATEGORIES and e_out == 4:
            parts.append(f"{inp:,} → {out}; the table has 4 outputs, one per domain "
                         f"({PACS_CATEGORIES} is the number of PACS categories)")
        elif (out, inp) != (e_out, e_in):
            parts.append(f"{inp:,} → {out:,}; the table has {e_in:,} → {e_out:,}")
        if inp != e_in and e_in == 256 * 6 * 6 and inp % 256 == 0 and math.isqrt(inp // 256) ** 2 == inp // 256:
            side = math.isqrt(inp // 256)
            parts.append(f"{inp:,} = 256 × {side} × {side}: the last feature map is {side}×{side}, the table's 6×6"
                         + (", as if a pooling layer (or a stride) were missing" if side > 6 else ""))
    if layer.bias is None:
        parts.append(f"no bias; the table's {row.parameters:,} parameters include {e_out:,} biases "
                     f"(nn.{row.type}'s default, bias=True)")
    elif layer.bias.shape != expected.bias.shape and layer.weight.shape == expected.weight.shape:
        parts.append(f"a bias of {layer.bias.numel()}; the table's has {expected.bias.numel()}")
    return f"{row.name}: " + "; ".join(parts or [f"weights {list(layer.weight.shape)}"]) + "."


# ----- a module, as torchsummary lists it -----


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


def _summary_rows(name: str, module: nn.Module) -> tuple[list[RowResult], list[str]]:
    table = TABLES[name]
    seen, failure = summarise(module)
    rows, problems = [], []
    if failure:
        problems.append(f"Forward: fails on a (1, 3, 227, 227) image with {failure}")
    shapes_off = []  # one wrong shape puts every later one off: only the first is a problem of its own
    matcher = difflib.SequenceMatcher(None, [r.type for r in table], [s.type for s in seen], autojunk=False)
    opcodes = matcher.get_opcodes()
    reached = {i: seen[j] for _, i1, i2, j1, j2 in opcodes for i, j in zip(range(i1, i2), range(j1, j2))}

    def done_in_forward(i: int) -> bool:
        """A row with no module of its own: called as a function, if the next layer that ran has its shape."""
        if table[i].type not in SHAPE_CHANGING:
            return True
        after = min((k for k in reached if k > i), default=None)
        return after is not None and reached[after].shape == table[after].output_shape

    for op, i1, i2, j1, j2 in opcodes:
        pairs = list(zip(range(i1, i2), range(j1, j2)))
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


# ----- text models -----


def _check_text(weights: StudentWeights, found: list[Layer], model: str) -> Checked:
    state, vocabulary = weights.state, weights.vocabulary
    embedding = next((layer for layer in found if "embed" in layer.prefix.lower() and layer.weight.ndim == 2), found[0])
    # The classifier by its name where it has a usual one (safetensors sorts 'classifier' first), else the last layer.
    classifier = next((layer for layer in found if layer is not embedding and layer.weight.ndim == 2
                       and any(word in layer.prefix.lower() for word in CLASSIFIER_NAMES)), found[-1])
    if embedding is classifier or embedding.weight.ndim != 2 or classifier.weight.ndim != 2:
        report = Report(None, None, source=weights.source, problems=[
            "Not a text model of the assignment: it needs an embedding, a cell and a classifier (nn.Linear)."])
        return Checked(report, why_not_run="it is not a text model of the assignment")
    V, E = embedding.weight.shape
    C, H_in = classifier.weight.shape
    name = model if model in TEXT_MODELS else ("SentimentClassification" if C == 2 else "SentenceGeneration")
    cell_prefix = _common_prefix([k for k in state if k not in embedding.keys + classifier.keys])
    cell_tensors = {k[len(cell_prefix):].lstrip("."): t for k, t in state.items()
                    if k not in embedding.keys + classifier.keys and t.is_floating_point()}
    layout = read_cell(cell_tensors, E) if cell_tensors else CellLayout(None, None, E, False, None, "no cell",
                                                                           "the file has no cell weights")
    report = Report(name, layout.cell, source=weights.source)
    rows, problems = report.rows, report.problems
    # Embedding
    if vocabulary is not None:
        ok = len(vocabulary) == V
        rows.append(RowResult("Embedding", f"{len(vocabulary):,} × {E} (one row per token)", f"{V:,} × {E}", ok))
        if not ok:
            problems.append(f"Embedding: {V:,} rows; the file's vocabulary has {len(vocabulary):,} tokens.")
    else:
        rows.append(RowResult("Embedding", f"vocabulary × {E}", f"{V:,} × {E}", True))
    # Cell
    cell_title = layout.cell or "cell"
    gates = {"GRUCell": 3, "LSTMCell": 4}.get(layout.cell)
    if layout.stacked is not None:
        expected = f"{gates} gates over [h, x], {layout.hidden_size} × ({layout.hidden_size} + {E})"
        rows.append(RowResult(cell_title, expected, layout.described, True))
    else:
        rows.append(RowResult(cell_title, "GRU (3 gates) or LSTM (4 gates) over [h, x]", layout.described, False))
        problems.append(f"{cell_title}: not converted ({layout.why}); checked for shapes only, and not run.")
    at = layout.parameters_at(*ASSIGNMENT_SIZES, bias=True)
    if layout.cell:
        assignment = f"{layout.cell}(128, 100, bias=True)"
        expected_count = CELL_PARAMETERS[layout.cell]
        if weights.module is not None:
            at = _module_cell_count(weights.module, layout) or at
            built = _hidden_size_when_built(weights.module, E)
            if built is not None and built != PROBE_HIDDEN_SIZE:
                rows.append(RowResult(f"{layout.cell}({E}, hidden_size={PROBE_HIDDEN_SIZE})", f"hidden size {PROBE_HIDDEN_SIZE}",
                                      f"hidden size {built}", False))
                problems.append(f"{layout.cell}({E}, hidden_size={PROBE_HIDDEN_SIZE}): its weights are {built} wide, not "
                                f"{PROBE_HIDDEN_SIZE}: the hidden size is hard-coded instead of read from the "
                                f"hidden_size argument.")
        rows.append(RowResult(assignment, f"{expected_count:,} parameters", f"{at:,} parameters", at == expected_count))
        if at != expected_count:
            missing_biases = expected_count - at == gates * CELL_SIZES["hidden_size"]
            cause = "no biases: the class leaves them out even with bias=True" if missing_biases else \
                "a different number of weights per gate"
            problems.append(f"{assignment}: count_parameters gives {at:,}; the assignment's is {expected_count:,} "
                            f"({cause}).")
    # Classifier
    H = layout.hidden_size
    outputs = 2 if name == "SentimentClassification" else V
    expected_cls = f"{H if H else 'hidden'} → {outputs:,}" + (" (negative, positive)" if outputs == 2 else
                                                              " (one score per character)")
    ok = (H is None or H_in == H) and C == outputs and classifier.bias is not None
    rows.append(RowResult("Linear (classifier)", expected_cls, f"{H_in} → {C:,}" +
                          ("" if classifier.bias is not None else ", no bias"), ok))
    if not ok:
        if C != outputs:
            other = "SentenceGeneration" if C == V else ("SentimentClassification" if C == 2 else None)
            problems.append(f"Linear (classifier): {C:,} outputs; {name}'s has {outputs:,}"
                            + (f" (it looks like a {other})" if other and other != name else "") + ".")
        if H is not None and H_in != H:
            problems.append(f"Linear (classifier): reads {H_in} features; the cell's state has {H} (a cell whose "
                            f"hidden size is hard-coded, not read from its hidden_size argument, does this).")
        if classifier.bias is None:
            problems.append("Linear (classifier): no bias (nn.Linear's default is bias=True).")
    if layout.stacked is not None:
        ours_total = V * E + sum(t.numel() for t in layout.stacked.values()) + classifier.parameters
        total = parameter_count(state)
        rows.append(RowResult("Total", f"{ours_total:,} parameters", f"{total:,} parameters", total == ours_total))
        if total != ours_total:
            problems.append(f"Total: {total:,} parameters; an embedding, {layout.cell} and classifier of these sizes "
                            f"have {ours_total:,}.")
    if weights.module is not None:
        step = _step_state(weights.module, layout, E)
        if step is not None:
            rows.append(RowResult("State a step returns", step[0], step[1], step[2]))
            if not step[2]:
                problems.append(f"State a step returns: {step[1]}; the assignment's {layout.cell} returns {step[0]}.")
    if problems:
        return Checked(report, why_not_run=layout.why or "it does not match the assignment")
    if vocabulary is None:
        why = f"the file has no vocabulary; save one with it: {SAVE_WITH_VOCABULARY}"
        report.notes.append(f"Checked, but not run: {why}.")
        return Checked(report, why_not_run=why)
    try:
        ours = _ours_text(name, layout, embedding, classifier, vocabulary)
    except ValueError as error:
        report.notes.append(f"Checked, but not run: {error}.")
        return Checked(report, why_not_run=str(error))
    return Checked(report, ours)


def _common_prefix(keys: list[str]) -> str:
    if not keys:
        return ""
    parts = [key.split(".") for key in keys]
    common = []
    for pieces in zip(*parts):
        if len(set(pieces)) != 1:
            break
        common.append(pieces[0])
    common = common[: min(len(p) for p in parts) - 1]  # never the leaf name itself
    return ".".join(common)


def _module_cell_count(module: nn.Module, layout: CellLayout) -> int | None:
    """count_parameters at the assignment's sizes, from the student's own cell class where it builds."""
    cell = _student_cell(module)
    if cell is None:
        return None
    try:
        fresh = type(cell)(CELL_SIZES["input_size"], CELL_SIZES["hidden_size"], CELL_SIZES["bias"])
    except Exception:  # noqa: BLE001 (a student's cell, a signature of its own: the layout's count stands)
        return None
    return sum(p.numel() for p in fresh.parameters() if p.requires_grad)


def _hidden_size_when_built(module: nn.Module, input_size: int) -> int | None:
    """The hidden size of the student's cell class built with hidden_size=PROBE_HIDDEN_SIZE (None where it
    does not build or its layout cannot be read): another number means the class ignores its argument."""
    cell = _student_cell(module)
    if cell is None:
        return None
    try:
        fresh = type(cell)(input_size, PROBE_HIDDEN_SIZE, True)
    except Exception:  # noqa: BLE001 (a student's cell, a signature of its own: nothing to say)
        return None
    return read_cell(dict(fresh.state_dict()), input_size).hidden_size


def _student_cell(module: nn.Module) -> nn.Module | None:
    embedding = next((m for m in module.modules() if isinstance(m, nn.Embedding)), None)
    return next((m for m in module.children() if m is not embedding and not isinstance(m, (nn.Linear, nn.Dropout))
                 and any(True for _ in m.parameters())), None)


@torch.no_grad()
def _step_state(module: nn.Module, layout: CellLayout, input_size: int) -> tuple[str, str, bool] | None:
    cell = _student_cell(module)
    if cell is None or layout.hidden_size is None or layout.cell is None:
        return None
    H = layout.hidden_size
    expected = f"h ({2}, {H})" if layout.cell == "GRUCell" else f"(h, c), each (2, {H})"
    try:
        state = cell(torch.zeros(2, input_size), None)
    except Exception as error:  # noqa: BLE001 (a student's step can fail any way; the row says so)
        return expected, f"a step fails: {type(error).__name__}", False
    if isinstance(state, Tensor):
        return expected, f"h {tuple(state.shape)}", layout.cell == "GRUCell" and tuple(state.shape) == (2, H)
    if isinstance(state, tuple) and all(isinstance(s, Tensor) for s in state):
        shapes = ", ".join(str(tuple(s.shape)) for s in state)
        ok = layout.cell == "LSTMCell" and len(state) == 2 and all(tuple(s.shape) == (2, H) for s in state)
        return expected, f"a tuple of {len(state)}: {shapes}", ok
    return expected, f"a {type(state).__name__}", False


def _ours_text(name: str, layout: CellLayout, embedding: Layer, classifier: Layer, vocabulary: list[str]) -> nn.Module:
    E = embedding.weight.shape[1]
    state = {"embedding.weight": embedding.weight,
             **{f"rnn.{key}": tensor for key, tensor in layout.stacked.items()},
             "classifier.weight": classifier.weight, "classifier.bias": classifier.bias}
    state = {key: tensor.to(torch.float32) for key, tensor in state.items()}
    cell = CELL_KEYS[layout.cell]
    if name == "SentenceGeneration":
        if not all(len(token) == 1 for token in vocabulary) or len(set(vocabulary)) != len(vocabulary):
            raise ValueError("a writer's vocabulary must be distinct single characters (the sorted list of the text's "
                             "characters)")
        ours = ShakespeareWriter("".join(vocabulary), cell, E, layout.hidden_size, layout.bias)
    else:
        ours = StarterSentiment(vocabulary, cell, E, layout.hidden_size, layout.bias)
    ours.load_state_dict(state, strict=True)
    return ours.eval()


# ----- the command -----


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hw3core.check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", help="a state dict (torch.save), a safetensors file, or a checkpoint folder")
    parser.add_argument("--model", choices=CHOICES, default="auto", help="the class it should be (default: auto)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        report = check(args.file, args.model).report
    except StudentFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_json(), indent=2, ensure_ascii=False) if args.json else report.text())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
