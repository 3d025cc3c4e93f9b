"""A student's text model (Parts C and D) against the assignment: the embedding, the cell (converted from the
starter's per-gate layout) and the classifier consistent with the vocabulary and each other, and the cell's
count_parameters at the assignment's sizes."""

import torch
from torch import Tensor, nn

from hw3core.check.cell_forward import run_cell
from hw3core.check.cells import CellLayout, read_cell
from hw3core.check.report import Checked, Report, RowResult, forward_not_run
from hw3core.check.starter import StarterSentiment
from hw3core.check.student import SAVE_WITH_VOCABULARY, Layer, StudentWeights, parameter_count
from hw3core.check.tables import CELL_GATES, CELL_PARAMETERS, CELL_SIZES
from hw3core.check.text_forward import REVIEWS, clearly_best, compare_text_forward, evidence_loss
from hw3core.rnn_cells import CELLS
from hw3core.text_models import ShakespeareWriter

TEXT_MODELS = ("SentimentClassification", "SentenceGeneration")
CELL_KEYS = {cell.__name__: key for key, cell in CELLS.items()}  # "GRUCell" -> "gru": our checkpoints' names
# What a text model's last layer is usually called: classifier (the starter's), fc, decoder...
CLASSIFIER_NAMES = ("classif", "fc", "decoder", "head", "output", "linear")
# A hidden size no one hard-codes: the student's cell class is built with it to see whether it is used.
PROBE_HIDDEN_SIZE = 37


def check_text(weights: StudentWeights, found: list[Layer], model: str, reading: str = "auto") -> Checked:
    state, vocabulary = weights.state, weights.vocabulary
    embedding = next((layer for layer in found if "embed" in layer.prefix.lower() and layer.weight.ndim == 2), found[0])
    # The classifier by its name where it has a usual one (safetensors sorts 'classifier' first), the one nearest
    # the model's top (not a cell's 'output_gate'); else the last layer.
    named = [layer for layer in found if layer is not embedding and layer.weight.ndim == 2
             and any(word in layer.prefix.lower() for word in CLASSIFIER_NAMES)]
    classifier = min(named, key=lambda layer: layer.prefix.count(".")) if named else found[-1]
    if embedding is classifier or embedding.weight.ndim != 2 or classifier.weight.ndim != 2:
        report = Report(None, None, source=weights.source, problems=[
            "Not a text model of the assignment: it needs an embedding, a cell and a classifier (nn.Linear)."])
        return Checked(report, why_not_run="it is not a text model of the assignment")
    V, E = embedding.weight.shape
    C, H_in = classifier.weight.shape
    name = model if model in TEXT_MODELS else ("SentimentClassification" if C == 2 else "SentenceGeneration")
    cell_prefix = _common_prefix([k for k in state if k not in embedding.keys + classifier.keys])
    cell_keys = {k[len(cell_prefix):].lstrip("."): k for k, t in state.items()
                 if k not in embedding.keys + classifier.keys and t.is_floating_point()}
    cell_tensors = {relative: state[key] for relative, key in cell_keys.items()}
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
    gates = CELL_GATES.get(layout.cell)
    if layout.stacked is not None:
        expected = f"{gates} gates over [h, x], {layout.hidden_size} × ({layout.hidden_size} + {E})"
        rows.append(RowResult(cell_title, expected, layout.described, True))
    else:
        rows.append(RowResult(cell_title, "GRU (3 gates) or LSTM (4 gates) over [h, x]", layout.described, False))
        problems.append(f"{cell_title}: not converted ({layout.why}); checked for shapes only, and not run.")
    at = layout.parameters_at(**CELL_SIZES)  # the assignment's 128, 100, bias=True
    if layout.cell:
        assignment = f"{layout.cell}(128, 100, bias=True)"
        expected_count = CELL_PARAMETERS[layout.cell]
        if weights.module is not None:
            at = _module_cell_count(weights.module, layout) or at
            built = _hidden_size_when_built(weights.module, E)
            if built is not None and built != PROBE_HIDDEN_SIZE:
                probe_row = f"{layout.cell}({E}, hidden_size={PROBE_HIDDEN_SIZE})"
                rows.append(RowResult(probe_row, f"hidden size {PROBE_HIDDEN_SIZE}", f"hidden size {built}", False))
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
    if layout.stacked is not None and reading != "auto":
        if reading not in [r.name for r in layout.readings]:
            problems.append(f"Reading: {reading!r} is not one of this layout's: "
                            f"{'; '.join(r.name for r in layout.readings)}.")
        else:
            layout = layout.read_as(cell_tensors, reading)
            report.reading = reading
    if weights.module is not None and layout.stacked is not None and not problems:
        layout = _run_module(weights.module, report, layout, cell_tensors, cell_keys, embedding, classifier, name)
    if problems:
        return Checked(report, why_not_run=layout.why or "it does not match the assignment")
    if layout.ambiguous and weights.module is None and vocabulary is not None:
        layout = _settle_from_text(report, layout, cell_tensors, embedding, classifier, vocabulary, name)
    if layout.ambiguous and weights.module is None:
        choices = [r.name for r in layout.readings]
        why = (f"its {layout.cell}'s weights can be read {len(choices)} ways that compute different functions (the "
               "shapes are the same), and a file holds no code to settle it: pick the one your forward uses")
        report.notes += [f"Not run: {why}. The readings: {'; '.join(choices)}.", forward_not_run(name)]
        return Checked(report, why_not_run=why, readings=choices)
    if weights.module is None:
        report.notes.append(forward_not_run(name))
    if vocabulary is None:
        why = f"the file has no vocabulary; save one with it: {SAVE_WITH_VOCABULARY}"
        if weights.module is not None:  # a model, not a file: a state dict can carry the vocabulary alongside
            why = ("the model has no vocabulary; pass one with its weights: check_model({'model': model.state_dict(), "
                   f"'vocabulary': vocabulary}}, {name!r})")
        report.notes.append(f"Checked, but not run: {why}.")
        return Checked(report, why_not_run=why)
    try:
        ours = _ours_text(name, layout, embedding, classifier, vocabulary)
    except ValueError as error:
        report.notes.append(f"Checked, but not run: {error}.")
        return Checked(report, why_not_run=str(error))
    return Checked(report, ours)


