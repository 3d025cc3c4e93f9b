"""A student's AlexNet against the assignment's tables (Parts A and B): a state dict's weights row by row,
a module's layers as torchsummary lists them, each problem named by its row with its likely cause."""

import math

import torch
from torch import Tensor, nn

from hw3core.check.alexnet_forward import compare_alexnet_forward
from hw3core.check.layer_summary import summary_rows
from hw3core.check.report import Checked, Report, RowResult, forward_not_run
from hw3core.check.student import Layer, StudentWeights, layers, parameter_count
from hw3core.check.tables import PACS_CATEGORIES, TOTALS, Row, weighted_rows
from hw3core.meta_device import on_meta_device
from hw3core.registry import ALEXNET_VARIANTS

ALEXNETS = {cls.__name__: cls for cls in ALEXNET_VARIANTS.values()}  # "AlexNet" -> AlexNet, ...
SAME_WEIGHTS = ("AlexNet", "AlexNetAvgPooling")  # one state dict, two functions
CLEAR_MARGIN = 0.5  # nats per image by which one pooling must beat the other to be taken without asking
MAX_EXTRA_ROWS = 10  # layers the table does not have, listed one by one


def _meta(name: str) -> nn.Module:
    with on_meta_device():  # shapes only
        return ALEXNETS[name]()


def check_alexnet(weights: StudentWeights, found: list[Layer], model: str, images=None) -> Checked:
    """``images``: (normalised image, domain index) pairs, used only to tell a file's pooling where clear."""
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
    same_weights = [other for other in SAME_WEIGHTS if other != name] if name in SAME_WEIGHTS else []
    weights_fit = not _weight_rows(name, found)[1] and parameter_count(weights.state) == TOTALS[name]
    if weights.module is not None and weights_fit:  # the forward decides what the layer listing guessed
        return _run_forward(weights, found, name, report, same_weights if model == "auto" and not pools_seen else [])
    if not report.ok:
        fits = next((other for other in ALEXNETS if other != name and model != "auto"
                     and _alexnet_report(other, weights, found).ok), None)
        if fits:
            report.notes.append(f"It matches {fits}'s table: pick {fits} (or auto).")
        return Checked(report, why_not_run="it does not match the table")
    if model == "auto" and same_weights:
        return _settle_pooling(weights, found, report, images)
    report.notes.append(forward_not_run(name))
    return Checked(report, _ours(name, found))


def _ours(name: str, found: list[Layer]) -> nn.Module:
    """Our class of ``name`` holding the student's weights."""
    ours = _meta(name)
    mapped = {}
    for (key, _), layer in zip(ours.named_parameters(), _parameters_in_order(found), strict=True):
        mapped[key] = layer.to(torch.float32, copy=True).contiguous()
    ours.load_state_dict(mapped, assign=True, strict=True)  # takes the student's tensors as our parameters
    return ours.eval()


def _sharing(name: str, ours: nn.Module) -> nn.Module:
    """Our class of ``name`` on the very tensors of ``ours`` (AlexNet and AlexNetAvgPooling: the same weights), so
    trying the other reading costs no second copy of 233 MB."""
    other = _meta(name)
    other.load_state_dict(ours.state_dict(), assign=True, strict=True)
    return other.eval()


def _run_forward(weights: StudentWeights, found: list[Layer], name: str, report: Report, others: list[str]) -> Checked:
    """The student's forward beside ours; where it differs, the class of the same weights it may be instead."""
    ours = _ours(name, found)
    rows, problems = compare_alexnet_forward(weights.module, ours, name)
    for other in others if problems else []:
        other_ours = _sharing(other, ours)
        other_rows, other_problems = compare_alexnet_forward(weights.module, other_ours, other)
        if not other_problems:
            report = _alexnet_report(other, weights, found)
            report.notes.append(f"Read as {other}: it has {name}'s weights, and your forward settles it.")
            name, ours, rows, problems = other, other_ours, other_rows, other_problems
            break
    if others and not problems and name == "AlexNet":
        report.notes.append("Read as AlexNet (not AlexNetAvgPooling, which has the same weights): your forward "
                            "settles it.")
    report.rows += rows
    # The weights fit, so what the listing of layers flagged is settled by running them: the forward's findings
    # (and the kernel, stride and padding of each layer) are the problems.
    listed = [p for p in report.problems if not p.startswith("Forward:")]
    failed = any(p.startswith("Forward: fails") for p in problems)  # then the listing's shapes say where
    report.problems = list(dict.fromkeys([*listed, *problems] if failed else problems))
    if report.problems:
        return Checked(report, why_not_run="its forward differs from the table's")
    return Checked(report, ours)


