"""Parts C and D: the sentiment classifier, the character-level writer, the sampler and the tokenizer."""

import json

import pytest
import torch
from torch import nn

from conftest import assert_numerically_close
from hw3core import (
    CELLS,
    SentenceGeneration,
    SentimentClassification,
    SentimentClassifier,
    ShakespeareWriter,
    sample_next_char_id,
)
from hw3core.text import (
    BEGIN,
    END,
    OOV,
    PAD,
    SPECIAL_TOKENS,
    build_vocabulary,
    encode_review,
    pad_reviews,
    tokenize,
    words_read,
)

CELL_NAMES = pytest.mark.parametrize("cell", list(CELLS))
CHARACTERS = "\n !',.:;?ABCDEIJLMNORTUabcdefghilmnorstuvwy"


def random_ids(generator, length, vocabulary_size):
    return torch.randint(1, vocabulary_size, (length,), generator=generator)  # never PAD (0)


# ----- Part C: SentimentClassification -----


@pytest.fixture
def sentiment_model(request):
    torch.manual_seed(0)
    return SentimentClassification(30, 8, CELLS[request.param], 6, bias=True).eval()


@pytest.mark.parametrize("sentiment_model", list(CELLS), indirect=True)
def test_sentiment_logits_shape(sentiment_model):
    reviews = torch.randint(1, 30, (4, 9))
    logits = sentiment_model(reviews, torch.tensor([9, 3, 5, 1]))
    assert logits.shape == (4, 2)
    assert logits.dtype == torch.float32


@pytest.mark.parametrize("sentiment_model", list(CELLS), indirect=True)
def test_sentiment_logits_ignore_padding_and_batch_neighbours(sentiment_model):
    generator = torch.Generator().manual_seed(0)
    review = random_ids(generator, 5, 30)
    with torch.no_grad():
        alone = sentiment_model(review[None], torch.tensor([5]))[0]
        padded = torch.zeros(1, 11, dtype=torch.long)
        padded[0, :5] = review
        alone_padded = sentiment_model(padded, torch.tensor([5]))[0]
        batch = torch.zeros(3, 12, dtype=torch.long)
        batch[0, :12] = random_ids(generator, 12, 30)
        batch[1, :5] = review
        batch[2, :8] = random_ids(generator, 8, 30)
        batched = sentiment_model(batch, torch.tensor([12, 5, 8]))
    assert_numerically_close(alone_padded, alone)
    assert_numerically_close(batched[1], alone)
    # the neighbours are read at their own ends, not at the padded review's
    with torch.no_grad():
        longest_alone = sentiment_model(batch[:1], torch.tensor([12]))[0]
    assert_numerically_close(batched[0], longest_alone)
    assert not torch.allclose(batched[0], batched[1])


# ----- Part D: SentenceGeneration -----


@pytest.fixture
def generation_model(request):
    torch.manual_seed(0)
    return SentenceGeneration(20, 8, CELLS[request.param], 6, bias=True).eval()


@pytest.mark.parametrize("generation_model", list(CELLS), indirect=True)
def test_generation_forward_shapes_and_state(generation_model):
    history = torch.randint(0, 20, (3, 7))
    with torch.no_grad():
        logits, state = generation_model(history)
    assert logits.shape == (3, 20)
    for part in state if isinstance(state, tuple) else (state,):
        assert part.shape == (3, 6)


@pytest.mark.parametrize("generation_model", list(CELLS), indirect=True)
@pytest.mark.parametrize("split", [1, 4, 9])
def test_generation_in_pieces_equals_whole(generation_model, split):
    history = torch.randint(0, 20, (2, 10))
    with torch.no_grad():
        whole, state_whole = generation_model(history)
        _, state = generation_model(history[:, :split])
        pieces, state_pieces = generation_model(history[:, split:], state)
    assert_numerically_close(pieces, whole)
    for a, b in zip(
        state_pieces if isinstance(state_pieces, tuple) else (state_pieces,),
        state_whole if isinstance(state_whole, tuple) else (state_whole,),
        strict=True,
    ):
        assert_numerically_close(a, b)


@pytest.mark.parametrize("generation_model", list(CELLS), indirect=True)
def test_every_position_logits_are_forward_at_each_prefix(generation_model):
    history = torch.randint(0, 20, (2, 6))
    with torch.no_grad():
        every, _ = generation_model(history, every_position=True)
        assert every.shape == (2, 6, 20)
        last, _ = generation_model(history)
        assert_numerically_close(every[:, -1], last)
        for t in range(6):
            prefix_logits, _ = generation_model(history[:, : t + 1])
            assert_numerically_close(every[:, t], prefix_logits)


