"""Part C: the recurrent cells, written from scratch (no built-in RNN modules).

Each cell has two ways in:
- ``cell(x, prev_state)``: one time step, the assignment's signature, plain autograd. It is
  ``cell.recur(cell.project_inputs(x), prev_state)``, and generation calls ``recur`` directly.
- ``cell.sequence(xs, state)``: a whole sequence at once, the path models train on. The input
  projections of all steps are one matrix product, each step adds one product with the hidden
  state, and backpropagation through time is written by hand (``torch.autograd.Function``), so
  the per-step autograd bookkeeping that makes naive Python RNNs slow never happens. The backward
  pass adds each step's share of the weight gradients while that step's gate gradients are in
  cache, so it never writes the whole sequence's gate gradients to memory.
Both paths compute the same function; tests hold them equal, values and gradients.
"""

import math

import torch
from torch import Tensor, nn


class RecurrentCell(nn.Module):
    """Shared parameters and helpers: ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias`` (G*H)."""

    num_gates: int

    def __init__(self, input_size: int, hidden_size: int, bias: bool = False):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        gates = self.num_gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(gates, input_size))
        self.weight_hh = nn.Parameter(torch.empty(gates, hidden_size))
        self.bias = nn.Parameter(torch.empty(gates)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def count_parameters(self) -> int:
        total = sum(p.numel() for p in self.parameters() if p.requires_grad)
        print(f"Total Parameters: {total}")
        return total

    def project_inputs(self, xs: Tensor) -> Tensor:
        return nn.functional.linear(xs, self.weight_ih, self.bias)

    def zeros(self, batch_size: int, like: Tensor) -> Tensor:
        return like.new_zeros(batch_size, self.hidden_size)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias is not None}"


