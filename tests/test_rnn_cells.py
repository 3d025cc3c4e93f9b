"""Part C: the from-scratch GRU and LSTM cells, their one-step and whole-sequence paths."""

import io
import math
import re
import tokenize
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import assert_numerically_close
from hw3core import CELLS, GRUCell, LSTMCell
from hw3core.check.tables import CELL_PARAMETERS

REPO = Path(__file__).resolve().parents[1]
CELL_CLASSES = pytest.mark.parametrize("cell_cls", list(CELLS.values()), ids=list(CELLS))  # a new cell gets every test
WITH_STATE = pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])


# ----- parameter counts (the assignment's comparison: input_size=128, hidden_size=100) -----


@pytest.mark.parametrize(
    ("cell_cls", "bias", "expected"),
    [
        (GRUCell, True, CELL_PARAMETERS["GRUCell"]),  # 3 * 100 * (128 + 100) + 3 * 100 = 68,700
        (LSTMCell, True, CELL_PARAMETERS["LSTMCell"]),  # 4 * 100 * (128 + 100) + 4 * 100 = 91,600
        (GRUCell, False, 68_400),
        (LSTMCell, False, 91_200),
    ],
)
def test_count_parameters(cell_cls, bias, expected, capsys):
    cell = cell_cls(input_size=128, hidden_size=100, bias=bias)
    assert cell.count_parameters() == expected
    assert f"Total Parameters: {expected}" in capsys.readouterr().out


@CELL_CLASSES
@pytest.mark.parametrize("bias", [True, False])
def test_initialisation_is_uniform_within_one_over_sqrt_hidden(cell_cls, bias):
    torch.manual_seed(0)
    cell = cell_cls(input_size=128, hidden_size=100, bias=bias)
    bound = 1 / math.sqrt(100)
    params = dict(cell.named_parameters())
    assert set(params) == ({"weight_ih", "weight_hh", "bias"} if bias else {"weight_ih", "weight_hh"})
    for name, p in params.items():
        assert p.abs().max() <= bound, name
        assert p.abs().max() > 0.9 * bound, name  # spread over the whole range, not zeros
        assert abs(p.mean().item()) < 0.1 * bound, name


# ----- one step against references -----


def lstm_pair(input_size, hidden_size, bias):
    """Our LSTMCell and torch.nn.LSTMCell holding the same function (float64)."""
    torch.manual_seed(0)
    ours = LSTMCell(input_size, hidden_size, bias).double()
    theirs = nn.LSTMCell(input_size, hidden_size, bias=bias).double()
    with torch.no_grad():
        theirs.weight_ih.copy_(ours.weight_ih)
        theirs.weight_hh.copy_(ours.weight_hh)
        if bias:
            theirs.bias_ih.uniform_(-0.5, 0.5)
            theirs.bias_hh.uniform_(-0.5, 0.5)
            ours.bias.copy_(theirs.bias_ih + theirs.bias_hh)
    return ours, theirs


@pytest.mark.parametrize("bias", [True, False])
@WITH_STATE
def test_lstm_cell_matches_torch_lstm_cell(bias, with_state):
    ours, theirs = lstm_pair(5, 7, bias)
    batch = 3
    ours_state = theirs_state = None
    if with_state:
        h0, c0 = torch.randn(batch, 7, dtype=torch.double), torch.randn(batch, 7, dtype=torch.double)
        ours_state, theirs_state = (h0, c0), (h0, c0)
    with torch.no_grad():
        for _ in range(4):
            x = torch.randn(batch, 5, dtype=torch.double)
            ours_state = ours(x, ours_state)
            theirs_state = theirs(x, theirs_state)
            assert_numerically_close(ours_state[0], theirs_state[0])
            assert_numerically_close(ours_state[1], theirs_state[1])


@pytest.mark.parametrize("path", ["step", "sequence"])
def test_lstm_values_and_gradients_match_torch_lstm_cell(path):
    """torch.nn.LSTMCell as the independent oracle: the same weights give the same states, and the same
    gradients for the inputs, the initial state and every weight, on the step path and the sequence path."""
    ours, theirs = lstm_pair(5, 7, bias=True)
    torch.manual_seed(1)
    xs = torch.randn(4, 3, 5, dtype=torch.double)
    h0, c0 = torch.randn(3, 7, dtype=torch.double), torch.randn(3, 7, dtype=torch.double)
    weights = torch.randn(4, 3, 7, dtype=torch.double)  # a loss that weighs every step's h differently
    results = []
    for cell, run in [(ours, path), (theirs, "step")]:
        x, h, c = (t.clone().requires_grad_() for t in (xs, h0, c0))
        if run == "sequence":
            hs, (_, c_last) = cell.sequence(x, (h, c))
        else:
            state, steps = (h, c), []
            for x_t in x:
                state = cell(x_t, state)
                steps.append(state[0])
            hs, c_last = torch.stack(steps), state[1]
        ((hs * weights).sum() + c_last.sum()).backward()
        bias_grad = cell.bias.grad if cell is ours else cell.bias_ih.grad  # bias_ih and bias_hh get the same
        results.append((hs, x.grad, h.grad, c.grad, cell.weight_ih.grad, cell.weight_hh.grad, bias_grad))
    for mine, reference in zip(*results, strict=True):
        assert_numerically_close(mine, reference)