# ----- the sampler -----


def test_sampler_is_deterministic_under_a_seeded_generator():
    logits = torch.randn(50, 10, generator=torch.Generator().manual_seed(0))
    first = sample_next_char_id(logits, 1.0, torch.Generator().manual_seed(123))
    second = sample_next_char_id(logits, 1.0, torch.Generator().manual_seed(123))
    assert first.shape == (50,)
    assert first.dtype == torch.long
    assert torch.equal(first, second)
    assert ((first >= 0) & (first < 10)).all()


@pytest.mark.parametrize("favourite", [0, 3, 9])
def test_sampler_returns_the_overwhelming_favourite(favourite):
    logits = torch.zeros(200, 10)
    logits[:, favourite] = 40.0
    ids = sample_next_char_id(logits, 1.0, torch.Generator().manual_seed(0))
    assert (ids == favourite).all()


def test_sampler_accepts_one_row_of_logits():
    logits = torch.full((10,), -30.0)
    logits[4] = 30.0
    assert int(sample_next_char_id(logits, 1.0, torch.Generator().manual_seed(0))) == 4


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_sampler_frequencies_follow_the_tempered_softmax(temperature):
    logits = torch.tensor([0.0, 1.0, 2.0, -1.0, 0.5])
    n = 40_000
    ids = sample_next_char_id(logits.expand(n, -1), temperature, torch.Generator().manual_seed(0))
    frequencies = torch.bincount(ids, minlength=5).double() / n
    expected = torch.softmax(logits.double() / temperature, dim=0)
    # the standard error is at most 0.0025; the sampling is seeded, so this cannot flake
    torch.testing.assert_close(frequencies, expected, rtol=0, atol=0.015)


# ----- the checkpointed wrappers -----

REVIEWS = [
    "A wonderful film, the acting was great and the story was great.",
    "Terrible. The story was boring and the acting was bad.<br /><br />Bad film.",
    "Great film, great story, great acting!",
    "Boring, bad, terrible: the worst film.",
]


@pytest.fixture
def vocabulary():
    return build_vocabulary(REVIEWS, min_count=2, max_size=50)


@CELL_NAMES
def test_sentiment_classifier_round_trip(cell, vocabulary, tmp_path):
    torch.manual_seed(0)
    model = SentimentClassifier(vocabulary, cell=cell, embedding_dim=8, hidden_size=6, max_length=12,
                                tail_length=4).eval()
    model.save_pretrained(tmp_path)
    loaded = SentimentClassifier.from_pretrained(tmp_path, strict=True)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["cell"] == cell
    assert config["vocabulary"] == vocabulary
    assert loaded.vocabulary == vocabulary
    assert type(loaded.rnn) is CELLS[cell]
    assert loaded.max_length == 12 and config["tail_length"] == loaded.tail_length == 4
    assert loaded.rnn.hidden_size == 6 and loaded.embedding.embedding_dim == 8
    probabilities = model.predict(REVIEWS)
    assert probabilities.shape == (len(REVIEWS), 2)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(len(REVIEWS)))
    assert_numerically_close(loaded.predict(REVIEWS), probabilities)


@CELL_NAMES
def test_sentiment_classifier_predict_reads_each_review_alone(cell, vocabulary):
    torch.manual_seed(0)
    model = SentimentClassifier(vocabulary, cell=cell, embedding_dim=8, hidden_size=6, max_length=50).eval()
    together = model.predict(REVIEWS)
    for row, review in enumerate(REVIEWS):
        assert_numerically_close(model.predict([review])[0], together[row])


def make_writer(cell, seed=0):
    torch.manual_seed(seed)
    return ShakespeareWriter(CHARACTERS, cell=cell, embedding_dim=8, hidden_size=16).eval()


@CELL_NAMES
def test_shakespeare_writer_round_trip(cell, tmp_path):
    model = make_writer(cell)
    model.save_pretrained(tmp_path)
    loaded = ShakespeareWriter.from_pretrained(tmp_path, strict=True)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["cell"] == cell
    assert config["characters"] == CHARACTERS
    assert loaded.characters == CHARACTERS
    assert type(loaded.rnn) is CELLS[cell]
    history = torch.tensor([model.encode("ROMEO:\nAnd")])
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        assert_numerically_close(loaded(history)[0], model(history)[0])
    assert "".join(loaded.generate("JULIET:", 30, 0.8, seed=3)) == "".join(model.generate("JULIET:", 30, 0.8, seed=3))


