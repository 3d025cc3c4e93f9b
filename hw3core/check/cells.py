"""A student's recurrent cell, read from its weights and converted exactly into this project's layout.

The starter's GRUCell keeps one (hidden, hidden + input) matrix per gate, multiplying ``[h, x]``
(h first), with one bias each: ``W_z, b_z``, ``W_r, b_r`` and the candidate's ``W, b`` (over
``[r * h, x]``). Students write their LSTMCell the same way: ``W_f, W_i, W_o`` and ``W_c`` or
``W_g``. Our cells (``hw3core.rnn_cells``) stack the gates instead: ``weight_ih`` (G*H, I),
``weight_hh`` (G*H, H) and one ``bias`` (G*H) added to the input's projection, in the order
z, r, h̃ (GRU) and i, f, g, o (LSTM). Each gate's pre-activation is W[:, :H] h + W[:, H:] x + b in
both, so splitting each matrix at column H and stacking the pieces computes the same function.
A layout whose gates cannot be told from their names is not converted: nothing is guessed.
"""

import re
from dataclasses import dataclass

import torch
from torch import Tensor

from hw3core.check.tables import CELL_GATES

# Our stacking order, and the names a student's gate can have for each of our gates.
GATE_ORDER = {"GRUCell": ("z", "r", "n"), "LSTMCell": ("i", "f", "g", "o")}
GATE_NAMES = {
    "GRUCell": {"z": "z", "r": "r", "": "n", "h": "n", "n": "n", "c": "n"},
    "LSTMCell": {"i": "i", "f": "f", "o": "o", "c": "g", "g": "g"},
}
STARTER_NAMES = {"GRUCell": "W_z, W_r and W (biases b_z, b_r, b)",
                 "LSTMCell": "W_f, W_i, W_o and W_c or W_g (biases b_f, b_i, b_o, b_c)"}
OURS = ("weight_ih", "weight_hh", "bias")
BUILT_IN_PREFIX = "weight_ih_l"  # torch.nn.GRU / nn.LSTM: weight_ih_l0, weight_hh_l0, bias_ih_l0...
# A gate named in words (an nn.Linear each: ``forget_gate.weight``); the candidate is h̃ (GRU) or g (LSTM).
WORD_GATES = {"forget": "f", "input": "i", "output": "o", "cell": "c", "candidate": "c", "update": "z", "reset": "r"}
_WORD_GATE = re.compile(rf"^(?P<word>{'|'.join(WORD_GATES)})(?:_gate)?$", re.IGNORECASE)
_GATE = re.compile(r"^(?P<kind>[Wb])(?:_?(?P<gate>[a-z]))?$", re.IGNORECASE)


@dataclass
class CellLayout:
    """What a cell's weights say: its class, sizes, whether it has biases, and our stacked weights
    (None where the layout cannot be converted: ``why`` says why)."""

    cell: str | None
    hidden_size: int | None
    input_size: int | None
    bias: bool
    stacked: dict[str, Tensor] | None
    described: str
    why: str | None = None

    def parameters_at(self, input_size: int, hidden_size: int, bias: bool) -> int | None:
        """count_parameters of this layout's gates at other sizes (the assignment's 128, 100, bias=True)."""
        if self.cell is None:
            return None
        gates = CELL_GATES[self.cell]
        return gates * hidden_size * (hidden_size + input_size) + (gates * hidden_size if bias else 0)