@CELL_CLASSES
def test_cells_run_under_cpu_bfloat16_autocast(cell_cls):
    """The recurrence keeps float32 under autocast (bfloat16 would lose a state's small changes over
    hundreds of steps); values and gradients stay within bfloat16's rounding of the float32 ones."""
    cell = make_cell(cell_cls, input_size=8, hidden_size=16).float()
    xs = torch.randn(6, 3, 8)
    grads = []
    for enabled in (False, True):
        x = xs.clone().requires_grad_()
        cell.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            hs, _ = cell.sequence(x)
            step = cell.output(cell(x[0]))
        (hs.sum() + step.sum()).backward()
        grads.append((hs.float(), x.grad, cell.weight_hh.grad.clone(), cell.weight_ih.grad.clone()))
    assert grads[1][0].dtype == torch.float32
    for plain, autocast in zip(*grads, strict=True):
        torch.testing.assert_close(autocast, plain, rtol=0.05, atol=0.05)


def test_lstm_cell_none_state_means_zeros():
    ours, _ = lstm_pair(5, 7, True)
    x = torch.randn(3, 5, dtype=torch.double)
    zeros = torch.zeros(3, 7, dtype=torch.double)
    h, c = ours(x)
    h_zero, c_zero = ours(x, (zeros, zeros))
    assert torch.equal(h, h_zero) and torch.equal(c, c_zero)
    assert h.shape == c.shape == (3, 7)


def reference_gru_step(cell: GRUCell, x, h):
    """The assignment's GRU, from the formulas, with W_* acting on the concatenation [h, x]."""
    H = cell.hidden_size
    rows = {"z": slice(0, H), "r": slice(H, 2 * H), "n": slice(2 * H, 3 * H)}
    W = {k: torch.cat([cell.weight_hh[s], cell.weight_ih[s]], dim=1) for k, s in rows.items()}
    b = {k: (cell.bias[s] if cell.bias is not None else 0) for k, s in rows.items()}
    z = torch.sigmoid(torch.cat([h, x], dim=1) @ W["z"].t() + b["z"])
    r = torch.sigmoid(torch.cat([h, x], dim=1) @ W["r"].t() + b["r"])
    candidate = torch.tanh(torch.cat([r * h, x], dim=1) @ W["n"].t() + b["n"])
    return (1 - z) * h + z * candidate


@pytest.mark.parametrize("bias", [True, False])
@WITH_STATE
def test_gru_cell_matches_the_assignment_formulas(bias, with_state):
    torch.manual_seed(0)
    cell = GRUCell(5, 7, bias).double()
    if bias:
        with torch.no_grad():
            cell.bias.uniform_(-0.5, 0.5)
    h = torch.randn(3, 7, dtype=torch.double) if with_state else None
    h_ref = h if with_state else torch.zeros(3, 7, dtype=torch.double)
    with torch.no_grad():
        for _ in range(4):
            x = torch.randn(3, 5, dtype=torch.double)
            h = cell(x, h)
            h_ref = reference_gru_step(cell, x, h_ref)
            assert h.shape == (3, 7)
            assert_numerically_close(h, h_ref)


# ----- the fast whole-sequence path equals the loop over steps, values and gradients -----


def make_cell(cell_cls, input_size=4, hidden_size=5, bias=True, seed=0):
    torch.manual_seed(seed)
    cell = cell_cls(input_size, hidden_size, bias).double()
    if bias:
        with torch.no_grad():
            cell.bias.uniform_(-0.5, 0.5)
    return cell


def initial_state(cell_cls, batch, hidden_size):
    if cell_cls is LSTMCell:
        return (
            torch.randn(batch, hidden_size, dtype=torch.double, requires_grad=True),
            torch.randn(batch, hidden_size, dtype=torch.double, requires_grad=True),
        )
    return torch.randn(batch, hidden_size, dtype=torch.double, requires_grad=True)


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def loop(cell, xs, state):
    outputs = []
    for x in xs:
        state = cell(x, state)
        outputs.append(as_tuple(state)[0])
    return torch.stack(outputs), state


LOSSES = ["outputs", "final-h", "final-c", "everything"]  # final-c: the LSTM only