@CELL_NAMES
@pytest.mark.parametrize("length", [0, 1, 40])
def test_generate_yields_length_characters_of_the_vocabulary(cell, length):
    model = make_writer(cell)
    text = list(model.generate("ROMEO:", length, temperature=1.0, seed=0))
    assert len(text) == length
    assert all(isinstance(char, str) and len(char) == 1 and char in CHARACTERS for char in text)


@CELL_NAMES
def test_generate_is_reproducible_under_a_seed(cell):
    model = make_writer(cell)
    first = "".join(model.generate("ROMEO:", 60, temperature=1.0, seed=7))
    again = "".join(model.generate("ROMEO:", 60, temperature=1.0, seed=7))
    other = "".join(model.generate("ROMEO:", 60, temperature=1.0, seed=8))
    assert first == again
    assert other != first  # a random 43-character model: 60 identical draws would mean the seed is ignored


@CELL_NAMES
def test_generate_carrying_the_state_equals_rereading_the_history(cell):
    """The O(n) generator must see the same next-character logits as re-reading prime + text so far (after the
    blank line that starts a speech)."""
    model = make_writer(cell)
    prime, temperature, seed = "ROMEO:\n", 0.8, 11
    seen_logits = []
    # The classifier's output is the logits, whichever path (sequence or single step) produced them.
    hook = model.classifier.register_forward_hook(lambda module, args, output: seen_logits.append(output.clone()))
    try:
        text = "".join(model.generate(prime, 25, temperature, seed))
    finally:
        hook.remove()
    assert len(seen_logits) >= 25
    reference_generator = torch.Generator().manual_seed(seed)
    reference = ""
    with torch.no_grad():
        for step in range(25):
            history = torch.tensor([model.encode(model.lead_in(prime) + prime + text[:step])])
            logits, _ = model(history)  # (1, V), from the whole history
            assert_numerically_close(seen_logits[step], logits)
            reference += CHARACTERS[int(sample_next_char_id(logits, temperature, reference_generator))]
    assert text == reference


@pytest.mark.parametrize(("prime", "lead_in"), [("ROMEO", "\n\n"), ("\nROMEO", "\n"), ("\n\nROMEO", ""),
                                               ("\n\n\nROMEO", "")])
def test_a_prime_is_read_after_a_blank_line(prime, lead_in):
    assert make_writer("gru").lead_in(prime) == lead_in


def test_a_writer_without_newlines_reads_a_prime_as_it_is():
    writer = ShakespeareWriter(CHARACTERS.replace("\n", ""), embedding_dim=8, hidden_size=16)
    assert writer.lead_in("ROMEO") == ""
    assert len("".join(writer.generate("ROMEO", 5, seed=0))) == 5


def test_writer_encode_and_unknown_characters():
    model = make_writer("gru")
    assert model.encode("ROMEO") == [CHARACTERS.index(c) for c in "ROMEO"]
    assert model.unknown_characters("ROMEO§ZZ") == ["Z", "§"]


# ----- hw3core.text -----


def test_tokenize_drops_html_breaks_and_lower_cases():
    tokens = tokenize("Great MOVIE!<br /><br />I loved it.<br/>The END<BR>really")
    words = [t for t in tokens if t.isalnum()]
    assert words == ["great", "movie", "i", "loved", "it", "the", "end", "really"]
    assert not any("<" in t or ">" in t or "/" in t or t == "br" for t in tokens)


def test_build_vocabulary_specials_first_then_frequent_words():
    texts = ["a a a a a b b b c", "a b d d"]  # a: 6, b: 4, d: 2, c: 1
    assert SPECIAL_TOKENS == [PAD, BEGIN, OOV, END]
    vocabulary = build_vocabulary(texts, min_count=2, max_size=100)
    assert vocabulary == [PAD, BEGIN, OOV, END, "a", "b", "d"]
    assert vocabulary.index(PAD) == 0


@pytest.mark.parametrize(("max_size", "expected_words"), [(4, []), (5, ["a"]), (6, ["a", "b"]), (100, ["a", "b", "d"])])
def test_build_vocabulary_respects_max_size(max_size, expected_words):
    vocabulary = build_vocabulary(["a a a a a b b b c", "a b d d"], min_count=2, max_size=max_size)
    assert vocabulary == SPECIAL_TOKENS + expected_words
    assert len(vocabulary) <= max_size