def _run_module(module: nn.Module, report: Report, layout: CellLayout, cell_tensors: dict[str, Tensor],
                cell_keys: dict[str, str], embedding: Layer, classifier: Layer, name: str) -> CellLayout:
    """The student's cell beside the equations, then the whole model beside ours with the student's weights."""
    cell = _student_cell(module)
    if cell is not None and set(dict(cell.named_parameters())) == set(cell_tensors):
        run = run_cell(cell, layout)
        for row in run.rows:
            row.row = f"{layout.cell} {row.row.lower()}"
        report.rows += run.rows
        report.problems += [f"{layout.cell} {p[0].lower()}{p[1:]}" for p in run.problems]
        if run.reading is not None and not run.problems:
            if len(layout.readings) > 1:
                report.reading = run.reading.name
                report.notes.append(f"Read as {run.reading.name}: your forward settles it.")
            layout = layout.read_as(cell_tensors, run.reading.name)
    if report.problems:
        return layout
    V = embedding.weight.shape[0]
    placeholder = [chr(0x4E00 + i) for i in range(V)]  # distinct single characters: the vocabulary is not needed
    ours = _ours_text(name, layout, embedding, classifier, placeholder)
    names = {"embedding.weight": embedding.keys[0], "classifier.weight": classifier.keys[0]}
    if classifier.bias is not None:
        names["classifier.bias"] = classifier.keys[1]
    reading = layout.readings[0]

    def convert(copies: dict[str, Tensor]) -> dict[str, Tensor]:
        return reading.convert({relative: copies[key] for relative, key in cell_keys.items()})

    rows, problems = compare_text_forward(module, ours, name, names, convert)
    report.rows += rows
    report.problems += problems
    return layout


def _settle_from_text(report: Report, layout: CellLayout, cell_tensors: dict[str, Tensor], embedding: Layer,
                      classifier: Layer, vocabulary: list[str], name: str) -> CellLayout:
    """A file's ambiguous cell read each way on text with known answers; one reading taken only when it is
    clearly right (see ``text_forward.clearly_best``), and the report says so."""
    try:
        scores = {r.name: evidence_loss(_ours_text(name, layout.read_as(cell_tensors, r.name), embedding, classifier,
                                                   vocabulary), name) for r in layout.readings}
    except ValueError:
        return layout
    best = clearly_best(scores, name)
    if best is None:
        return layout
    loss, right = scores[best]
    others = min(loss for reading, (loss, _) in scores.items() if reading != best)
    evidence = (f"on {len(REVIEWS)} reviews written for this check, {right:.0%} right" if name == "SentimentClassification"
                else "on the assignment's sample passage")
    report.reading = best
    report.notes.append(f"Read as {best}: {evidence}, its loss is {loss:.2f} against at least {others:.2f} for the "
                        f"{len(scores) - 1} other reading(s) of the same weights. Pick another reading if yours differs.")
    return layout.read_as(cell_tensors, best)


def _common_prefix(keys: list[str]) -> str:
    if not keys:
        return ""
    parts = [key.split(".") for key in keys]
    common = []
    for pieces in zip(*parts, strict=False):  # the common prefix is no longer than the shortest key
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
