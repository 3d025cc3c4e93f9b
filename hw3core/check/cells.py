"""A student's recurrent cell, read from its weights and converted exactly into this project's layout.

The starter's GRUCell keeps one (hidden, hidden + input) matrix per gate, multiplying ``[h, x]``
(h first), with one bias each: ``W_z, b_z``, ``W_r, b_r`` and the candidate's ``W, b`` (over
``[r * h, x]``). Students write their LSTMCell the same way: ``W_f, W_i, W_o`` and ``W_c`` or
``W_g``. Our cells (``hw3core.rnn_cells``) stack the gates instead: ``weight_ih`` (G*H, I),
``weight_hh`` (G*H, H) and one ``bias`` (G*H) added to the input's projection, in the order
z, r, h̃ (GRU) and i, f, g, o (LSTM). Each gate's pre-activation is W[:, :H] h + W[:, H:] x + b in
both, so splitting each matrix at column H and stacking the pieces computes the same function.
Some layouts compute different functions with the same shapes: gates over ``[x, h]`` instead of ``[h, x]``,
or the gates stacked in one ``nn.Linear`` in an order of the student's choosing. Each way of reading such a
layout is a ``Reading`` (its conversion into ours); the weights cannot tell them apart, the student's forward
can (``hw3core.check.cell_forward``), and without one the report asks. A layout whose gates cannot be told
from their names at all is not converted: nothing is guessed.
"""

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

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


Converter = Callable[[dict[str, Tensor]], dict[str, Tensor]]  # the student's tensors -> ours (differentiable)


@dataclass
class Reading:
    """One way to read a layout: its name in words, and the conversion of the student's tensors into ours."""

    name: str
    convert: Converter


@dataclass
class CellLayout:
    """What a cell's weights say: its class, sizes, whether it has biases, and our stacked weights
    (None where the layout cannot be converted: ``why`` says why). ``readings``: every way the layout can be
    read (the first is ``stacked``'s); more than one where the weights cannot tell which is meant."""

    cell: str | None
    hidden_size: int | None
    input_size: int | None
    bias: bool
    stacked: dict[str, Tensor] | None
    described: str
    why: str | None = None
    readings: list[Reading] = field(default_factory=list)
    settled: str | None = None  # why one reading stands without asking (the starter's own GRUCell: [h, x])

    def read_as(self, tensors: dict[str, Tensor], name: str) -> "CellLayout":
        """This layout with the reading called ``name`` as its stacked weights."""
        reading = next(r for r in self.readings if r.name == name)
        return CellLayout(self.cell, self.hidden_size, self.input_size, self.bias, reading.convert(tensors),
                          self.described, self.why, [reading], f"read as {name}")

    @property
    def ambiguous(self) -> bool:
        return len(self.readings) > 1 and self.settled is None

    def parameters_at(self, input_size: int, hidden_size: int, bias: bool) -> int | None:
        """count_parameters of this layout's gates at other sizes (the assignment's 128, 100, bias=True)."""
        if self.cell is None:
            return None
        gates = CELL_GATES[self.cell]
        return gates * hidden_size * (hidden_size + input_size) + (gates * hidden_size if bias else 0)