@pytest.mark.parametrize(("min_count", "expected_words"), [(1, ["a", "b", "d", "c"]), (3, ["a", "b"]), (7, [])])
def test_build_vocabulary_respects_min_count(min_count, expected_words):
    vocabulary = build_vocabulary(["a a a a a b b b c", "a b d d"], min_count=min_count, max_size=100)
    assert vocabulary == SPECIAL_TOKENS + expected_words


def test_encode_review_wraps_in_begin_and_end_and_maps_unknown_words_to_oov():
    vocabulary = SPECIAL_TOKENS + ["good", "film"]
    word_ids = {word: i for i, word in enumerate(vocabulary)}
    ids = encode_review("Good film, GOOD<br />zebra", word_ids, max_length=100)
    assert ids == [word_ids[BEGIN], 4, 5, word_ids[OOV], 4, word_ids[OOV], word_ids[END]]  # "," is unknown too


@pytest.mark.parametrize("max_length", [2, 3, 5, 8, 50])
def test_encode_review_respects_max_length(max_length):
    vocabulary = SPECIAL_TOKENS + ["w"]
    word_ids = {word: i for i, word in enumerate(vocabulary)}
    ids = encode_review("w " * 20, word_ids, max_length)
    assert len(ids) == min(max_length, 22)
    assert ids[0] == word_ids[BEGIN] and ids[-1] == word_ids[END]
    assert ids[1:-1] == [4] * (len(ids) - 2)


@pytest.mark.parametrize(("n_words", "tail_length", "expected"), [
    (5, 2, [0, 1, 2, 3, 4]),  # fits the window (5 words for max_length 7): all of it, whatever the tail
    (9, 0, [0, 1, 2, 3, 4]),  # the first words only, as the starter code reads
    (9, 2, [0, 1, 2, 7, 8]),
    (9, 5, [4, 5, 6, 7, 8]),  # the last words only
])
def test_words_read_are_the_opening_then_the_closing_words(n_words, tail_length, expected):
    assert words_read(n_words, max_length=7, tail_length=tail_length) == expected


def test_encode_review_reads_the_words_words_read_names():
    words = [f"w{i}" for i in range(9)]
    word_ids = {word: i for i, word in enumerate(SPECIAL_TOKENS + words)}
    ids = encode_review(" ".join(words), word_ids, max_length=7, tail_length=2)
    assert ids == [word_ids[BEGIN], *(word_ids[f"w{i}"] for i in (0, 1, 2, 7, 8)), word_ids[END]]


@pytest.mark.parametrize("tail_length", [-1, 6])
def test_a_tail_longer_than_the_window_is_refused(vocabulary, tail_length):
    with pytest.raises(ValueError, match="tail_length must be from 0 to 5"):
        words_read(9, max_length=7, tail_length=tail_length)
    with pytest.raises(ValueError, match="tail_length"):
        SentimentClassifier(vocabulary, max_length=7, tail_length=tail_length)


def test_the_training_script_refuses_a_tail_longer_than_the_window_before_reading_data():
    from training import train_sentiment

    with pytest.raises(SystemExit) as refusal:  # the data file is missing too: the flags are checked first
        train_sentiment.main(["--data", "missing.csv", "--max-length", "10", "--tail-length", "9"])
    assert "--tail-length: tail_length must be from 0 to 8" in str(refusal.value.code)


def test_pad_reviews_pads_with_pad_to_the_longest_and_keeps_lengths():
    batch, lengths = pad_reviews([[1, 5, 3], [1, 3], [1, 7, 8, 9, 3]])
    assert lengths.tolist() == [3, 2, 5]
    assert batch.tolist() == [[1, 5, 3, 0, 0], [1, 3, 0, 0, 0], [1, 7, 8, 9, 3]]
    assert SPECIAL_TOKENS.index(PAD) == 0


# ----- contracts -----


def test_encode_review_refuses_a_max_length_without_room_for_begin_and_end():
    word_ids = {word: i for i, word in enumerate(SPECIAL_TOKENS + ["good"])}
    assert encode_review("good good", word_ids, 2) == [word_ids[BEGIN], word_ids[END]]
    for max_length in (1, 0, -5):  # a slice [: max_length - 2] would count from the end
        with pytest.raises(ValueError, match="at least 2"):
            encode_review("good " * 50, word_ids, max_length)


