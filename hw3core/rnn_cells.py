"""Part C: the recurrent cells, written from scratch (no built-in RNN modules).

Each cell has two ways in:
- ``cell(x, prev_state)``: one time step, the assignment's signature, plain autograd. It is
  ``cell.recur(cell.project_inputs(x), prev_state)``, and generation calls ``recur`` directly.
- ``cell.sequence(xs, state)``: a whole sequence at once, the path models train on. The input
  projections of all steps are one matrix product, each step adds one product with the hidden
  state, and backpropagation through time is written by hand (``torch.autograd.Function``), so
  the per-step autograd bookkeeping that makes naive Python RNNs slow never happens. Weight
  gradients are summed over all steps in one product at the end, as cuDNN does.
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
        hs = _GRUSequence.apply(*_float32(self.project_inputs(xs), self.weight_hh, h0))
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
        hs, c_last = _LSTMSequence.apply(*_float32(self.project_inputs(xs), self.weight_hh, *state))
        return hs, (hs[-1], c_last)


def _float32(*tensors: Tensor) -> tuple[Tensor, ...]:
    """The recurrences run in float32 (or float64) whatever autocast does around them, on any device:
    a state carried through hundreds of steps in bfloat16 would lose its small changes, and their
    in-place ``out=`` buffers need one dtype. Autograd casts the gradients back to each input's dtype."""
    return tuple(tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor for tensor in tensors)


def _without_autocast(method):
    """Runs a Function's forward or backward with autocast off, on the device of its tensors."""

    def run(ctx, first: Tensor, *rest):
        with torch.autocast(first.device.type, enabled=False):
            return method(ctx, first, *rest)

    return run


class _GRUSequence(torch.autograd.Function):
    """The GRU recurrence over precomputed input projections, with hand-written BPTT."""

    @staticmethod
    @_without_autocast
    def forward(ctx, projected: Tensor, weight_hh: Tensor, h0: Tensor) -> Tensor:
        T, B, _ = projected.shape
        H = h0.shape[1]
        w_zr, w_n = weight_hh[: 2 * H].t(), weight_hh[2 * H :].t()
        hs = projected.new_empty(T + 1, B, H)  # hs[0] = h0, hs[t + 1] = state after step t
        gates = projected.new_empty(T, B, 3 * H)  # z, r, h̃ after their nonlinearities
        reset_hidden = projected.new_empty(T, B, H)  # r * h, the input of the candidate's product
        hs[0] = h0
        for t in range(T):
            h = hs[t]
            zr = torch.sigmoid(torch.addmm(projected[t, :, : 2 * H], h, w_zr), out=gates[t, :, : 2 * H])
            z, r = zr[:, :H], zr[:, H:]
            rh = torch.mul(r, h, out=reset_hidden[t])
            n = torch.tanh(torch.addmm(projected[t, :, 2 * H :], rh, w_n), out=gates[t, :, 2 * H :])
            torch.addcmul(h, z, n - h, out=hs[t + 1])  # (1 - z) * h + z * n
        ctx.save_for_backward(weight_hh, hs, gates, reset_hidden)
        return hs[1:]

    @staticmethod
    @torch.autograd.function.once_differentiable
    @_without_autocast
    def backward(ctx, grad_hs: Tensor):
        weight_hh, hs, gates, reset_hidden = ctx.saved_tensors
        T, B, H = grad_hs.shape
        w_zr, w_n = weight_hh[: 2 * H], weight_hh[2 * H :]
        # Each step's factors are computed in that step, on a few (B, H) blocks that stay in cache: factors
        # for the whole sequence at once would be a dozen passes over (T, B, H) tensors in memory.
        # Each ``addcmul(x, y, y, value=-1)`` is one of the derivatives x - y²: σ' = a - a², tanh' = 1 - a².
        grad_pre = torch.empty_like(gates)  # gradients of the gates before their nonlinearities
        grad_gates = gates.new_empty(B, 3 * H)  # ... and after them, one step at a time
        slopes = gates.new_empty(B, 3 * H)  # the nonlinearities' derivatives at that step
        ones = gates.new_ones(B, H)
        d_z, d_r, d_n = grad_gates.split(H, dim=1)
        dh = grad_hs[T - 1].clone()
        for t in reversed(range(T)):
            h = hs[t]
            z, r, n = gates[t].split(H, dim=1)
            torch.addcmul(gates[t], gates[t], gates[t], value=-1, out=slopes)  # σ' of z and r (n's, replaced)
            torch.addcmul(ones, n, n, value=-1, out=slopes[:, 2 * H :])
            torch.sub(n, h, out=d_z).mul_(dh)  # h' = h + z (n - h)
            torch.mul(dh, z, out=d_n)
            dn = torch.mul(d_n, slopes[:, 2 * H :], out=grad_pre[t, :, 2 * H :])
            d_rh = dn @ w_n  # the gradient of r * h, the candidate's input
            torch.mul(d_rh, h, out=d_r)
            grad_zr = torch.mul(grad_gates[:, : 2 * H], slopes[:, : 2 * H], out=grad_pre[t, :, : 2 * H])
            # dh of the step before: through (1 - z) h, through r * h, and through both gates' products
            dh = torch.addcmul(dh.sub_(d_n), d_rh, r)
            dh = torch.addmm(dh, grad_zr, w_zr).add_(grad_hs[t - 1]) if t else torch.addmm(dh, grad_zr, w_zr)
        flat = grad_pre.reshape(T * B, 3 * H)
        grad_weight = torch.cat(
            [flat[:, : 2 * H].t() @ hs[:-1].reshape(T * B, H), flat[:, 2 * H :].t() @ reset_hidden.reshape(T * B, H)]
        )
        return grad_pre, grad_weight, dh


