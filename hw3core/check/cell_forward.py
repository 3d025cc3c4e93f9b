"""A student's cell run beside the assignment's equations: its steps and its gradients compared, and where they
differ, the mistake that explains it.

The student's weights are read into ours (``hw3core.check.cells``: each reading of the layout, where the shapes
allow several), and both run the same steps on the same inputs, from no state and from a random one. The
gradients of one loss over every step's output are compared with respect to the inputs, the incoming state and
each of the student's own weights, so a forward that is right but cuts the graph is caught as well.
"""

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from hw3core.check.cell_equations import MISTAKES, STEPS, Mistake
from hw3core.check.cells import CellLayout, Reading
from hw3core.check.compare import difference, dtype_of, failure, generator, same, tolerance, untouched
from hw3core.check.report import RowResult

BATCH, STEPS_RUN = 3, 4
CUT_GRAPH = "the forward cuts the graph there (.detach(), .data, torch.no_grad or a NumPy round trip)"


@dataclass
class CellRun:
    """What running the student's cell found: the report's rows and problems, and the reading that matched."""

    rows: list[RowResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    reading: Reading | None = None
    mistake: Mistake | None = None


def _inputs(cell: str, input_size: int, hidden: int, dtype: torch.dtype, device) -> tuple[Tensor, list]:
    """Seeded steps (T, B, I) and the states to start from: none, and a random one."""
    rng = generator()
    xs = torch.randn(STEPS_RUN, BATCH, input_size, generator=rng, dtype=dtype).to(device)
    h0 = (torch.rand(BATCH, hidden, generator=rng, dtype=dtype) - 0.5).to(device)
    c0 = (torch.randn(BATCH, hidden, generator=rng, dtype=dtype) * 0.5).to(device)
    return xs, [None, (h0, c0) if cell == "LSTMCell" else h0]


def _steps(step, xs: Tensor, state) -> list:
    """Each step's returned state, from ``state``."""
    returned = []
    for x in xs:
        state = step(x, state)
        returned.append(state)
    return returned


def _flat(states: list) -> list[Tensor]:
    """The tensors a run returned, step by step (an LSTM's h and c each)."""
    return [t for state in states for t in (state if isinstance(state, (tuple, list)) else (state,))]


def _matches(yours: list[Tensor], ours: list[Tensor], terms: int) -> bool:
    return len(yours) == len(ours) and all(same(y, o, terms) for y, o in zip(yours, ours, strict=True))


def _largest(yours: list[Tensor], ours: list[Tensor]) -> float:
    return max((difference(y, o) for y, o in zip(yours, ours, strict=False)), default=float("inf"))


def run_cell(module: nn.Module, layout: CellLayout) -> CellRun:
    """Runs the student's cell ``module`` (whose parameters, by name, are what ``layout`` was read from)
    beside the equations under each of the layout's readings; see the module's docstring."""
    run = CellRun()
    params = dict(module.named_parameters())
    if layout.stacked is None or layout.cell is None or not layout.readings:
        return run
    weights = {name: p.detach() for name, p in params.items()}
    try:
        layout.readings[0].convert(weights)
    except KeyError:  # weights saved as buffers, or under other names: nothing to run them through
        run.rows.append(RowResult("Forward", "the assignment's equations", "not run (its weights are not its "
                                                                           "parameters)", True))
        return run
    cell, hidden, input_size = layout.cell, layout.hidden_size, layout.input_size
    dtype = dtype_of(module)
    device = next(iter(params.values())).device
    xs, starts = _inputs(cell, input_size, hidden, dtype, device)
    terms = STEPS_RUN * (hidden + input_size)
    with untouched(module), torch.no_grad():
        module.eval()
        try:
            yours = [_flat(_steps(module, xs, start)) for start in starts]
        except Exception as error:  # noqa: BLE001 (a student's step can fail any way; the report says how)
            run.rows.append(RowResult("Forward", "the assignment's equations", "fails", False))
            run.problems.append(f"Forward: a step fails with {failure(error)}.")
            return run

        def ours(reading: Reading, step) -> list[list[Tensor]]:
            converted = reading.convert(weights)
            return [_flat(_steps(lambda x, s: step(converted, x, s), xs, start)) for start in starts]

        expected = {reading.name: ours(reading, STEPS[cell]) for reading in layout.readings}
        right = next((r for r in layout.readings if all(_matches(y, o, terms) for y, o in
                                                        zip(yours, expected[r.name], strict=True))), None)
        if right is None:
            run.reading = layout.readings[0]
            largest = min(max(_largest(y, o) for y, o in zip(yours, expected[r.name], strict=True))
                          for r in layout.readings)
            for reading in layout.readings:
                for mistake in MISTAKES[cell]:
                    if all(_matches(y, o, terms) for y, o in zip(yours, ours(reading, mistake.step), strict=True)):
                        run.reading, run.mistake = reading, mistake
                        break
                if run.mistake:
                    break
            expected_text = f"the assignment's {cell}"
            run.rows.append(RowResult("Forward", expected_text, f"differs by up to {largest:.3g}", False))
            if run.mistake:
                run.problems.append(f"Forward: differs from {expected_text} by up to {largest:.3g}: "
                                    f"{run.mistake.what}. Fix: {run.mistake.fix}.")
            else:
                tried = len(MISTAKES[cell]) * len(layout.readings)
                run.problems.append(
                    f"Forward: differs from {expected_text} by up to {largest:.3g} over {STEPS_RUN} steps, and none of "
                    f"the {tried} common mistakes tried gives your outputs (a gate's activation, a gate left out, "
                    f"h without tanh, the state's order, gates swapped"
                    + (f", in each of {len(layout.readings)} readings of the layout" if len(layout.readings) > 1
                       else "") + "). Compare your step with the equations line by line.")
            return run
        run.reading = right
        run.rows.append(RowResult("Forward", f"the assignment's {cell}", f"the same over {STEPS_RUN} steps, from no "
                                  "state and from a random one" + _read_as(layout, right), True))
    _gradients(module, params, right, cell, xs, starts[1], terms, run)
    return run


def _read_as(layout: CellLayout, reading: Reading) -> str:
    return f"; read as {reading.name}" if len(layout.readings) > 1 else ""


def _gradients(module: nn.Module, params: dict[str, nn.Parameter], reading: Reading, cell: str, xs: Tensor,
               start, terms: int, run: CellRun) -> None:
    """The gradients of one loss over every step's outputs: the student's against the equations', with respect
    to the inputs, the incoming state and every weight."""
    rng = generator(1)
    leaves = [start] if isinstance(start, Tensor) else list(start)
    names = [*params]

    def loss_of(step, inputs, state) -> Tensor:
        outputs = _flat(_steps(step, inputs, state))
        probes = [torch.randn(o.shape, generator=rng, dtype=o.dtype).to(o.device) for o in outputs]
        return sum((o * p).sum() for o, p in zip(outputs, probes, strict=True))

    wrt = ["the input x", *(["h_prev"] if cell == "GRUCell" else ["h_prev", "c_prev"]), *names]
    with untouched(module):
        module.eval()
        yours_inputs = [t.detach().clone().requires_grad_() for t in (xs, *leaves)]
        state = yours_inputs[1] if cell == "GRUCell" else tuple(yours_inputs[1:])
        try:
            loss = loss_of(module, yours_inputs[0], state)
            yours = torch.autograd.grad(loss, [*yours_inputs, *params.values()], allow_unused=True) \
                if loss.requires_grad else [None] * len(wrt)
        except Exception as error:  # noqa: BLE001 (a student's backward can fail any way; the report says how)
            run.rows.append(RowResult("Gradients", "the equations' gradients", "fail", False))
            numpy = "numpy" in str(error).lower()
            run.problems.append("Gradients: the forward calls .numpy() on a tensor that needs a gradient: "
                                f"{CUT_GRAPH}." if numpy else f"Gradients: the backward pass fails with {failure(error)}.")
            return
    rng.manual_seed(1)
    ours_inputs = [t.detach().clone().requires_grad_() for t in (xs, *leaves)]
    copies = {name: p.detach().clone().requires_grad_() for name, p in params.items()}
    state = ours_inputs[1] if cell == "GRUCell" else tuple(ours_inputs[1:])
    converted = reading.convert(copies)
    loss = loss_of(lambda x, s: STEPS[cell](converted, x, s), ours_inputs[0], state)
    ours = torch.autograd.grad(loss, [*ours_inputs, *copies.values()], allow_unused=True)
    cut = [name for name, y, o in zip(wrt, yours, ours, strict=True) if y is None and o is not None]
    off = [name for name, y, o in zip(wrt, yours, ours, strict=True)
           if y is not None and o is not None and not same(y, o, terms * BATCH)]
    if cut:
        run.rows.append(RowResult("Gradients", "reach the input, the state and every weight",
                                  f"do not reach {', '.join(cut)}", False))
        run.problems.append(f"Gradients: do not reach {', '.join(cut)}, though the forward is right: {CUT_GRAPH}.")
    elif off:
        worst = max(float((y - o).abs().max() / max(tolerance(o, terms * BATCH), 1e-30))
                    for name, y, o in zip(wrt, yours, ours, strict=True) if name in off)
        run.rows.append(RowResult("Gradients", "the equations' gradients", f"differ for {', '.join(off)}", False))
        run.problems.append(f"Gradients: differ for {', '.join(off)} (up to {worst:.3g} times the rounding "
                            "allowed), though the forward is right: a custom backward, or a term computed outside "
                            "autograd, changes them.")
    else:
        run.rows.append(RowResult("Gradients", "the equations' gradients",
                                  "the same, for the input, the state and every weight", True))