def read_cell(tensors: dict[str, Tensor], input_size: int) -> CellLayout:
    """``tensors``: the cell's weights, named relative to the cell (``W_z``, ``b_z``, ``W_z.weight``,
    or ours: ``weight_ih``...); ``input_size``: what the embedding hands it."""
    names = sorted(tensors)
    if set(names) <= set(OURS) and {"weight_ih", "weight_hh"} <= set(names):
        return _ours(tensors, input_size)
    gates: dict[str, dict[str, Tensor]] = {"W": {}, "b": {}}
    for name, tensor in tensors.items():
        read = _kind_and_gate(name.split("."))
        if read is None:
            return _unknown(names, input_size)
        kind, gate = read
        gates[kind][gate] = tensor
    cell = next((cell for cell, aliases in GATE_NAMES.items() if len(gates["W"]) == CELL_GATES[cell]
                 and sorted(aliases[g] for g in gates["W"] if g in aliases) == sorted(GATE_ORDER[cell])), None)
    if cell is None:
        return _unknown(names, input_size)
    aliases = GATE_NAMES[cell]
    weights = {aliases[g]: w for g, w in gates["W"].items()}
    biases = {aliases.get(g): b for g, b in gates["b"].items()}
    shapes = {tuple(w.shape) for w in weights.values()}
    described = (f"{len(weights)} gates ({', '.join('W_' + g if g else 'W' for g in gates['W'])}), each "
                 f"{' / '.join('×'.join(map(str, s)) for s in sorted(shapes))}"
                 + (", with biases" if biases else ", no biases"))
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        return CellLayout(cell, None, None, bool(biases), None, described,
                          "its gates' matrices are not all one (hidden, hidden + input) shape")
    hidden, columns = next(iter(shapes))
    if columns != hidden + input_size:
        peephole = ("; 2 × hidden + input, as if the gates also read the cell state (peephole connections), which "
                    "the assignment's cell does not" if cell == "LSTMCell" and columns == 2 * hidden + input_size else "")
        return CellLayout(cell, hidden, columns - hidden, bool(biases), None, described,
                          f"each matrix has {columns} columns, but [h, x] has {hidden} + {input_size} = "
                          f"{hidden + input_size} (hidden size + the embedding's size){peephole}")
    if biases and (set(biases) != set(weights) or any(tuple(b.shape) != (hidden,) for b in biases.values())):
        return CellLayout(cell, hidden, input_size, True, None, described,
                          f"its biases ({', '.join(sorted('b_' + g if g else 'b' for g in gates['b']))}) are not one "
                          f"({hidden},) vector per gate")
    order = GATE_ORDER[cell]
    stacked = {
        "weight_ih": torch.cat([weights[g][:, hidden:] for g in order]),  # the x part: columns H..
        "weight_hh": torch.cat([weights[g][:, :hidden] for g in order]),  # the h part: columns ..H
    }
    if biases:
        stacked["bias"] = torch.cat([biases[g] for g in order])
    return CellLayout(cell, hidden, input_size, bool(biases), stacked, described)


def _kind_and_gate(parts: list[str]) -> tuple[str, str] | None:
    """('W' or 'b', the gate's letter) of a name split at its dots: ``W_z``, ``b_z``, ``W_z.weight`` (an
    nn.Linear per gate), or a gate named in words, ``forget_gate.weight``; None for any other name."""
    if len(parts) > 2 or (len(parts) == 2 and parts[1] not in ("weight", "bias")):
        return None
    found = _GATE.match(parts[0])
    if len(parts) == 1:
        return None if found is None else ("W" if found["kind"].upper() == "W" else "b", (found["gate"] or "").lower())
    kind = "W" if parts[1] == "weight" else "b"
    if found is not None:
        return kind, (found["gate"] or "").lower()
    word = _WORD_GATE.match(parts[0])
    return None if word is None else (kind, WORD_GATES[word["word"].lower()])


def _ours(tensors: dict[str, Tensor], input_size: int) -> CellLayout:
    weight_ih, weight_hh = tensors["weight_ih"], tensors["weight_hh"]
    hidden = weight_hh.shape[1] if weight_hh.ndim == 2 else 0
    rows = weight_ih.shape[0]
    cell = next((cell for cell, gates in CELL_GATES.items() if hidden and rows == gates * hidden), None)
    bias = "bias" in tensors
    described = f"stacked (this project's layout): weight_ih {list(weight_ih.shape)}, weight_hh {list(weight_hh.shape)}"
    if cell is None or tuple(weight_hh.shape) != (rows, hidden) or weight_ih.shape[1] != input_size:
        return CellLayout(cell, hidden or None, input_size, bias, None, described,
                          "its stacked matrices do not fit one GRU or LSTM of this embedding's size")
    return CellLayout(cell, hidden, input_size, bias, dict(tensors), described)


def _unknown(names: list[str], input_size: int) -> CellLayout:
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    if any(name.startswith(BUILT_IN_PREFIX) for name in names):
        return CellLayout(None, None, input_size, False, None, f"tensors {shown}",
                          f"its weights are named {shown}, as torch.nn.GRU or nn.LSTM names them: the assignment "
                          f"asks for your own cell, not a built-in RNN module")
    return CellLayout(None, None, input_size, False, None, f"tensors {shown}",
                      f"its weights are named {shown}: which gate each one is cannot be read from the names (the "
                      f"starter's GRUCell names them {STARTER_NAMES['GRUCell']}; an LSTM, "
                      f"{STARTER_NAMES['LSTMCell']})")
