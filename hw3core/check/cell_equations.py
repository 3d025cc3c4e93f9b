"""The assignment's cells as equations over this project's stacked weights, and the mistakes students make in
them, each declared as one turned knob of the same step.

A student's cell is run beside ``STEPS[cell]`` (the equations of ``hw3core.rnn_cells``, written out step by
step so that each term can be changed); when they differ, each mistake of ``MISTAKES[cell]`` is run in its
place, and one that gives the student's outputs is named with its fix.
"""

from dataclasses import dataclass, replace

import torch
from torch import Tensor

ACTIVATIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh}
LSTM_GATES = ("i", "f", "g", "o")  # our stacking order, torch.nn.LSTMCell's
GRU_GATES = ("z", "r", "n")
GATE_WORDS = {"i": "input gate", "f": "forget gate", "g": "candidate (g)", "o": "output gate",
              "z": "update gate z", "r": "reset gate r", "n": "candidate h̃"}


def _blocks(weights: dict[str, Tensor], x: Tensor, h: Tensor, gates: int) -> tuple[Tensor, ...]:
    """Each gate's pre-activation over the input and the state: W_ih x + W_hh h + b, split by gate."""
    projected = x @ weights["weight_ih"].t() + h @ weights["weight_hh"].t()
    if weights.get("bias") is not None:
        projected = projected + weights["bias"]
    return projected.chunk(gates, dim=-1)


@dataclass(frozen=True)
class LSTMStep:
    """c = f ⊙ c_prev + i ⊙ g, h = o ⊙ tanh(c), each gate from W[h, x] + b: the knobs below are its terms."""

    activations: tuple[str, str, str, str] = ("sigmoid", "sigmoid", "tanh", "sigmoid")  # of i, f, g, o
    order: tuple[int, int, int, int] = (0, 1, 2, 3)  # which stacked block each of i, f, g, o reads
    input_gate: bool = True  # c = f c_prev + g without it
    forget_gate: bool = True  # c = c_prev + i g without it
    old_cell: bool = True  # c = i g without it
    output_gate: bool = True  # h = tanh(c) without it
    tanh_of_cell: bool = True  # h = o c without it
    h_from_old_cell: bool = False  # h = o tanh(c_prev)
    returns_c_first: bool = False  # (c, h) in place of (h, c)
    reads_state: bool = True  # every step from a zero state without it

    def __call__(self, weights: dict[str, Tensor], x: Tensor, state) -> tuple[Tensor, Tensor]:
        hidden = weights["weight_hh"].shape[1]
        if state is None or not self.reads_state:
            state = (x.new_zeros(x.shape[0], hidden), x.new_zeros(x.shape[0], hidden))
        h, c_prev = state
        blocks = _blocks(weights, x, h, 4)
        i, f, g, o = (ACTIVATIONS[a](blocks[k]) for a, k in zip(self.activations, self.order, strict=True))
        c = (f * c_prev if self.forget_gate else c_prev) if self.old_cell else torch.zeros_like(c_prev)
        c = c + (i * g if self.input_gate else g)
        squashed = torch.tanh(c_prev if self.h_from_old_cell else c) if self.tanh_of_cell else c
        h = o * squashed if self.output_gate else squashed
        return (c, h) if self.returns_c_first else (h, c)


@dataclass(frozen=True)
class GRUStep:
    """z = σ(W_z[h, x]), r = σ(W_r[h, x]), h̃ = tanh(W[r ⊙ h, x]), h' = (1 - z) ⊙ h + z ⊙ h̃ (the starter's)."""

    order: tuple[int, int, int] = (0, 1, 2)  # which stacked block each of z, r, h̃ reads
    update_swapped: bool = False  # h' = z h + (1 - z) h̃
    reset_after_product: bool = False  # h̃ = tanh(W_x x + r ⊙ (W_h h)), torch.nn.GRUCell's form
    candidate_tanh: bool = True
    reads_state: bool = True

    def __call__(self, weights: dict[str, Tensor], x: Tensor, state) -> Tensor:
        hidden = weights["weight_hh"].shape[1]
        h = x.new_zeros(x.shape[0], hidden) if state is None or not self.reads_state else state
        rows = [slice(k * hidden, (k + 1) * hidden) for k in self.order]
        bias = weights.get("bias")

        def pre(k: int, h_term: Tensor, times_r: Tensor | None = None) -> Tensor:
            from_h = h_term @ weights["weight_hh"][rows[k]].t()
            out = x @ weights["weight_ih"][rows[k]].t() + (from_h if times_r is None else times_r * from_h)
            return out if bias is None else out + bias[rows[k]]

        z, r = torch.sigmoid(pre(0, h)), torch.sigmoid(pre(1, h))
        candidate = pre(2, h, times_r=r) if self.reset_after_product else pre(2, r * h)
        candidate = torch.tanh(candidate) if self.candidate_tanh else candidate
        return z * h + (1 - z) * candidate if self.update_swapped else h + z * (candidate - h)