def loss_of(kind, hs, state, weights):
    h_last = as_tuple(state)[0]
    if kind == "outputs":
        return (hs * weights["hs"]).sum()
    if kind == "final-h":
        return (h_last * weights["h"]).sum()
    c_last = as_tuple(state)[-1]  # for the GRU the state is h
    if kind == "final-c":
        return (c_last * weights["c"]).sum()
    return (hs * weights["hs"]).sum() + (h_last * weights["h"]).sum() + (c_last * weights["c"]).sum()


@pytest.mark.parametrize(
    ("cell_cls", "loss_kind"),
    [(cell_cls, kind) for cell_cls in (GRUCell, LSTMCell) for kind in LOSSES if (cell_cls, kind) != (GRUCell, "final-c")],
    ids=lambda value: value if isinstance(value, str) else value.__name__,
)
@WITH_STATE
@pytest.mark.parametrize("bias", [True, False])
def test_sequence_equals_loop_values_and_gradients(cell_cls, loss_kind, with_state, bias):
    T, B, I, H = 6, 3, 4, 5
    cell = make_cell(cell_cls, I, H, bias)
    xs = torch.randn(T, B, I, dtype=torch.double, requires_grad=True)
    state = initial_state(cell_cls, B, H) if with_state else None
    weights = {"hs": torch.randn(T, B, H, dtype=torch.double)}
    weights["h"] = torch.randn(B, H, dtype=torch.double)
    weights["c"] = torch.randn(B, H, dtype=torch.double)
    wrt = [xs, *(as_tuple(state) if with_state else ()), *cell.parameters()]

    hs_fast, state_fast = cell.sequence(xs, state)
    hs_loop, state_loop = loop(cell, xs, state)
    assert hs_fast.shape == (T, B, H)
    assert_numerically_close(hs_fast, hs_loop)
    assert type(state_fast) is type(state_loop)
    for fast, slow in zip(as_tuple(state_fast), as_tuple(state_loop), strict=True):
        assert fast.shape == (B, H)
        assert_numerically_close(fast, slow)

    grads_fast = torch.autograd.grad(loss_of(loss_kind, hs_fast, state_fast, weights), wrt)
    grads_loop = torch.autograd.grad(loss_of(loss_kind, hs_loop, state_loop, weights), wrt)
    for tensor, fast, slow in zip(wrt, grads_fast, grads_loop, strict=True):
        assert fast.shape == tensor.shape
        assert_numerically_close(fast, slow)
    assert any(g.abs().max() > 1e-3 for g in grads_loop)  # the comparison is not between zeros