def _settle_pooling(weights: StudentWeights, found: list[Layer], report: Report, images) -> Checked:
    """A file of AlexNet's weights on auto: max or average pooling, which its weights cannot tell. Taken from the
    images given (each with its domain) only where one is clearly right; otherwise the report asks."""
    if images:
        first = _ours(SAME_WEIGHTS[0], found)
        candidates = {SAME_WEIGHTS[0]: first, **{name: _sharing(name, first) for name in SAME_WEIGHTS[1:]}}
        scores = {name: _image_loss(model, images) for name, model in candidates.items()}
        (best, (loss, right)), (_, (runner_up, _)) = sorted(scores.items(), key=lambda item: item[1][0])
        if right >= 0.75 and runner_up - loss >= CLEAR_MARGIN:
            settled = _alexnet_report(best, weights, found)
            other = next(name for name in SAME_WEIGHTS if name != best)
            settled.notes.append(f"Read as {best}: its weights are also {other}'s; on {len(images)} example images "
                                 f"it gets {right:.0%} right, with a loss of {loss:.2f} against {runner_up:.2f}. "
                                 "Pick the other class if yours pools the other way.")
            settled.reading = best
            settled.notes.append(forward_not_run(best))
            return Checked(settled, candidates[best])
    why = ("AlexNet and AlexNetAvgPooling have the same weights, and a file holds no code to tell which pooling yours "
           "uses: pick AlexNet or AlexNetAvgPooling")
    report.notes += [f"Not run: {why}.", forward_not_run(report.model)]
    return Checked(report, why_not_run=why, readings=list(SAME_WEIGHTS))


@torch.no_grad()
def _image_loss(model: nn.Module, images) -> tuple[float, float]:
    batch = torch.stack([image for image, _ in images])
    labels = torch.tensor([label for _, label in images])
    logits = model(batch)
    return float(nn.functional.cross_entropy(logits, labels)), float((logits.argmax(1) == labels).float().mean())


def _parameters_in_order(found: list[Layer]) -> list[Tensor]:
    """The convolutions, then the linears, each in the file's order (safetensors sorts its names, and
    'classifier.1' sorts before 'features.0'), as _weight_rows pairs them with the table."""
    ordered = [layer for layer in found if layer.weight.ndim == 4] + [layer for layer in found if layer.weight.ndim == 2]
    return [tensor for layer in ordered for tensor in (layer.weight, layer.bias) if tensor is not None]


def _alexnet_report(name: str, weights: StudentWeights, found: list[Layer]) -> Report:
    report = Report(name, None, source=weights.source)
    weight_rows, weight_problems = _weight_rows(name, found)
    if weights.module is not None:
        report.rows, summary_problems = summary_rows(name, weights.module)
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
        extra = yours[len(pairs_table):]
        for layer in extra[:MAX_EXTRA_ROWS]:
            rows.append(RowResult(f"{kind} (extra)", "—", f"{layer.prefix}: {_shape(layer)}", False))
            problems.append(f"{layer.prefix}: a {kind} layer more than the table's {len(pairs_table)}.")
        _and_more(extra, rows, problems)
    others = [layer for layer in found if layer.weight.ndim not in (2, 4)]
    for layer in others[:MAX_EXTRA_ROWS]:
        rows.append(RowResult(f"{layer.prefix} (extra)", "—", _shape(layer), False))
        problems.append(f"{layer.prefix}: weights of shape {list(layer.weight.shape)} that no row of the table "
                        "has (a BatchNorm layer?).")
    _and_more(others, rows, problems)
    return rows, problems


def _and_more(extra: list[Layer], rows: list[RowResult], problems: list[str]) -> None:
    """One row for the layers beyond the first MAX_EXTRA_ROWS: a report stays readable (and small) whatever the file."""
    if len(extra) > MAX_EXTRA_ROWS:
        more = len(extra) - MAX_EXTRA_ROWS
        rows.append(RowResult(f"{more:,} more (extra)", "—", f"{more:,} more layers the table does not have", False))
        problems.append(f"{more:,} more layers that the table does not have.")


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
