"""Check your model: a student's AlexNet, sentiment classifier or writer against the assignment's tables.

    python -m hw3core.check best_model.pt [--model auto|AlexNet|...] [--json]

In a notebook: ``from hw3core import check_model; check_model(model, "AlexNet")`` prints the report.

Given a state dict (or a file holding one, or an ``nn.Module``) and optionally the class it should be,
the check names the assignment's class it is, compares it row by row with that class's table
(``hw3core.check.tables``), and names each problem by its row with its likely cause. An ``nn.Module`` is
also run on one (1, 3, 227, 227) image, and each layer's type, output shape and parameter count are
compared, as torchsummary lists them. Where the weights fit one of this project's classes exactly,
they are loaded into it (``Checked.model``), so the app can run them beside ours; a layout that
cannot be mapped without guessing is checked for shapes only, and the report says why.

This module picks the check; the AlexNets are checked in ``hw3core.check.alexnet`` (a module's layers
listed by ``hw3core.check.layer_summary``), the text models in ``hw3core.check.text``, and both write a
``hw3core.check.report.Report``.
"""

from torch import nn

from hw3core.check.alexnet import ALEXNETS, check_alexnet
from hw3core.check.cell import CELL_NAMES, check_cell
from hw3core.check.cells import read_cell
from hw3core.check.report import Checked, Report
from hw3core.check.student import StudentFileError, layers, read_weights
from hw3core.check.text import TEXT_MODELS, check_text

CLASSES = (*ALEXNETS, *TEXT_MODELS, *CELL_NAMES)  # what a student's model can be checked as
CHOICES = ("auto", *CLASSES)


def check(source, model: str = "auto", reading: str = "auto", images=None) -> Checked:
    """Checks a file path, a checkpoint folder, a state dict, an nn.Module, or a cell's class (``GRUCell``,
    ``LSTMCell``); ``model`` is one of CHOICES. Raises StudentFileError (its message says why) for what cannot
    be read as weights at all."""
    if model not in CHOICES:
        raise ValueError(f"model must be one of {', '.join(CHOICES)}, not {model!r}")
    if isinstance(source, type):
        if not issubclass(source, nn.Module) or model not in CELL_NAMES:
            raise StudentFileError(f"A class ({source.__name__}) is checked as a cell only: "
                                   f"check({source.__name__}, \"LSTMCell\") or \"GRUCell\"; for a model, pass an instance.")
        return check_cell(read_weights(nn.Module()), model, cls=source)
    weights = read_weights(source)
    found = layers(weights.state)
    if not found:
        raise StudentFileError("The state dict has no floating-point weights.")
    if model in CELL_NAMES:
        return check_cell(weights, model)
    if model == "auto":
        alone = read_cell({k: t for k, t in weights.state.items() if t.is_floating_point()}, None)
        if alone.stacked is not None and alone.cell is not None:  # a cell's weights and nothing else
            return check_cell(weights, alone.cell)
    text_like = any("embed" in layer.prefix.lower() for layer in found) or model in TEXT_MODELS
    if model in ALEXNETS and not any(layer.weight.ndim == 4 for layer in found):
        looks = " (it has an embedding: a text model? Pick auto)" if text_like else ""
        report = Report(model, None, source=weights.source,
                        problems=[f"Not an AlexNet: it has no convolution weights{looks}."])
        return Checked(report, why_not_run="it is not an AlexNet")
    if model in ALEXNETS or (model == "auto" and any(layer.weight.ndim == 4 for layer in found) and not text_like):
        return check_alexnet(weights, found, model, images)
    if text_like or model in TEXT_MODELS:
        return check_text(weights, found, model, reading)
    report = Report(None, None, source=weights.source, problems=[(
        "Not one of the assignment's models: it has no convolutions (an AlexNet) and no embedding (a text model). "
        "Pick the class it should be to compare it row by row.")])
    return Checked(report, why_not_run="it is not one of the assignment's models")


def check_model(source, model: str = "auto") -> Report:
    """Prints the report (see ``check``) and returns it."""
    report = check(source, model).report
    print(report.text())
    return report
