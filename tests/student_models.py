"""Models as students write them from the assignment's starter code: the shapes and names the check
must read, and forwards of their own (per-step loops over [h, x]) to compare ours with."""

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

PAD, BEGIN, OOV, END = "PAD_TOKEN", "BEGIN_TOKEN", "OOV_TOKEN", "END_TOKEN"


class StudentAlexNet(nn.Module):
    """torchvision's layout (features.N / classifier.N, torch.flatten in forward), with knobs for the
    mistakes students make."""

    def __init__(self, num_classes: int = 4, pool: type = nn.MaxPool2d, conv4_kernel: int = 5,
                 skip_first_pool: bool = False, linear19_bias: bool = True, linear16_inputs: int = 256 * 6 * 6):
        super().__init__()
        first_pool = [] if skip_first_pool else [pool(kernel_size=3, stride=2)]
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=11, stride=4), nn.ReLU(inplace=True), *first_pool,
            nn.Conv2d(96, 256, kernel_size=conv4_kernel, padding=conv4_kernel // 2), nn.ReLU(inplace=True),
            pool(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            pool(kernel_size=3, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(linear16_inputs, 4096), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(4096, 4096, bias=linear19_bias), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class FunctionalAlexNet(nn.Module):
    """Named layers (conv1..conv5, fc1..fc3) with ReLU, pooling, flattening and dropout called in forward as
    functions: no module of their own for torchsummary to list."""

    def __init__(self, skip_first_pool: bool = False):
        super().__init__()
        self.skip_first_pool = skip_first_pool
        self.conv1, self.conv2 = nn.Conv2d(3, 96, 11, stride=4), nn.Conv2d(96, 256, 5, padding=2)
        self.conv3, self.conv4 = nn.Conv2d(256, 384, 3, padding=1), nn.Conv2d(384, 384, 3, padding=1)
        self.conv5 = nn.Conv2d(384, 256, 3, padding=1)
        self.fc1, self.fc2, self.fc3 = nn.Linear(9216, 4096), nn.Linear(4096, 4096), nn.Linear(4096, 4)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x if self.skip_first_pool else F.max_pool2d(x, 3, 2)))
        x = F.max_pool2d(x, 3, 2)
        x = F.max_pool2d(F.relu(self.conv5(F.relu(self.conv4(F.relu(self.conv3(x)))))), 3, 2)
        x = F.relu(self.fc1(F.dropout(torch.flatten(x, 1), 0.5, self.training)))
        return self.fc3(F.relu(self.fc2(F.dropout(x, 0.5, self.training))))


def _uniform(*shape: int, hidden: int) -> nn.Parameter:
    bound = 1 / math.sqrt(hidden)
    return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))


class StarterGRUCell(nn.Module):
    """The starter's GRUCell: W_z, W_r, W over [h, x] (h first), biases b_z, b_r, b."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.hidden_size = hidden_size
        for gate in ("z", "r", ""):
            name = f"W_{gate}" if gate else "W"
            setattr(self, name, _uniform(hidden_size, hidden_size + input_size, hidden=hidden_size))
            setattr(self, f"b_{gate}" if gate else "b",
                    _uniform(hidden_size, hidden=hidden_size) if bias else None)

    def _gate(self, weight, bias, inputs):
        out = inputs @ weight.t()
        return out if bias is None else out + bias

    def forward(self, x: Tensor, prev_state: Tensor | None = None) -> Tensor:
        h = x.new_zeros(x.shape[0], self.hidden_size) if prev_state is None else prev_state
        hx = torch.cat([h, x], dim=1)
        z = torch.sigmoid(self._gate(self.W_z, self.b_z, hx))
        r = torch.sigmoid(self._gate(self.W_r, self.b_r, hx))
        candidate = torch.tanh(self._gate(self.W, self.b, torch.cat([r * h, x], dim=1)))
        return (1 - z) * h + z * candidate


class PerGateLSTMCell(nn.Module):
    """An LSTMCell as students write it after the starter's GRU: one matrix per gate over [h, x]."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, candidate: str = "c"):
        super().__init__()
        self.hidden_size = hidden_size
        self.candidate = candidate
        for gate in ("f", "i", "o", candidate):
            setattr(self, f"W_{gate}", _uniform(hidden_size, hidden_size + input_size, hidden=hidden_size))
            setattr(self, f"b_{gate}", _uniform(hidden_size, hidden=hidden_size) if bias else None)

    def forward(self, x: Tensor, prev_state=None):
        if prev_state is None:
            prev_state = (x.new_zeros(x.shape[0], self.hidden_size), x.new_zeros(x.shape[0], self.hidden_size))
        h, c = prev_state
        hx = torch.cat([h, x], dim=1)

        def gate(name):
            bias = getattr(self, f"b_{name}")
            out = hx @ getattr(self, f"W_{name}").t()
            return out if bias is None else out + bias

        f, i, o = torch.sigmoid(gate("f")), torch.sigmoid(gate("i")), torch.sigmoid(gate("o"))
        c = f * c + i * torch.tanh(gate(self.candidate))
        return o * torch.tanh(c), c