def read_cell(tensors: dict[str, Tensor], input_size: int | None) -> CellLayout:
    """``tensors``: the cell's weights, named relative to the cell (``W_z``, ``b_z``, ``W_z.weight``,
    ``forget_gate.weight``, one stacked ``nn.Linear``, or ours: ``weight_ih``...); ``input_size``: what the
    embedding hands it (None for a cell alone: read from the shapes)."""
    names = sorted(tensors)
    if set(names) <= set(OURS) and {"weight_ih", "weight_hh"} <= set(names):
        return _ours(tensors, input_size)
    gates: dict[str, dict[str, str]] = {"W": {}, "b": {}}  # kind -> the student's gate letter -> the tensor's name
    for name in tensors:
        read = _kind_and_gate(name.split("."))
        if read is None:
            return _not_per_gate(tensors, input_size)
        kind, gate = read
        gates[kind][gate] = name
    cell = next((cell for cell, aliases in GATE_NAMES.items() if len(gates["W"]) == CELL_GATES[cell]
                 and sorted(aliases[g] for g in gates["W"] if g in aliases) == sorted(GATE_ORDER[cell])), None)
    if cell is None:
        return _not_per_gate(tensors, input_size)
    aliases = GATE_NAMES[cell]
    weights = {aliases[g]: name for g, name in gates["W"].items()}
    biases = {aliases.get(g): name for g, name in gates["b"].items()}
    shapes = {tuple(tensors[name].shape) for name in weights.values()}
    described = (f"{len(weights)} gates ({', '.join('W_' + g if g else 'W' for g in gates['W'])}), each "
                 f"{' / '.join('×'.join(map(str, s)) for s in sorted(shapes))}"
                 + (", with biases" if biases else ", no biases"))
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        return CellLayout(cell, None, None, bool(biases), None, described,
                          "its gates' matrices are not all one (hidden, hidden + input) shape")
    hidden, columns = next(iter(shapes))
    if input_size is None:
        input_size = columns - hidden
    if columns != hidden + input_size or input_size < 1:
        peephole = ("; 2 × hidden + input, as if the gates also read the cell state (peephole connections), which "
                    "the assignment's cell does not" if cell == "LSTMCell" and columns == 2 * hidden + input_size else "")
        return CellLayout(cell, hidden, columns - hidden, bool(biases), None, described,
                          f"each matrix has {columns} columns, but [h, x] has {hidden} + {input_size} = "
                          f"{hidden + input_size} (hidden size + the embedding's size){peephole}")
    if biases and (set(biases) != set(weights) or any(tuple(tensors[b].shape) != (hidden,) for b in biases.values())):
        return CellLayout(cell, hidden, input_size, True, None, described,
                          f"its biases ({', '.join(sorted('b_' + g if g else 'b' for g in gates['b']))}) are not one "
                          f"({hidden},) vector per gate")
    readings = [Reading(f"gates over {inputs}", _per_gate(cell, weights, biases, hidden, input_size, inputs))
                for inputs in ("[h, x]", "[x, h]")]
    # The starter's GRUCell is given, not written: it multiplies [h, x], and a file of its weights is read so.
    settled = "the starter's GRUCell multiplies [h, x]" if cell == "GRUCell" and "" in gates["W"] else None
    return CellLayout(cell, hidden, input_size, bool(biases), readings[0].convert(tensors), described,
                      readings=readings, settled=settled)


def _not_per_gate(tensors: dict[str, Tensor], input_size: int | None) -> CellLayout:
    """A layout whose names do not say its gates: a stacked LSTM if the shapes fit one (never a built-in RNN
    module's weights, which the assignment forbids), else the report of what the names should be."""
    names = sorted(tensors)
    built_in = any(name.startswith(BUILT_IN_PREFIX) for name in names)
    return (None if built_in else _stacked(tensors, input_size)) or _unknown(names, input_size)


