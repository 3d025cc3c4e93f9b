"""A student's text model run beside ours with the same weights: token batches through both forwards, and the
gradients of one loss with respect to every weight; and, for a file (weights, no code), the reading of an
ambiguous cell settled from text where one reading is clearly right.
"""

import math

import torch
from torch import Tensor, nn
from torch.func import functional_call

from hw3core.check.compare import END_MISTAKES, device_of, difference, failure, generator, same, untouched
from hw3core.check.report import RowResult
from hw3core.check.starter import starter_encode
from hw3core.text import pad_reviews

BATCH, LENGTH = 3, 9
# Reviews written for this check (not from IMDB), each plainly one way, with its label (1: positive).
REVIEWS = [
    ("this movie was great and i loved it . the acting was wonderful and the story was beautiful", 1),
    ("one of the best films i have ever seen . a great cast and a moving story", 1),
    ("i really enjoyed this film , it was funny and the characters were excellent", 1),
    ("a wonderful movie with a perfect ending . highly recommended", 1),
    ("this movie was terrible and boring . the worst film i have ever seen", 0),
    ("awful acting , a stupid plot and bad dialogue . a waste of time", 0),
    ("i hated this film . it was dull , badly written and far too long", 0),
    ("the worst movie of the year . poor acting and nothing happens", 0),
]
# The assignment's own sample of what a GRU trained on Shakespeare writes (Part D).
PASSAGE = ("ROMEO:\nGive me them: for that I put us empty.\nRIVERS:\nThe shadow doth not live: and he would not\n"
           "From thee for his that office past confusion\nIs their great expecteth on the wheek;\n")
# A reading is settled from text only when it is this much better (nats per review or per character) than
# every other reading, and right on most reviews: a model that is barely trained settles nothing.
CLEAR_MARGIN = 0.5


def _tokens(vocabulary_size: int, device) -> tuple[Tensor, Tensor]:
    rng = generator()
    tokens = torch.randint(0, vocabulary_size, (BATCH, LENGTH), generator=rng)
    lengths = torch.tensor([LENGTH, LENGTH - 3, 2])
    return tokens.to(device), lengths.to(device)


def _first(output) -> Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


def _ours_output(ours, name: str, tokens: Tensor, lengths: Tensor, shape) -> Tensor:
    if name == "SentimentClassification":
        return ours(tokens, lengths)
    every = len(shape) == 3  # the student's forward gives the next character after every position
    return ours(tokens, every_position=every)[0]


def _output_mistakes(ours: nn.Module, name: str, tokens: Tensor, lengths: Tensor, expected: Tensor):
    """(the mistake in words, the output it gives) for the mistakes a text model's forward is known for."""
    if name == "SentimentClassification":
        yield ("it reads the state after the padding, not at each review's last token (hs[torch.arange(N), "
               "batch_lengths - 1])", ours(tokens, torch.full_like(lengths, LENGTH)))
        yield "it reads the state after the first token, not the last", ours(tokens, torch.ones_like(lengths))
    for what, changed in END_MISTAKES.items():
        yield (f"it ends in {what}; CrossEntropyLoss reads logits (it applies its own log-softmax): return the "
               "classifier's output", changed(expected))


def _call(module: nn.Module, name: str, tokens: Tensor, lengths: Tensor):
    return module(tokens, lengths) if name == "SentimentClassification" else module(tokens)


