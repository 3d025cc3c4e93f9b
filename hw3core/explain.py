"""What the models looked at: the methods behind the app's "Inside the models" views.

- AlexNets: Grad-CAM (Selvaraju et al., 2017) for every domain at once, the first layer's kernels
  as an image grid, and each layer's output shape and parameter count.
- Sentiment classifiers: p(positive) after each word, the influence of each word (occlusion), and
  the gates (the GRU's update gate, the LSTM's input and forget gates) at each word.
- Character writers: the surprise (loss) at each character and the candidates weighed there.

The models are shared by concurrent requests, so nothing here registers a hook or changes a model:
Grad-CAM splits the network into two ``nn.Sequential`` over the same layers and takes the gradient
with ``torch.autograd.grad``, which leaves every ``.grad`` untouched.
"""

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hw3core.alexnet import IMAGE_SIZE, AlexNet
from hw3core.rnn_cells import GRUCell, LSTMCell
from hw3core.text import BEGIN, END, OOV, pad_reviews, tokenize
from hw3core.text_models import SentimentClassifier, ShakespeareWriter

# ----- AlexNets -----


def last_conv_index(model: AlexNet) -> int:
    """How many layers, from the first, make the last convolution's feature map (with its ReLU)."""
    layers = list(model.children())
    last_conv = max(i for i, layer in enumerate(layers) if isinstance(layer, nn.Conv2d))
    return last_conv + 2  # the ReLU after it


def split_at_last_conv(model: AlexNet) -> tuple[nn.Sequential, nn.Sequential]:
    """(features, head) over the model's own layers, so that ``head(features(x)) == model(x)``.
    Slicing the model itself (``model[:k]``) would call AlexNet's constructor; these are plain."""
    layers = list(model.children())
    k = last_conv_index(model)
    return nn.Sequential(*layers[:k]), nn.Sequential(*layers[k:])


@dataclass
class GradCam:
    maps: Tensor  # (N, C, h, w): one map per class, >= 0, on the last convolution's grid
    probabilities: Tensor  # (N, C): the model's answer for the same images


def grad_cam(model: AlexNet, images: Tensor) -> GradCam:
    """Grad-CAM of every class for normalised images (N, 3, 227, 227): for class c, the last
    convolution's channels weighted by the spatial mean of d(score c)/d(channel), summed, ReLU.
    The model must be in eval mode (dropout off), as the app's are."""
    features, head = split_at_last_conv(model)
    with torch.no_grad():
        activations = features(images)  # (N, K, h, w)
    N, classes = activations.shape[0], model.num_classes
    with torch.enable_grad():  # whatever the caller's mode: the head's gradient is the method
        # One copy of the activations per class: the head treats images independently, so the gradient
        # of the summed scores reaches each copy from its own class's score alone. One backward pass.
        copies = activations.repeat_interleave(classes, dim=0).requires_grad_()  # (N*C, K, h, w)
        scores = head(copies)  # (N*C, C)
        own_class = torch.arange(classes, device=images.device).repeat(N)
        (gradients,) = torch.autograd.grad(scores.gather(1, own_class[:, None]).sum(), copies)
    weights = gradients.mean(dim=(2, 3), keepdim=True)  # (N*C, K, 1, 1)
    maps = torch.relu((weights * copies.detach()).sum(dim=1))  # (N*C, h, w)
    probabilities = torch.softmax(scores.detach()[::classes], dim=-1)
    return GradCam(maps.unflatten(0, (N, classes)), probabilities)