class Sequence(nn.Module):
    """``cell.sequence`` as a module's forward, so ``functional_call`` can feed it parameters."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, xs, *state):
        hs, last = self.cell.sequence(xs, state if len(state) == 2 else (state[0] if state else None))
        return (hs, *as_tuple(last))


@CELL_CLASSES
@WITH_STATE
def test_sequence_passes_gradcheck(cell_cls, with_state):
    T, B, I, H = 3, 2, 3, 4
    wrapper = Sequence(make_cell(cell_cls, I, H, bias=True))
    names = [f"cell.{name}" for name, _ in wrapper.cell.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in wrapper.cell.parameters()]
    xs = torch.randn(T, B, I, dtype=torch.double, requires_grad=True)
    state = as_tuple(initial_state(cell_cls, B, H)) if with_state else ()
    n_state = len(state)

    def f(xs, *rest):
        state, weights = rest[:n_state], rest[n_state:]
        return torch.func.functional_call(wrapper, dict(zip(names, weights, strict=True)), (xs, *state))

    assert torch.autograd.gradcheck(f, (xs, *state, *params), eps=1e-6, atol=1e-5)


@CELL_CLASSES
def test_sequence_continues_from_a_returned_state(cell_cls):
    cell = make_cell(cell_cls)
    xs = torch.randn(7, 2, 4, dtype=torch.double)
    with torch.no_grad():
        hs_whole, state_whole = cell.sequence(xs)
        hs_a, state_a = cell.sequence(xs[:3])
        hs_b, state_b = cell.sequence(xs[3:], state_a)
    assert_numerically_close(torch.cat([hs_a, hs_b]), hs_whole)
    for split, whole in zip(as_tuple(state_b), as_tuple(state_whole), strict=True):
        assert_numerically_close(split, whole)


# ----- no built-in recurrent modules outside the benchmark -----

BUILT_IN_RNN = re.compile(
    r"\bnn\s*\.\s*(?:LSTM|GRU|RNN)(?:Cell)?\b"  # nn.LSTM, torch.nn.GRUCell, ...
    r"|\bnn\s*\.\s*modules\s*\.\s*rnn\b"  # torch.nn.modules.rnn.LSTM
    r"|\bfrom\s+torch\s*\.\s*nn(?:\s*\.\s*modules(?:\s*\.\s*rnn)?)?\s+import\b[^\n]*?\b(?:LSTM|GRU|RNN)(?:Cell)?\b"
    r"|\btorch\s*\.\s*(?:lstm|gru|rnn_tanh|rnn_relu)(?:_cell)?\s*\("  # the functional kernels behind them
    r"|\b_VF\s*\.\s*(?:lstm|gru|rnn_tanh|rnn_relu)"
)


def code_without_comments_and_strings(source: str) -> str:
    """The source with comments and string literals (docstrings included) blanked out."""
    skipped = {tokenize.COMMENT, tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}
    kept = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NEWLINE:
            kept.append("\n")  # one line per logical line: a bracketed import reads as one line
        elif token.type not in skipped and token.type != tokenize.NL:
            kept.append(token.string)
    return " ".join(kept)


def scanned_files():
    files = [REPO / "app.py"] if (REPO / "app.py").is_file() else []
    for folder in ("hw3core", "training", "demos"):
        files += sorted((REPO / folder).rglob("*.py")) if (REPO / folder).is_dir() else []
    return [f for f in files if f != REPO / "training" / "benchmark.py"]


@pytest.mark.parametrize(
    "line",
    [
        "cell = nn.LSTM(3, 4)",
        "cell = torch.nn.GRUCell(3, 4)",
        "cell = nn.RNNCell(3, 4)",
        "from torch.nn import Linear, LSTM",
        "from torch.nn import (\n    GRU,\n)",
        "from torch.nn.modules.rnn import LSTMCell",
        "x = torch.nn.modules.rnn.LSTM",
        "h, c = torch.lstm_cell(x, (h, c), w_ih, w_hh)",
    ],
)
def test_the_scan_recognises_built_in_rnns(line):
    assert BUILT_IN_RNN.search(code_without_comments_and_strings(line + "\n"))


def test_the_scan_ignores_comments_and_docstrings():
    source = '"""Gates in the order torch.nn.LSTMCell uses."""\nx = 1  # unlike nn.GRU\n'
    assert not BUILT_IN_RNN.search(code_without_comments_and_strings(source))


def test_no_built_in_rnn_modules_outside_the_benchmark():
    files = scanned_files()
    assert REPO / "hw3core" / "rnn_cells.py" in files
    offenders = []
    for path in files:
        code = code_without_comments_and_strings(path.read_text(encoding="utf-8"))
        offenders += [f"{path.relative_to(REPO)}: {m.group(0)!r}" for m in BUILT_IN_RNN.finditer(code)]
    assert offenders == []


@CELL_CLASSES
def test_sequence_computes_only_the_gradients_asked_for(cell_cls):
    """The backward pass skips the gradients of inputs that need none (a frozen cell, inputs that are
    data), and those it gives are the ones it gives when everything needs a gradient."""
    cell = make_cell(cell_cls)
    xs = torch.randn(5, 3, 4, dtype=torch.double)
    x = xs.clone().requires_grad_()
    hs, _ = cell.sequence(x)
    grad_x, *grad_weights = torch.autograd.grad(hs.sum(), [x, *cell.parameters()])

    hs, _ = cell.sequence(xs)  # data: only the weights need gradients
    for alone, together in zip(torch.autograd.grad(hs.sum(), list(cell.parameters())), grad_weights, strict=True):
        assert_numerically_close(alone, together)
    cell.requires_grad_(False)  # frozen: only the inputs do
    hs, _ = cell.sequence(x)
    assert_numerically_close(torch.autograd.grad(hs.sum(), [x])[0], grad_x)


@CELL_CLASSES
def test_sequence_takes_a_transposed_input(cell_cls):
    """A batch-first tensor transposed to (T, B, I) is not contiguous; its gradient lands in its own layout."""
    cell = make_cell(cell_cls)
    batch_first = torch.randn(3, 6, 4, dtype=torch.double, requires_grad=True)
    hs, _ = cell.sequence(batch_first.transpose(0, 1))
    grad_x, *grad_weights = torch.autograd.grad(hs.pow(2).sum(), [batch_first, *cell.parameters()])
    steps_first = batch_first.detach().transpose(0, 1).contiguous().requires_grad_()
    hs_contiguous, _ = cell.sequence(steps_first)
    expected = torch.autograd.grad(hs_contiguous.pow(2).sum(), [steps_first, *cell.parameters()])
    assert_numerically_close(hs, hs_contiguous)
    assert_numerically_close(grad_x, expected[0].transpose(0, 1))
    for got, want in zip(grad_weights, expected[1:], strict=True):
        assert_numerically_close(got, want)