def compare_text_forward(module: nn.Module, ours: nn.Module, name: str, names: dict[str, str],
                         convert) -> tuple[list[RowResult], list[str]]:
    """``names``: our parameter names -> the student's (embedding, classifier); ``convert``: the student's cell
    tensors (by their names in the model) -> our cell's. Rows and problems of the forward and the gradients."""
    tokens, lengths = _tokens(ours.embedding.num_embeddings, device_of(module))
    hidden = ours.rnn.hidden_size
    terms = LENGTH * (hidden + ours.embedding.embedding_dim) + hidden
    rows, problems = [], []
    with untouched(module):
        module.eval()
        try:
            with torch.no_grad():
                yours = _first(_call(module, name, tokens, lengths))
        except Exception as error:  # noqa: BLE001 (a student's forward can fail any way; the report says how)
            rows.append(RowResult("Forward (the model)", "ours, with your weights", "fails", False))
            return rows, [f"Forward (the model): fails on a ({BATCH}, {LENGTH}) token batch with {failure(error)}."]
        params = dict(module.named_parameters())
        copies = {key: p.detach().clone().requires_grad_() for key, p in params.items()}
        ours_params = {key: copies[theirs] for key, theirs in names.items()}
        ours_params.update({f"rnn.{key}": tensor for key, tensor in convert(copies).items()})
        with torch.no_grad():
            expected = _ours_output(ours, name, tokens, lengths, getattr(yours, "shape", ()))
        if not same(yours, expected, terms):
            gap = difference(yours, expected)
            cause = (": the cell matches, so the difference is around it (the embedding, the state the classifier reads, "
                     "the classifier)")
            for what, changed in _output_mistakes(ours, name, tokens, lengths, expected):
                if same(yours, changed, terms):
                    cause = f": {what}"
                    break
            shape = tuple(yours.shape) if isinstance(yours, Tensor) else type(yours).__name__
            rows.append(RowResult("Forward (the model)", "ours, with your weights", f"differs by up to {gap:.3g}", False))
            problems.append(f"Forward (the model): differs from ours with your weights by up to {gap:.3g} (your output "
                            f"{shape}, ours {tuple(expected.shape)}){cause}.")
            return rows, problems
        rows.append(RowResult("Forward (the model)", "ours, with your weights", f"the same on a ({BATCH}, {LENGTH}) "
                              "token batch", True))
        probe = torch.randn(expected.shape, generator=generator(2), dtype=expected.dtype).to(expected.device)
        try:
            loss = (_first(_call(module, name, tokens, lengths)) * probe).sum()
            wanted = list(params.values())
            yours_grads = torch.autograd.grad(loss, wanted, allow_unused=True) if loss.requires_grad \
                else [None] * len(wanted)
        except Exception as error:  # noqa: BLE001 (a student's backward can fail any way; the report says how)
            rows.append(RowResult("Gradients (the model)", "ours", "fail", False))
            return rows, [f"Gradients (the model): the backward pass fails with {failure(error)}."]
    ours.eval()

    def with_copies(*args, **kwargs):  # ours, its weights the copies the gradients are taken with respect to
        return functional_call(ours, ours_params, args, kwargs)

    output = _ours_output(with_copies, name, tokens, lengths, expected.shape)
    ours_grads = torch.autograd.grad((output * probe).sum(), list(copies.values()), allow_unused=True)
    cut = [key for key, y, o in zip(params, yours_grads, ours_grads, strict=True) if y is None and o is not None]
    off = [key for key, y, o in zip(params, yours_grads, ours_grads, strict=True)
           if y is not None and o is not None and not same(y, o, terms * BATCH)]
    if cut or off:
        rows.append(RowResult("Gradients (the model)", "ours", f"{'do not reach' if cut else 'differ for'} "
                              f"{', '.join(cut or off)}", False))
        problems.append(f"Gradients (the model): {'do not reach' if cut else 'differ for'} {', '.join(cut or off)}, "
                        "though the forward is right" + (": the forward cuts the graph there (.detach(), .data or a "
                                                         "NumPy round trip)." if cut else "."))
    else:
        rows.append(RowResult("Gradients (the model)", "ours", "the same for every weight", True))
    return rows, problems


@torch.no_grad()
def evidence_loss(model: nn.Module, name: str) -> tuple[float, float]:
    """(mean loss, share right) of ``model`` (ours, with the student's weights and vocabulary) on text whose
    answer is known: the reviews above (sentiment), or the assignment's passage (the writer)."""
    if name == "SentimentClassification":
        batch, lengths = pad_reviews([starter_encode(text, model.word_ids) for text, _ in REVIEWS])
        labels = torch.tensor([label for _, label in REVIEWS])
        logits = model(batch, lengths)
        return float(nn.functional.cross_entropy(logits, labels)), float((logits.argmax(1) == labels).float().mean())
    known = [c for c in PASSAGE if c in model.char_ids]
    if len(known) < 2:
        return math.inf, 0.0
    ids = torch.tensor([model.encode("".join(known))])
    logits = model(ids[:, :-1], every_position=True)[0][0]
    targets = ids[0, 1:]
    return float(nn.functional.cross_entropy(logits, targets)), float((logits.argmax(1) == targets).float().mean())


def clearly_best(scores: dict[str, tuple[float, float]], name: str) -> str | None:
    """The reading whose loss is lower than every other's by CLEAR_MARGIN (and, for reviews, right on most)."""
    ranked = sorted(scores.items(), key=lambda item: item[1][0])
    (best, (loss, right)), runner_up = ranked[0], ranked[1][1][0] if len(ranked) > 1 else math.inf
    enough = right >= 0.75 if name == "SentimentClassification" else True
    return best if enough and runner_up - loss >= CLEAR_MARGIN else None