def kernel_grid(weight: Tensor, columns: int = 12, gap: int = 1) -> Tensor:
    """First-layer kernels (N, 3, k, k) as one RGB image (H, W, 3) of uint8, ``columns`` kernels a row.
    Each kernel is scaled by its own largest magnitude, symmetrically: 0 is mid-grey (128), the most
    positive weight 255 in its channel, the most negative 0. Gaps are white."""
    count, _, k, _ = weight.shape
    rows = -(-count // columns)
    scale = weight.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
    pixels = ((weight / scale + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)  # (N, 3, k, k)
    step = k + gap
    grid = torch.full((rows * step - gap, columns * step - gap, 3), 255, dtype=torch.uint8)
    for index in range(count):
        row, column = divmod(index, columns)
        grid[row * step : row * step + k, column * step : column * step + k] = pixels[index].permute(1, 2, 0)
    return grid


@dataclass
class LayerRow:
    name: str
    layer: nn.Module
    output_shape: tuple[int, ...]
    parameters: int


@torch.no_grad()
def layer_table(model: nn.Sequential, image_size: int = IMAGE_SIZE) -> list[LayerRow]:
    """Each layer of a sequential model with its output shape (without the batch) for one image."""
    x = torch.zeros(1, 3, image_size, image_size, device=next(model.parameters()).device)
    rows = []
    for name, layer in model.named_children():
        x = layer(x)
        rows.append(LayerRow(name, layer, tuple(x.shape[1:]), sum(p.numel() for p in layer.parameters())))
    return rows


# ----- sentiment classifiers -----


@dataclass
class ReviewTokens:
    tokens: list[str]  # every token of the review, as the tokenizer cuts it
    read: list[int]  # the positions in ``tokens`` of those the model reads, in order: the rest lie outside its window
    ids: list[int]  # BEGIN, the ids of the tokens read, END: what the model is given

    def words(self) -> list[str]:
        """The tokens read, in the order the model reads them."""
        return [self.tokens[i] for i in self.read]


def review_tokens(model: SentimentClassifier, text: str) -> ReviewTokens:
    tokens = tokenize(text)
    return ReviewTokens(tokens, model.words_read(len(tokens)), model.encode(text))


@torch.inference_mode()
def _positive(model: SentimentClassifier, encoded: list[list[int]]) -> Tensor:
    """p(positive) (N,) of encoded reviews, one batch."""
    batch, lengths = pad_reviews(encoded)
    device = model.embedding.weight.device
    return torch.softmax(model(batch.to(device), lengths).float(), dim=-1)[:, 1].cpu()


def prefix_curve(model: SentimentClassifier, text: str) -> tuple[ReviewTokens, Tensor]:
    """p(positive) after each word read (n,): the classifier applied to BEGIN, the first k words read, END,
    exactly as it is applied to a whole review (never the head on a state it was not trained to read).
    The point after the last word read is therefore the review's own prediction. All prefixes run as
    one padded batch."""
    review = review_tokens(model, text)
    if not review.read:
        raise ValueError("the review has no words")
    begin, words, end = review.ids[0], review.ids[1:-1], review.ids[-1]
    return review, _positive(model, [[begin, *words[:k], end] for k in range(1, len(words) + 1)])


def occlusion(model: SentimentClassifier, text: str) -> tuple[ReviewTokens, Tensor]:
    """How much each word read moved p(positive): p(review) - p(review with that word replaced by the
    out-of-vocabulary token) (n,), in [-1, 1]; > 0 where the word pushed towards positive. The review
    and its n variants run as one batch, so an unchanged variant gives exactly the review's value."""
    review = review_tokens(model, text)
    if not review.read:
        raise ValueError("the review has no words")
    oov = model.word_ids[OOV]
    variants = [review.ids]
    for position in range(1, len(review.read) + 1):
        variant = list(review.ids)
        variant[position] = oov
        variants.append(variant)
    p = _positive(model, variants)
    return review, p[0] - p[1:]


def cell_gates(cell: nn.Module, xs: Tensor, state=None) -> dict[str, Tensor]:
    """The gates (T, B, H) of a recurrence over xs (T, B, I), after their sigmoids: the GRU's
    ``update`` gate z (h' = (1 - z) h + z h̃), the LSTM's ``input`` gate i and ``forget`` gate f
    (c' = f c + i g). The states come from the cell's own ``sequence``; each gate, which depends only on
    the step's input and the state before it, is then one matrix product over all steps."""
    hs, _ = cell.sequence(xs, state)  # (T, B, H)
    if isinstance(cell, LSTMCell):
        h0 = cell.zeros(xs.shape[1], xs) if state is None else state[0]
    elif isinstance(cell, GRUCell):
        h0 = cell.zeros(xs.shape[1], xs) if state is None else state
    else:
        raise TypeError(f"gates are defined for GRUCell and LSTMCell, not {type(cell).__name__}")
    before = torch.cat([h0[None], hs[:-1]])  # (T, B, H): the state each step starts from
    H = cell.hidden_size
    pre = cell.project_inputs(xs)[..., : 2 * H] + before @ cell.weight_hh[: 2 * H].t()  # (T, B, 2H)
    first, second = torch.sigmoid(pre).split(H, dim=-1)
    return {"update": first} if isinstance(cell, GRUCell) else {"input": first, "forget": second}


@torch.inference_mode()
def review_gates(model: SentimentClassifier, text: str) -> tuple[list[str], dict[str, Tensor]]:
    """(the tokens the model reads: BEGIN, the words, END; their gates, each (T, H), as ``cell_gates``)."""
    review = review_tokens(model, text)
    ids = torch.tensor(review.ids, device=model.embedding.weight.device)
    gates = cell_gates(model.rnn, model.embedding(ids)[:, None])
    return [BEGIN, *review.words(), END], {name: g[:, 0].float().cpu() for name, g in gates.items()}


# ----- character writers -----


@dataclass
class CharacterReading:
    surprise: Tensor  # (n - 1,): -ln p(character t | the text before it), for t = 1 .. n - 1, in nats
    top_probabilities: Tensor  # (n, k): row t, the k likeliest characters after text[: t + 1]
    top_ids: Tensor  # (n, k): their ids (row n - 1: what would come after the whole text)


@torch.inference_mode()
def read_characters(writer: ShakespeareWriter, text: str, k: int = 5) -> CharacterReading:
    """The writer reads ``text`` (every character known to it, at least one) once, teacher-forced, as the
    start of a speech (after ``writer.lead_in``), as it reads a prime."""
    if not text:
        raise ValueError("the text must have at least one character")
    lead_in = len(writer.lead_in(text))
    ids = torch.tensor([writer.encode(writer.lead_in(text) + text)], device=writer.embedding.weight.device)
    logits, _ = writer(ids, every_position=True)  # (1, lead_in + n, V): row t predicts character t + 1
    ids, log_p = ids[:, lead_in:], torch.log_softmax(logits[0, lead_in:].float(), dim=-1)  # the text's own rows
    surprise = -log_p[:-1].gather(1, ids[0, 1:, None])[:, 0]
    top_log_p, top_ids = log_p.topk(min(k, log_p.shape[-1]), dim=-1)
    return CharacterReading(surprise.cpu(), top_log_p.exp().cpu(), top_ids.cpu())
