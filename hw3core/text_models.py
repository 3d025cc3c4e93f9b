"""Parts C and D: the sentiment classifier and the character-level writer.

``SentimentClassification`` and ``SentenceGeneration`` keep the assignment's signatures (the
cell class is an argument). ``SentimentClassifier`` and ``ShakespeareWriter`` are the same
models with their vocabulary and cell name as constructor arguments, so a checkpoint
(``config.json`` + ``model.safetensors``, through ``PyTorchModelHubMixin``) rebuilds them alone.
"""

from collections.abc import Iterator

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import Tensor, nn

from hw3core.rnn_cells import CELLS
from hw3core.text import encode_review, pad_reviews, words_read


def run_sequence(cell: nn.Module, xs: Tensor, state=None) -> tuple[Tensor, object]:
    """xs (T, N, I) -> (hidden states (T, N, H), last state). The cell's fast ``sequence`` where it has
    one (this project's cells); else the assignment's loop of ``cell(x, prev_state)`` steps, so any
    assignment-style cell works. A step's output is its state, or (h, c) whose h is read."""
    if hasattr(cell, "sequence"):
        return cell.sequence(xs, state)
    outputs = []
    for x in xs:
        state = cell(x, state)
        outputs.append(state[0] if isinstance(state, tuple) else state)
    return torch.stack(outputs), state


class SentimentClassification(nn.Module):
    def __init__(self, vocabulary_size: int, embedding_dim: int, rnn_module: type, hidden_size: int, bias: bool = False,
                 dropout: float = 0.0):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, embedding_dim)
        self.rnn = rnn_module(embedding_dim, hidden_size, bias)
        self.classifier = nn.Linear(hidden_size, 2)
        # Dropout on what enters and what leaves the recurrence; the cell itself stays the assignment's.
        # It has no weights, so a checkpoint loads whatever rate it was trained with.
        self.dropout = nn.Dropout(dropout)

    def forward(self, batch_reviews: Tensor, batch_lengths: Tensor) -> Tensor:
        """batch_reviews (N, T) token ids, batch_lengths (N,) -> logits (N, 2), read at each review's last token.
        Every length must be 1 to T: a length of 0 would read a state from before the review."""
        lengths = batch_lengths.to(batch_reviews.device)
        if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > batch_reviews.shape[1]):
            raise ValueError(f"batch_lengths must be from 1 to {batch_reviews.shape[1]} (the padded length), "
                             f"got {lengths.min().item()} to {lengths.max().item()}")
        hs = run_sequence(self.rnn, self.dropout(self.embedding(batch_reviews.t())))[0]  # (T, N, H)
        # The recurrence is causal, so padding after a review never reaches its last real state.
        last = hs[lengths - 1, torch.arange(hs.shape[1], device=hs.device)]  # (N, H)
        return self.classifier(self.dropout(last))


class SentenceGeneration(nn.Module):
    def __init__(self, vocabulary_size: int, embedding_dim: int, rnn_module: type, hidden_size: int, bias: bool = False,
                 dropout: float = 0.0):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, embedding_dim)
        self.rnn = rnn_module(embedding_dim, hidden_size, bias)
        self.classifier = nn.Linear(hidden_size, vocabulary_size)
        self.dropout = nn.Dropout(dropout)  # as in SentimentClassification: around the cell, never inside it

    def forward(self, history: Tensor, state=None, every_position: bool = False):
        """history (N, T) character ids -> (logits, state after the history). The logits are those of
        the next character (N, V), or with ``every_position`` of the character after each position
        (N, T, V): teacher forcing, every position of a sequence is a training example."""
        hs, state = run_sequence(self.rnn, self.dropout(self.embedding(history.t())), state)  # (T, N, H)
        return self.classifier(self.dropout(hs.transpose(0, 1) if every_position else hs[-1])), state


def sample_next_char_id(predicted_logits: Tensor, temperature: float = 1.0,
                        generator: torch.Generator | None = None) -> Tensor:
    """Samples one id per row from the categorical distribution of the logits ((V,) or (N, V))."""
    probabilities = torch.softmax(predicted_logits.float() / temperature, dim=-1)
    return torch.multinomial(probabilities, num_samples=1, generator=generator).squeeze(-1)