class LinearGatesLSTMCell(nn.Module):
    """An LSTMCell with an nn.Linear per gate over [h, x], each named in words (forget_gate, ...)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.hidden_size = hidden_size
        self.forget_gate, self.input_gate, self.output_gate, self.cell_gate = (
            nn.Linear(hidden_size + input_size, hidden_size, bias=bias) for _ in range(4))

    def forward(self, x: Tensor, prev_state=None):
        if prev_state is None:
            prev_state = (x.new_zeros(x.shape[0], self.hidden_size), x.new_zeros(x.shape[0], self.hidden_size))
        h, c = prev_state
        hx = torch.cat([h, x], dim=1)
        c = torch.sigmoid(self.forget_gate(hx)) * c + torch.sigmoid(self.input_gate(hx)) * torch.tanh(self.cell_gate(hx))
        return torch.sigmoid(self.output_gate(hx)) * torch.tanh(c), c


def _run(cell: nn.Module, xs: Tensor) -> Tensor:
    """xs (N, T, E) -> hidden states (N, T, H), one cell step at a time, as the starter loops."""
    state, outputs = None, []
    for t in range(xs.shape[1]):
        state = cell(xs[:, t], state)
        outputs.append(state[0] if isinstance(state, tuple) else state)
    return torch.stack(outputs, dim=1)


class StarterSentimentClassification(nn.Module):
    def __init__(self, vocabulary_size, embedding_dim, rnn_module, hidden_size, bias=True):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, embedding_dim, padding_idx=0)
        self.rnn_model = rnn_module(embedding_dim, hidden_size, bias)
        self.classifier = nn.Linear(hidden_size, 2)

    def forward(self, batch_reviews: Tensor, batch_lengths: Tensor) -> Tensor:
        hs = _run(self.rnn_model, self.embedding(batch_reviews))  # (N, T, H)
        return self.classifier(hs[torch.arange(hs.shape[0]), batch_lengths - 1])


class StarterSentenceGeneration(nn.Module):
    def __init__(self, vocabulary_size, embedding_dim, rnn_module, hidden_size, bias=True):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, embedding_dim)
        self.rnn_model = rnn_module(embedding_dim, hidden_size, bias)
        self.classifier = nn.Linear(hidden_size, vocabulary_size)

    def forward(self, history: Tensor) -> Tensor:
        """history (N, T) -> logits of the next character (N, V)."""
        return self.classifier(_run(self.rnn_model, self.embedding(history))[:, -1])


def starter_vocabulary(reviews: list[str]) -> list[str]:
    """As the starter's IMDBReviewDataset builds it: the special tokens first, then the words."""
    words = sorted({word for review in reviews for word in review.split(" ")})
    return [PAD, BEGIN, OOV, END, *words]


def starter_ids(review: str, vocabulary: list[str]) -> list[int]:
    """The starter's reading: review.split(' ')[:200], BEGIN before, END after, OOV for unknown words."""
    ids = {word: i for i, word in enumerate(vocabulary)}
    return [ids[BEGIN], *(ids.get(word, ids[OOV]) for word in review.split(" ")[:200]), ids[END]]