@dataclass(frozen=True)
class Mistake:
    """A mistake as the step it makes, what it is in words, and the fix."""

    step: LSTMStep | GRUStep
    what: str
    fix: str


def _lstm_mistakes() -> list[Mistake]:
    right = LSTMStep()
    found = []
    for k, gate in enumerate(LSTM_GATES):
        wrong = "sigmoid" if right.activations[k] == "tanh" else "tanh"
        activations = tuple(wrong if j == k else a for j, a in enumerate(right.activations))
        found.append(Mistake(replace(right, activations=activations),
                             f"the {GATE_WORDS[gate]} goes through {wrong}",
                             f"use {right.activations[k]} for the {GATE_WORDS[gate]}"))
    found += [
        Mistake(replace(right, input_gate=False), "no input gate: c = f ⊙ c_prev + g", "c = f ⊙ c_prev + i ⊙ g"),
        Mistake(replace(right, forget_gate=False), "no forget gate: c = c_prev + i ⊙ g", "c = f ⊙ c_prev + i ⊙ g"),
        Mistake(replace(right, old_cell=False), "the old cell state is dropped: c = i ⊙ g",
                "c = f ⊙ c_prev + i ⊙ g"),
        Mistake(replace(right, output_gate=False), "no output gate: h = tanh(c)", "h = o ⊙ tanh(c)"),
        Mistake(replace(right, tanh_of_cell=False), "h = o ⊙ c, without the tanh", "h = o ⊙ tanh(c)"),
        Mistake(replace(right, h_from_old_cell=True), "h is made from the old cell state: h = o ⊙ tanh(c_prev)",
                "compute the new c first, then h = o ⊙ tanh(c) from it"),
        Mistake(replace(right, returns_c_first=True), "the step returns (c, h); the state is (h, c)",
                "return (h, c), as the forward's prev_state reads it"),
        Mistake(replace(right, reads_state=False), "the incoming state is ignored: every step starts from zeros",
                "use prev_state when it is given (zeros only when it is None)"),
    ]
    for a in range(4):  # two gates that use each other's weights
        for b in range(a + 1, 4):
            order = list(range(4))
            order[a], order[b] = b, a
            found.append(Mistake(replace(right, order=tuple(order)),
                                 f"the {GATE_WORDS[LSTM_GATES[a]]} and the {GATE_WORDS[LSTM_GATES[b]]} use each "
                                 f"other's weights (the gates are used in another order than their names say)",
                                 "use each gate's own weights where its name says"))
    return found


def _gru_mistakes() -> list[Mistake]:
    right = GRUStep()
    return [
        Mistake(replace(right, update_swapped=True), "h' = z ⊙ h + (1 - z) ⊙ h̃: z and 1 - z swapped",
                "h' = (1 - z) ⊙ h + z ⊙ h̃, as the starter's GRUCell"),
        Mistake(replace(right, reset_after_product=True), "h̃ = tanh(W_x x + r ⊙ (W_h h)): the reset gate is "
                "applied after the product (torch.nn.GRUCell's form)", "h̃ = tanh(W[r ⊙ h, x] + b)"),
        Mistake(replace(right, candidate_tanh=False), "h̃ without its tanh", "h̃ = tanh(W[r ⊙ h, x] + b)"),
        Mistake(replace(right, order=(1, 0, 2)), "the update and reset gates use each other's weights",
                "z from W_z, r from W_r"),
        Mistake(replace(right, reads_state=False), "the incoming state is ignored: every step starts from zeros",
                "use prev_state when it is given (zeros only when it is None)"),
    ]


STEPS = {"LSTMCell": LSTMStep(), "GRUCell": GRUStep()}
MISTAKES = {"LSTMCell": _lstm_mistakes(), "GRUCell": _gru_mistakes()}