class SentimentClassifier(
    SentimentClassification,
    PyTorchModelHubMixin,
    library_name="hw3core",
    tags=["text-classification", "imdb", "sentiment", "rnn"],
    pipeline_tag="text-classification",
):
    LABELS = ("negative", "positive")

    def __init__(
        self,
        vocabulary: list[str],
        cell: str = "gru",
        embedding_dim: int = 128,
        hidden_size: int = 100,
        bias: bool = True,
        max_length: int = 200,
        dropout: float = 0.0,
        tail_length: int = 0,
    ):
        super().__init__(len(vocabulary), embedding_dim, CELLS[cell], hidden_size, bias, dropout)
        words_read(0, max_length, tail_length)  # refuses a window that cannot be read, before any review
        self.vocabulary = vocabulary
        self.max_length = max_length
        self.tail_length = tail_length  # 0: the first words only, as the assignment's starter code reads
        self.word_ids = {word: i for i, word in enumerate(vocabulary)}

    def words_read(self, n_words: int) -> list[int]:
        """The positions of the words of a review of ``n_words`` that the model reads."""
        return words_read(n_words, self.max_length, self.tail_length)

    def encode(self, text: str) -> list[int]:
        return encode_review(text, self.word_ids, self.max_length, self.tail_length)

    @torch.inference_mode()
    def predict(self, texts: list[str]) -> Tensor:
        """Probabilities (N, 2) of negative and positive, for raw review texts."""
        batch, lengths = pad_reviews([self.encode(text) for text in texts])
        device = self.embedding.weight.device
        return torch.softmax(self(batch.to(device), lengths), dim=-1).cpu()


# Every speech in the plays follows a blank line, and the writers were trained with their state carried across
# windows: read from a zero state they never learned to be, a speaker's name is often not followed by its colon.
# So a prime is read as the start of a speech, after a blank line (nanoGPT's sampler starts from a newline too).
SPEECH_START = "\n\n"
HOW_A_PRIME_IS_READ = ("A prime is read as the start of a speech: `generate` first reads a blank line (every "
                       "speech in the plays follows one), then the prime, so a speaker's name goes on with its colon.")


class ShakespeareWriter(
    SentenceGeneration,
    PyTorchModelHubMixin,
    library_name="hw3core",
    tags=["text-generation", "char-rnn", "shakespeare", "rnn"],
    pipeline_tag="text-generation",
):
    def __init__(
        self,
        characters: str,
        cell: str = "gru",
        embedding_dim: int = 256,
        hidden_size: int = 512,
        bias: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__(len(characters), embedding_dim, CELLS[cell], hidden_size, bias, dropout)
        self.characters = characters
        self.char_ids = {char: i for i, char in enumerate(characters)}

    def encode(self, text: str) -> list[int]:
        return [self.char_ids[char] for char in text]

    def unknown_characters(self, text: str) -> list[str]:
        return sorted({char for char in text if char not in self.char_ids})

    def lead_in(self, text: str) -> str:
        """What the writer reads before ``text``: the newlines that put it after a blank line (none where it
        already follows one, or where the vocabulary has no newline)."""
        if "\n" not in self.char_ids:
            return ""
        newlines = len(text) - len(text.lstrip("\n"))
        return SPEECH_START[min(newlines, len(SPEECH_START)):]

    @torch.inference_mode()
    def generate(self, prime: str, length: int, temperature: float = 1.0, seed: int | None = None) -> Iterator[str]:
        """Yields ``length`` characters after ``prime`` (read as the start of a speech: ``lead_in``), one at a
        time. The state is carried
        from step to step, so each character costs one cell step: O(n) for n characters."""
        if not prime:
            raise ValueError("the prime must have at least one character")
        device = self.embedding.weight.device
        generator = torch.Generator(device=device)
        if seed is not None:
            generator.manual_seed(seed)
        logits, state = self(torch.tensor([self.encode(self.lead_in(prime) + prime)], device=device))
        # The embedding and the cell's input projection are both linear: tabulated once for every
        # character, each step looks its row up instead of computing it.
        table = self.rnn.project_inputs(self.embedding.weight)  # (V, gates)
        for _ in range(length):
            next_id = int(sample_next_char_id(logits, temperature, generator))
            yield self.characters[next_id]
            state = self.rnn.recur(table[next_id : next_id + 1], state)  # one cell step; the row is a view
            logits = self.classifier(self.rnn.output(state))