class GRUCell(RecurrentCell):
    """The assignment's GRU: z = σ(W_z[h,x] + b_z), r = σ(W_r[h,x] + b_r),
    h̃ = tanh(W[r*h, x] + b), h' = (1 - z) * h + z * h̃. Gates stacked in the order z, r, h̃."""

    num_gates = 3

    def forward(self, x: Tensor, prev_state: Tensor | None = None) -> Tensor:
        h = self.zeros(x.shape[0], x) if prev_state is None else prev_state
        return self.recur(self.project_inputs(x), h)

    def recur(self, projected: Tensor, h: Tensor) -> Tensor:
        """One step from the input's projection (B, 3H), ``project_inputs(x)``, and the state h."""
        H = self.hidden_size
        z, r = torch.sigmoid(torch.addmm(projected[:, : 2 * H], h, self.weight_hh[: 2 * H].t())).split(H, dim=1)
        candidate = torch.tanh(torch.addmm(projected[:, 2 * H :], r * h, self.weight_hh[2 * H :].t()))
        return torch.addcmul(h, z, candidate - h)  # (1 - z) * h + z * candidate

    @staticmethod
    def output(state: Tensor) -> Tensor:
        """The hidden state h, what the layers above read."""
        return state

    def sequence(self, xs: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """xs (T, B, I) -> (hidden states (T, B, H), last state (B, H))."""
        h0 = self.zeros(xs.shape[1], xs) if state is None else state
        hs = _GRUSequence.apply(*_float32(xs, self.weight_ih, self.bias, self.weight_hh, h0))
        return hs, hs[-1]


class LSTMCell(RecurrentCell):
    """The classical LSTM (input, forget and output gates, cell state c and hidden state h).
    Gates stacked in the order i, f, g, o, as torch.nn.LSTMCell stacks them."""

    num_gates = 4

    def forward(self, x: Tensor, prev_state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        if prev_state is None:
            prev_state = (self.zeros(x.shape[0], x), self.zeros(x.shape[0], x))
        return self.recur(self.project_inputs(x), prev_state)

    def recur(self, projected: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """One step from the input's projection (B, 4H), ``project_inputs(x)``, and the state (h, c)."""
        h, c = state
        gates = torch.addmm(projected, h, self.weight_hh.t())
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c

    @staticmethod
    def output(state: tuple[Tensor, Tensor]) -> Tensor:
        """The hidden state h, what the layers above read (c stays inside the cell)."""
        return state[0]

    def sequence(
        self, xs: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """xs (T, B, I) -> (hidden states (T, B, H), last state (h, c))."""
        if state is None:
            state = (self.zeros(xs.shape[1], xs), self.zeros(xs.shape[1], xs))
        hs, c_last = _LSTMSequence.apply(*_float32(xs, self.weight_ih, self.bias, self.weight_hh, *state))
        return hs, (hs[-1], c_last)


def _float32(*tensors: Tensor) -> tuple[Tensor, ...]:
    """The sequences run in float32 (or float64) whatever autocast does around them, on any device:
    a state carried through hundreds of steps in bfloat16 would lose its small changes, and their
    in-place ``out=`` buffers need one dtype (the input projections too, as they are written over by
    the gates). Autograd casts the gradients back to each input's dtype. ``None`` (no bias) passes."""
    return tuple(
        tensor.float() if tensor is not None and tensor.dtype in (torch.float16, torch.bfloat16) else tensor
        for tensor in tensors
    )


def _without_autocast(method):
    """Runs a Function's forward or backward with autocast off, on the device of its tensors."""

    def run(ctx, first: Tensor, *rest):
        with torch.autocast(first.device.type, enabled=False):
            return method(ctx, first, *rest)

    return run


class _InputGradients:
    """The gradients of the input projection's inputs (``linear(xs, weight_ih, bias)``), added up in the
    backward pass one step at a time from that step's gate gradients (B, G) while they are in cache: no
    (T, B, G) buffer of gate gradients is written, and the memory a fresh one costs (a page fault per
    4 kB on first touch) is never asked for."""

    def __init__(self, ctx, xs: Tensor, weight_ih: Tensor, bias: Tensor | None):
        self.xs, self.weight_ih = xs, weight_ih
        wanted_xs, wanted_weight, wanted_bias = ctx.needs_input_grad[:3]
        self.grad_xs = torch.empty_like(xs) if wanted_xs else None
        self.grad_weight_ih = torch.zeros_like(weight_ih) if wanted_weight else None
        # the bias's gradient, summed over the steps row by row and over the batch once at the end
        wanted_bias = bias is not None and wanted_bias
        self.grad_bias_rows = xs.new_zeros(xs.shape[1], weight_ih.shape[0]) if wanted_bias else None

    def add(self, t: int, grad_pre: Tensor) -> None:
        if self.grad_xs is not None:
            torch.mm(grad_pre, self.weight_ih, out=self.grad_xs[t])
        if self.grad_weight_ih is not None:
            self.grad_weight_ih.addmm_(grad_pre.t(), self.xs[t])
        if self.grad_bias_rows is not None:
            self.grad_bias_rows.add_(grad_pre)

    def result(self) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        grad_bias = None if self.grad_bias_rows is None else self.grad_bias_rows.sum(0)
        return self.grad_xs, self.grad_weight_ih, grad_bias


class _GRUSequence(torch.autograd.Function):
    """The GRU over a whole sequence: the input projections, the recurrence, and hand-written BPTT."""

    @staticmethod
    @_without_autocast
    def forward(ctx, xs: Tensor, weight_ih: Tensor, bias: Tensor | None, weight_hh: Tensor, h0: Tensor) -> Tensor:
        T, B, _ = xs.shape
        H = h0.shape[1]
        w_zr, w_n = weight_hh[: 2 * H].t(), weight_hh[2 * H :].t()
        # The input projections of all steps, one product into a fresh buffer; each step's becomes its z, r, h̃.
        gates = nn.functional.linear(xs, weight_ih, bias)
        hs = xs.new_empty(T + 1, B, H)  # hs[0] = h0, hs[t + 1] = state after step t
        reset_hidden = xs.new_empty(T, B, H)  # r * h, the input of the candidate's product
        hs[0] = h0
        for t in range(T):
            h = hs[t]
            zr = gates[t, :, : 2 * H].addmm_(h, w_zr).sigmoid_()
            z, r = zr[:, :H], zr[:, H:]
            rh = torch.mul(r, h, out=reset_hidden[t])
            n = gates[t, :, 2 * H :].addmm_(rh, w_n).tanh_()
            torch.addcmul(h, z, n - h, out=hs[t + 1])  # (1 - z) * h + z * n
        ctx.save_for_backward(xs, weight_ih, bias, weight_hh, hs, gates, reset_hidden)
        return hs[1:]

    @staticmethod
    @torch.autograd.function.once_differentiable
    @_without_autocast
    def backward(ctx, grad_hs: Tensor):
        xs, weight_ih, bias, weight_hh, hs, gates, reset_hidden = ctx.saved_tensors
        T, B, H = grad_hs.shape
        w_zr, w_n = weight_hh[: 2 * H], weight_hh[2 * H :]
        # Each step's factors and weight gradients are computed in that step, on a few (B, H) blocks that
        # stay in cache: for the whole sequence at once they would be a dozen passes over (T, B, H) tensors
        # in memory, and a (T, B, 3H) buffer of gate gradients.
        # Each ``addcmul(x, y, y, value=-1)`` is one of the derivatives x - y²: σ' = a - a², tanh' = 1 - a².
        inputs = _InputGradients(ctx, xs, weight_ih, bias)
        grad_weight_hh = torch.zeros_like(weight_hh)
        grad_w_zr, grad_w_n = grad_weight_hh[: 2 * H], grad_weight_hh[2 * H :]
        grad_pre = gates.new_empty(B, 3 * H)  # the gradients of the gates before their nonlinearities
        grad_gates = gates.new_empty(B, 3 * H)  # ... and after them
        slopes = gates.new_empty(B, 3 * H)  # the nonlinearities' derivatives
        ones = gates.new_ones(B, H)
        d_z, d_r, d_n = grad_gates.split(H, dim=1)
        grad_zr, grad_n = grad_pre[:, : 2 * H], grad_pre[:, 2 * H :]
        dh = grad_hs[T - 1].clone()
        for t in reversed(range(T)):
            h = hs[t]
            z, r, n = gates[t].split(H, dim=1)
            torch.addcmul(gates[t], gates[t], gates[t], value=-1, out=slopes)  # σ' of z and r (n's, replaced)
            torch.addcmul(ones, n, n, value=-1, out=slopes[:, 2 * H :])
            torch.sub(n, h, out=d_z).mul_(dh)  # h' = h + z (n - h)
            torch.mul(dh, z, out=d_n)
            d_rh = torch.mul(d_n, slopes[:, 2 * H :], out=grad_n) @ w_n  # the gradient of r * h, the candidate's input
            torch.mul(d_rh, h, out=d_r)
            torch.mul(grad_gates[:, : 2 * H], slopes[:, : 2 * H], out=grad_zr)
            grad_w_zr.addmm_(grad_zr.t(), h)
            grad_w_n.addmm_(grad_n.t(), reset_hidden[t])
            inputs.add(t, grad_pre)
            # dh of the step before: through (1 - z) h, through r * h, and through both gates' products
            dh = torch.addcmul(dh.sub_(d_n), d_rh, r)
            dh = torch.addmm(dh, grad_zr, w_zr).add_(grad_hs[t - 1]) if t else torch.addmm(dh, grad_zr, w_zr)
        return *inputs.result(), grad_weight_hh, dh


class _LSTMSequence(torch.autograd.Function):
    """The LSTM over a whole sequence: the input projections, the recurrence, and hand-written BPTT."""

    @staticmethod
    @_without_autocast
    def forward(ctx, xs: Tensor, weight_ih: Tensor, bias: Tensor | None, weight_hh: Tensor, h0: Tensor, c0: Tensor):
        T, B, _ = xs.shape
        H = h0.shape[1]
        w = weight_hh.t()
        gates = nn.functional.linear(xs, weight_ih, bias)  # as in the GRU: each step's becomes its i, f, g, o
        hs = xs.new_empty(T + 1, B, H)
        cs = xs.new_empty(T + 1, B, H)
        tanh_cs = xs.new_empty(T, B, H)  # tanh(c) after each step, kept for the backward pass
        hs[0], cs[0] = h0, c0
        for t in range(T):
            i, f, g, o = gates[t].addmm_(hs[t], w).split(H, dim=1)
            gates[t, :, : 2 * H].sigmoid_()
            g.tanh_()
            o.sigmoid_()
            c = torch.mul(f, cs[t], out=cs[t + 1]).addcmul_(i, g)
            torch.mul(o, torch.tanh(c, out=tanh_cs[t]), out=hs[t + 1])
        ctx.save_for_backward(xs, weight_ih, bias, weight_hh, hs, cs, tanh_cs, gates)
        return hs[1:], cs[T]

    @staticmethod
    @torch.autograd.function.once_differentiable
    @_without_autocast
    def backward(ctx, grad_hs: Tensor, grad_c_last: Tensor | None):
        xs, weight_ih, bias, weight_hh, hs, cs, tanh_cs, gates = ctx.saved_tensors
        T, B, H = grad_hs.shape
        # As in the GRU: each step's factors and weight gradients are computed in that step, on blocks
        # that stay in cache.
        inputs = _InputGradients(ctx, xs, weight_ih, bias)
        grad_weight_hh = torch.zeros_like(weight_hh)
        grad_pre = gates.new_empty(B, 4 * H)  # the gradients of the gates before their nonlinearities
        grad_gates = gates.new_empty(B, 4 * H)  # ... and after them
        slopes = gates.new_empty(B, 4 * H)  # the nonlinearities' derivatives
        for_c, dh_o = gates.new_empty(B, H), gates.new_empty(B, H)
        ones = gates.new_ones(B, H)
        d_i, d_f, d_g, d_o = grad_gates.split(H, dim=1)
        dh = grad_hs[T - 1].clone()
        dc = torch.zeros_like(cs[0]) if grad_c_last is None else grad_c_last.clone()
        for t in reversed(range(T)):
            i, f, g, o = gates[t].split(H, dim=1)
            tanh_c = tanh_cs[t]
            torch.mul(dh, tanh_c, out=d_o)
            torch.addcmul(ones, tanh_c, tanh_c, value=-1, out=for_c)
            dc.addcmul_(torch.mul(dh, o, out=dh_o), for_c)  # h = o tanh(c)
            torch.mul(dc, g, out=d_i)
            torch.mul(dc, cs[t], out=d_f)
            torch.mul(dc, i, out=d_g)
            torch.addcmul(gates[t], gates[t], gates[t], value=-1, out=slopes)  # σ' of i, f, o (and g, replaced)
            torch.addcmul(ones, g, g, value=-1, out=slopes[:, 2 * H : 3 * H])
            dc.mul_(f)
            torch.mul(grad_gates, slopes, out=grad_pre)
            grad_weight_hh.addmm_(grad_pre.t(), hs[t])
            inputs.add(t, grad_pre)
            dh = torch.addmm(grad_hs[t - 1], grad_pre, weight_hh) if t else grad_pre @ weight_hh
        return *inputs.result(), grad_weight_hh, dh, dc


CELLS = {"gru": GRUCell, "lstm": LSTMCell}