def _per_gate(cell: str, weights: dict[str, str], biases: dict[str, str], hidden: int, input_size: int,
              inputs: str) -> Converter:
    """A matrix (and a bias) per gate over ``inputs``, '[h, x]' or '[x, h]', stacked in our gates' order."""
    order = GATE_ORDER[cell]

    def convert(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        def h_and_x(gate: str) -> tuple[Tensor, Tensor]:
            matrix = tensors[weights[gate]]
            return (matrix[:, :hidden], matrix[:, hidden:]) if inputs == "[h, x]" else \
                (matrix[:, input_size:], matrix[:, :input_size])

        parts = [h_and_x(gate) for gate in order]
        stacked = {"weight_ih": torch.cat([x for _, x in parts]), "weight_hh": torch.cat([h for h, _ in parts])}
        if biases:
            stacked["bias"] = torch.cat([tensors[biases[gate]] for gate in order])
        return stacked

    return convert


def _stacked(tensors: dict[str, Tensor], input_size: int | None) -> CellLayout | None:
    """An LSTM whose gates are stacked in one matrix over [h, x] (or [x, h]), or in two (one for x, one for h),
    with a bias or two (added: they are one bias in the function): read in every order of its gates, since
    the shapes say nothing of which block is which gate. None where the tensors are not such a layout."""
    matrices = {name: t for name, t in tensors.items() if t.ndim == 2}
    vectors = {name: t for name, t in tensors.items() if t.ndim == 1}
    if len(matrices) + len(vectors) != len(tensors) or not 1 <= len(matrices) <= 2 or len(vectors) > 2:
        return None
    rows = {t.shape[0] for t in matrices.values()}
    if len(rows) != 1 or any(tuple(v.shape) != (next(iter(rows)),) for v in vectors.values()) or next(iter(rows)) % 4:
        return None
    hidden = next(iter(rows)) // 4
    gate_names = GATE_ORDER["LSTMCell"]
    bias_names = sorted(vectors)
    layouts: list[tuple[str, Callable[[dict[str, Tensor]], tuple[Tensor, Tensor]]]] = []  # (how, -> (ih, hh))
    if len(matrices) == 1:
        (name, matrix), = matrices.items()
        found_input = matrix.shape[1] - hidden
        if found_input < 1 or (input_size is not None and found_input != input_size):
            return None
        input_size = found_input
        layouts = [("one matrix over [h, x]", lambda t: (t[name][:, hidden:], t[name][:, :hidden])),
                   ("one matrix over [x, h]", lambda t: (t[name][:, :input_size], t[name][:, input_size:]))]
        described = f"one stacked matrix {'×'.join(map(str, matrix.shape))} ({name})"
    else:
        (a, first), (b, second) = sorted(matrices.items())
        columns = (first.shape[1], second.shape[1])
        if hidden not in columns:
            return None
        found_input = columns[1] if columns[0] == hidden else columns[0]
        if input_size is not None and found_input != input_size:
            return None
        input_size = found_input
        if columns[0] == hidden:
            layouts.append((f"{b} for x and {a} for h", lambda t: (t[b], t[a])))
        if columns[1] == hidden:
            layouts.append((f"{a} for x and {b} for h", lambda t: (t[a], t[b])))
        described = f"two stacked matrices, {a} {'×'.join(map(str, first.shape))} and {b} {'×'.join(map(str, second.shape))}"
    described += ", " + (f"{len(vectors)} biases (added)" if len(vectors) == 2 else "a bias" if vectors else "no bias")

    def reading(how: str, split, order: tuple[str, ...]) -> Reading:
        def convert(t: dict[str, Tensor]) -> dict[str, Tensor]:
            weight_ih, weight_hh = split(t)
            blocks = {gate: slice(k * hidden, (k + 1) * hidden) for k, gate in enumerate(order)}
            stacked = {"weight_ih": torch.cat([weight_ih[blocks[g]] for g in gate_names]),
                       "weight_hh": torch.cat([weight_hh[blocks[g]] for g in gate_names])}
            if bias_names:
                bias = sum(t[name] for name in bias_names)
                stacked["bias"] = torch.cat([bias[blocks[g]] for g in gate_names])
            return stacked

        return Reading(f"{how}, gates in the order {', '.join(order)}", convert)

    readings = [reading(how, split, order) for order in itertools.permutations(gate_names) for how, split in layouts]
    return CellLayout("LSTMCell", hidden, input_size, bool(vectors), readings[0].convert(tensors), described,
                      readings=readings)


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
    if input_size is None and weight_ih.ndim == 2:
        input_size = weight_ih.shape[1]
    if cell is None or tuple(weight_hh.shape) != (rows, hidden) or weight_ih.shape[1] != input_size:
        return CellLayout(cell, hidden or None, input_size, bias, None, described,
                          "its stacked matrices do not fit one GRU or LSTM of this embedding's size")
    return CellLayout(cell, hidden, input_size, bias, dict(tensors), described,
                      readings=[Reading("this project's layout", dict)])


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
