"""A cell alone, the piece of Part C a student writes by hand: ``check(LSTMCell, "LSTMCell")``.

An instance is checked at its own sizes; a class is built at the assignment's ``(128, 100, bias=True)`` and at
another size (which a hidden size hard-coded in the class fails); a state dict is checked for its layout and
``count_parameters`` only, as a file holds weights, not code. Each built or given cell is run beside the
assignment's equations (``hw3core.check.cell_forward``).
"""

import torch
from torch import nn

from hw3core.check.cell_forward import run_cell
from hw3core.check.cells import CellLayout, read_cell
from hw3core.check.compare import failure
from hw3core.check.report import Checked, Report, RowResult, forward_not_run
from hw3core.check.student import StudentWeights
from hw3core.check.tables import CELL_GATES, CELL_PARAMETERS, CELL_SIZES

CELL_NAMES = tuple(CELL_PARAMETERS)  # "GRUCell", "LSTMCell"
OTHER_SIZE = {"input_size": 13, "hidden_size": 37, "bias": True}  # sizes no one hard-codes
NOT_RUN = "a cell alone is checked, not run beside ours: check the model it is in to run that"


def build_cells(cls: type, name: str) -> tuple[list[tuple[str, dict, nn.Module]], list[str]]:
    """The student's class built at the assignment's sizes and at another: (call, sizes, cell), and problems."""
    built, problems = [], []
    for sizes in (CELL_SIZES, OTHER_SIZE):
        call = f"{name}({sizes['input_size']}, {sizes['hidden_size']}, bias=True)"
        with torch.random.fork_rng(devices=[]):  # its initialisation draws from the global generator
            try:
                built.append((call, sizes, cls(sizes["input_size"], sizes["hidden_size"], sizes["bias"])))
            except Exception as error:  # noqa: BLE001 (a student's constructor can fail any way; the report says how)
                problems.append(f"{call}: building it fails with {failure(error)} (the signature is "
                                "(input_size, hidden_size, bias)).")
    return built, problems


def check_cell(weights: StudentWeights, name: str, cls: type | None = None) -> Checked:
    """``weights``: the cell's (a module's, or a file's); ``cls``: the student's class, when one was given."""
    report = Report(name, None, source=weights.source if cls is None else f"class {cls.__name__}")
    if cls is not None:
        built, report.problems = build_cells(cls, name)
        cells = built
    else:
        cells = [("yours", None, weights.module)] if weights.module is not None else []
    layouts = [(call, sizes, cell, read_cell(dict(cell.state_dict()), None)) for call, sizes, cell in cells]
    if not cells:  # a file: its weights alone
        layouts = [("yours", None, None, read_cell(_floating(weights.state), None))]
    named = set()
    for call, sizes, cell, layout in layouts:
        _layout_rows(report, name, call, sizes, layout, cell)
        if cell is not None and layout.stacked is not None and layout.cell == name:
            run = run_cell(cell, layout)
            for row in run.rows:
                row.row = row.row if call == "yours" else f"{row.row}: {call}"
            report.rows += run.rows
            if run.mistake is None or run.mistake not in named:  # one mistake is named once, at the first size
                report.problems += [p if call == "yours" else p.replace(":", f" of {call}:", 1) for p in run.problems]
            named.add(run.mistake)
            if run.reading is not None and len(layout.readings) > 1 and not run.problems:
                report.notes.append(f"Read as {run.reading.name} (the forward settles it).")
    if weights.module is None and cls is None:
        report.notes.append(forward_not_run(name).replace("check_model(model", "check_model(cell"))
    report.problems = list(dict.fromkeys(report.problems))
    report.notes = list(dict.fromkeys(report.notes))
    return Checked(report, why_not_run=NOT_RUN)


def _floating(state: dict) -> dict:
    return {key: tensor for key, tensor in state.items() if tensor.is_floating_point()}


def _layout_rows(report: Report, name: str, call: str, sizes: dict | None, layout: CellLayout,
                 cell: nn.Module | None) -> None:
    at = f" ({call})" if call != "yours" else ""
    if layout.stacked is None or layout.cell is None:
        report.rows.append(RowResult(f"Layout{at}", f"{name}: gates over [h, x]", layout.described, False))
        report.problems.append(f"Layout{at}: not converted ({layout.why or 'its gates cannot be read'}); checked "
                               "for shapes only.")
        return
    if layout.cell != name:
        report.rows.append(RowResult(f"Layout{at}", f"{name}", f"{layout.cell}: {layout.described}", False))
        report.problems.append(f"Layout{at}: its weights are a {layout.cell}'s ({layout.described}), not a {name}'s.")
        return
    report.rows.append(RowResult(f"Layout{at}", f"{name}, {CELL_GATES[name]} gates",
                                 layout.described, True))
    if sizes is None or sizes is CELL_SIZES:
        count = (layout.parameters_at(**CELL_SIZES) if sizes is None
                 else sum(p.numel() for p in cell.parameters() if p.requires_grad))
        assignment = f"{name}(128, 100, bias=True)"
        expected = CELL_PARAMETERS[name]
        report.rows.append(RowResult(f"count_parameters: {assignment}", f"{expected:,}", f"{count:,}", count == expected))
        if count != expected:
            report.problems.append(f"count_parameters: {assignment} gives {count:,}; the assignment's is {expected:,}.")
    if sizes is not None:
        wanted = sizes
        if (layout.hidden_size, layout.input_size) != (wanted["hidden_size"], wanted["input_size"]):
            report.rows.append(RowResult(f"Sizes: {call}", f"hidden {wanted['hidden_size']}, input "
                                         f"{wanted['input_size']}", f"hidden {layout.hidden_size}, input "
                                         f"{layout.input_size}", False))
            report.problems.append(f"Sizes: {call} has weights for hidden size {layout.hidden_size} and input size "
                                   f"{layout.input_size}: a size is hard-coded instead of read from the arguments.")