class _LSTMSequence(torch.autograd.Function):
    """The LSTM recurrence over precomputed input projections, with hand-written BPTT."""

    @staticmethod
    @_without_autocast
    def forward(ctx, projected: Tensor, weight_hh: Tensor, h0: Tensor, c0: Tensor):
        T, B, _ = projected.shape
        H = h0.shape[1]
        w = weight_hh.t()
        hs = projected.new_empty(T + 1, B, H)
        cs = projected.new_empty(T + 1, B, H)
        tanh_cs = projected.new_empty(T, B, H)  # tanh(c) after each step, kept for the backward pass
        gates = projected.new_empty(T, B, 4 * H)  # i, f, g, o after their nonlinearities
        hs[0], cs[0] = h0, c0
        for t in range(T):
            torch.addmm(projected[t], hs[t], w, out=gates[t])  # the pre-activations, in place of the gates
            i, f, g, o = gates[t].split(H, dim=1)
            gates[t, :, : 2 * H].sigmoid_()
            g.tanh_()
            o.sigmoid_()
            c = torch.mul(f, cs[t], out=cs[t + 1]).addcmul_(i, g)
            torch.mul(o, torch.tanh(c, out=tanh_cs[t]), out=hs[t + 1])
        ctx.save_for_backward(weight_hh, hs, cs, tanh_cs, gates)
        return hs[1:], cs[T]

    @staticmethod
    @torch.autograd.function.once_differentiable
    @_without_autocast
    def backward(ctx, grad_hs: Tensor, grad_c_last: Tensor | None):
        weight_hh, hs, cs, tanh_cs, gates = ctx.saved_tensors
        T, B, H = grad_hs.shape
        # As in the GRU, each step's factors are computed in that step, on blocks that stay in cache.
        grad_pre = torch.empty_like(gates)  # gradients of the gates before their nonlinearities
        grad_gates = gates.new_empty(B, 4 * H)  # ... and after them, one step at a time
        slopes = gates.new_empty(B, 4 * H)  # the nonlinearities' derivatives at that step
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
            torch.mul(grad_gates, slopes, out=grad_pre[t])
            dc.mul_(f)
            dh = torch.addmm(grad_hs[t - 1], grad_pre[t], weight_hh) if t else grad_pre[0] @ weight_hh
        flat = grad_pre.reshape(T * B, 4 * H)
        grad_weight = flat.t() @ hs[:-1].reshape(T * B, H)
        return grad_pre, grad_weight, dh, dc


CELLS = {"gru": GRUCell, "lstm": LSTMCell}