def test_the_training_script_refuses_a_max_length_below_two():
    from training import train_sentiment

    with pytest.raises(SystemExit):
        train_sentiment.main(["--data", "x.csv", "--max-length", "1"])


@pytest.mark.parametrize("sentiment_model", list(CELLS), indirect=True)
@pytest.mark.parametrize("lengths", [[0, 3], [3, 4]], ids=["zero", "past-the-padding"])
def test_sentiment_forward_refuses_lengths_outside_the_batch(sentiment_model, lengths):
    reviews = torch.randint(1, 20, (2, 3))
    with pytest.raises(ValueError, match="batch_lengths"):
        sentiment_model(reviews, torch.tensor(lengths))


class AssignmentStyleCell(nn.Module):
    """A cell as the assignment's starter writes one: only forward(x, prev_state), no sequence method.
    It borrows a project cell's weights, so both must give the same answers."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, x, prev_state=None):
        return self.cell(x, prev_state)


@pytest.mark.parametrize("cell", list(CELLS))
def test_models_take_any_assignment_style_cell(cell):
    torch.manual_seed(0)
    reference = SentimentClassification(30, 6, CELLS[cell], 8, bias=True)
    stepping = SentimentClassification(30, 6, CELLS[cell], 8, bias=True)
    stepping.load_state_dict(reference.state_dict())
    stepping.rnn = AssignmentStyleCell(stepping.rnn)
    assert not hasattr(stepping.rnn, "sequence")
    reviews, lengths = torch.randint(1, 30, (3, 7)), torch.tensor([7, 4, 1])
    assert_numerically_close(stepping(reviews, lengths), reference(reviews, lengths))

    writer = SentenceGeneration(30, 6, CELLS[cell], 8, bias=True)
    logits, state = writer(reviews)
    writer.rnn = AssignmentStyleCell(writer.rnn)
    stepped_logits, stepped_state = writer(reviews)
    assert_numerically_close(stepped_logits, logits)


# ----- dropout around the cells -----


def sentiment_and_writer(cell, dropout, vocabulary):
    torch.manual_seed(0)
    classifier = SentimentClassifier(vocabulary, cell=cell, embedding_dim=8, hidden_size=6, max_length=20,
                                     dropout=dropout)
    torch.manual_seed(0)
    writer = ShakespeareWriter(CHARACTERS, cell=cell, embedding_dim=8, hidden_size=16, dropout=dropout)
    return classifier, writer


@CELL_NAMES
def test_dropout_acts_in_training_only_and_leaves_the_weights_alone(cell, vocabulary):
    plain = sentiment_and_writer(cell, 0.0, vocabulary)
    dropped = sentiment_and_writer(cell, 0.5, vocabulary)
    reviews, lengths = pad_reviews([plain[0].encode(review) for review in REVIEWS])
    history = torch.tensor([plain[1].encode("ROMEO:\nAnd so")])
    for without, with_dropout, inputs in ((plain[0], dropped[0], (reviews, lengths)),
                                          (plain[1], dropped[1], (history,))):
        assert without.state_dict().keys() == with_dropout.state_dict().keys()  # no weights of its own
        with torch.no_grad():
            first = with_dropout.train()(*inputs)
            second = with_dropout(*inputs)
            if isinstance(first, tuple):
                first, second = first[0], second[0]
            assert not torch.equal(first, second)  # a new mask each call
            expected = without.eval()(*inputs)
            evaluated = with_dropout.eval()(*inputs)
        if isinstance(expected, tuple):
            expected, evaluated = expected[0], evaluated[0]
        assert torch.equal(evaluated, expected)  # in eval mode dropout is the identity


def test_dropout_is_saved_in_the_config_and_an_older_config_loads_without_it(vocabulary, tmp_path):
    classifier, writer = sentiment_and_writer("gru", 0.3, vocabulary)
    for model, folder in ((classifier, tmp_path / "classifier"), (writer, tmp_path / "writer")):
        model.save_pretrained(folder)
        config_file = folder / "config.json"
        config = json.loads(config_file.read_text())
        assert config["dropout"] == 0.3
        assert type(model).from_pretrained(folder, strict=True).dropout.p == 0.3
        del config["dropout"]  # as in checkpoints trained before the flag
        config_file.write_text(json.dumps(config))
        assert type(model).from_pretrained(folder, strict=True).dropout.p == 0.0
