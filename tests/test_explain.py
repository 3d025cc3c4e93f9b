"""Inside the models: the methods of hw3core.explain held against independent computations, and the
views' endpoints through gradio_client."""

import copy
import inspect
import math
import threading

import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from conftest import assert_numerically_close, running_app, tiny_models
from demos.examples import example_images
from demos.inputs import MAX_INSPECT_CHARACTERS
from demos.inside_domain import DOMAIN_COLOURS
from demos.inside_sentiment import GATE_VIEWS, MIN_INFLUENCE_SCALE, NOT_READ
from hw3core import ALEXNET_VARIANTS, DOMAINS, GRUCell, LSTMCell, SentimentClassifier
from hw3core.checkpoints import load_local
from hw3core.explain import (
    cell_gates,
    grad_cam,
    kernel_grid,
    last_conv_index,
    layer_table,
    occlusion,
    prefix_curve,
    read_characters,
    review_gates,
    split_at_last_conv,
)
from hw3core.text import BEGIN, END

REVIEW = "the film was good , not boring . i loved it"
GRIDS = {"alexnet": 13, "alexnet-large-kernel": 6, "alexnet-avg-pooling": 13}


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return tiny_models()


def images(count: int = 2) -> torch.Tensor:
    return torch.randn(count, 3, 227, 227, generator=torch.Generator().manual_seed(1))


# ----- AlexNets -----


@pytest.mark.parametrize("name", sorted(ALEXNET_VARIANTS))
def test_the_two_halves_make_the_model_and_end_on_the_last_convolution_grid(small, name):
    model = small[name].eval()
    features, head = split_at_last_conv(model)
    x = images()
    with torch.no_grad():
        activations = features(x)
        assert_numerically_close(head(activations), model(x))
    assert activations.shape[1:] == (256, GRIDS[name], GRIDS[name])
    assert isinstance(list(model.children())[last_conv_index(model) - 2], torch.nn.Conv2d)


def grad_cam_with_hooks(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The textbook way, on a private copy: a forward hook keeps the last convolution's output, one
    backward pass per class fills its .grad. (N, C, h, w)."""
    model = copy.deepcopy(model)
    kept = {}

    def keep(module, inputs, output):
        output.retain_grad()
        kept["activations"] = output

    list(model.children())[last_conv_index(model) - 1].register_forward_hook(keep)
    maps = []
    for c in range(model.num_classes):
        model.zero_grad()
        model(x)[:, c].sum().backward()
        activations = kept["activations"]
        weights = activations.grad.mean(dim=(2, 3), keepdim=True)
        maps.append(torch.relu((weights * activations).sum(dim=1)).detach())
    return torch.stack(maps, dim=1)


@pytest.mark.parametrize("name", sorted(ALEXNET_VARIANTS))
def test_grad_cam_equals_the_hooked_computation_for_every_class(small, name):
    model = small[name].eval()
    x = images()
    cam = grad_cam(model, x)
    expected = grad_cam_with_hooks(model, x)
    assert cam.maps.shape == (2, len(DOMAINS), GRIDS[name], GRIDS[name])
    assert expected.amax() > 0  # a map of zeros everywhere would make the comparison empty
    # Relative to the map's peak: where the channels' terms cancel, a value near zero keeps only rounding.
    # Each map value sums 256 channels' terms, so it may carry 256 roundings of float32 at the peak's scale.
    assert_numerically_close(cam.maps, expected, roundings=256)
    with torch.no_grad():
        torch.testing.assert_close(cam.probabilities, torch.softmax(model(x), dim=-1))


def test_grad_cam_leaves_the_shared_model_as_it_was_and_concurrent_calls_agree(small):
    model = small["alexnet"].eval()
    x = images(1)
    alone = grad_cam(model, x).maps
    results = [None] * 4

    def run(i):
        results[i] = grad_cam(model, x).maps

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(results))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        assert_numerically_close(result, alone, roundings=256)
    with torch.no_grad():  # a caller that switched gradients off gets the same maps
        assert_numerically_close(grad_cam(model, x).maps, alone, roundings=256)
    assert all(p.grad is None for p in model.parameters())
    assert not any(module._forward_hooks or module._backward_hooks for module in model.modules())


def test_kernel_grid_scales_each_kernel_symmetrically_around_zero():
    weight = torch.zeros(14, 3, 2, 2)
    weight[0, 0, 0, 0], weight[0, 1, 1, 1] = 0.5, -0.25  # its own scale: 0.5
    weight[13, 2, 0, 1] = -4.0  # row 1, column 1 with 12 columns
    grid = kernel_grid(weight, columns=12, gap=1)
    assert grid.shape == (2 * 3 - 1, 12 * 3 - 1, 3) and grid.dtype == torch.uint8
    assert grid[0, 0].tolist() == [255, 128, 128]  # +max -> full, 0 -> mid-grey
    assert grid[1, 1].tolist() == [128, 64, 128]  # -max/2 -> a quarter
    assert grid[3, 3 + 1].tolist() == [128, 128, 0]  # -max -> none
    assert grid[2, 0].tolist() == [255, 255, 255]  # the gap


@pytest.mark.parametrize("name", sorted(ALEXNET_VARIANTS))
def test_layer_table_follows_one_image_through_every_layer(small, name):
    model = small[name]
    rows = layer_table(model)
    assert [row.name for row in rows] == [name for name, _ in model.named_children()]
    assert rows[-1].output_shape == (len(DOMAINS),)
    assert rows[last_conv_index(model) - 1].output_shape == (256, GRIDS[name], GRIDS[name])
    assert sum(row.parameters for row in rows) == sum(p.numel() for p in model.parameters())


# ----- sentiment -----


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_the_prefix_curve_is_the_classifier_on_each_prefix_and_ends_on_the_review(small, cell):
    model = small[f"sentiment-{cell}"]
    tokens, p = prefix_curve(model, REVIEW)
    words = REVIEW.split()
    assert tokens.tokens == words and len(p) == len(words)
    assert p[-1].item() == pytest.approx(model.predict([REVIEW])[0, 1].item(), abs=1e-6)
    for k in (1, 4, 7):  # a prefix is a review in its own right
        assert p[k - 1].item() == pytest.approx(model.predict([" ".join(words[:k])])[0, 1].item(), abs=1e-6)
    assert len(set(p.tolist())) > 1  # the curve moves, or the checks above say little


def test_a_long_review_is_read_as_its_opening_and_closing_words(small):
    model = small["sentiment-gru"]  # 200 tokens: 198 words, the last 64 of them from the review's end
    review = " ".join(["good"] * 236 + ["bad"] * 64)  # 300 words; only the last 64 are bad ones
    tokens, p = prefix_curve(model, review)
    assert tokens.read == [*range(134), *range(236, 300)] and len(p) == 198
    assert p[-1].item() == pytest.approx(model.predict([review])[0, 1].item(), abs=1e-6)
    # The model is given those words and nothing else: the review cut down to them reads the same.
    cut = " ".join(tokens.words())
    assert model.predict([cut])[0, 1].item() == pytest.approx(p[-1].item(), abs=1e-6)
    assert model.predict([" ".join(tokens.tokens[:198])])[0, 1].item() != pytest.approx(p[-1].item(), abs=1e-6)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_occluding_a_word_already_out_of_vocabulary_changes_nothing(small, cell):
    model = small[f"sentiment-{cell}"]
    review = "the film was zebra good"
    assert "zebra" not in model.word_ids
    tokens, change = occlusion(model, review)
    assert change[3].item() == 0.0
    assert change.abs().max() > 0
    # The others: the review's p(positive) less that of the review with an unknown word in their place.
    whole = model.predict([review])[0, 1].item()
    for i in range(len(tokens.tokens)):
        replaced = " ".join("qwerty" if j == i else w for j, w in enumerate(tokens.tokens))
        assert change[i].item() == pytest.approx(whole - model.predict([replaced])[0, 1].item(), abs=1e-6)


def test_gates_are_what_each_step_does(small):
    """The gates, read from outside through the cell's own step: with the candidate (GRU) or g (LSTM)
    saturated at +1 and -1, the new state differs by twice the update / input gate; with the old cell
    state 1 instead of 0, the LSTM's new one differs by the forget gate."""
    torch.manual_seed(3)
    xs = torch.randn(6, 2, 5)
    for cell in (GRUCell(5, 4, bias=True), LSTMCell(5, 4, bias=True)):
        gates = cell_gates(cell, xs)
        H = cell.hidden_size
        with torch.no_grad():
            hs, _ = cell.sequence(xs)
            before = torch.cat([torch.zeros(1, 2, H), hs[:-1]])
            cs = [torch.zeros(2, H)]
            for t in range(len(xs)):
                projected = cell.project_inputs(xs[t])
                big = torch.zeros_like(projected)
                big[:, 2 * H : 3 * H] = 1000.0  # the candidate's (GRU) or g's (LSTM) pre-activation
                if isinstance(cell, GRUCell):
                    up, down = cell.recur(projected + big, before[t]), cell.recur(projected - big, before[t])
                    torch.testing.assert_close(gates["update"][t], (up - down) / 2)
                else:
                    state = (before[t], cs[-1])
                    up, down = cell.recur(projected + big, state)[1], cell.recur(projected - big, state)[1]
                    torch.testing.assert_close(gates["input"][t], (up - down) / 2)
                    ones = cell.recur(projected, (before[t], torch.ones(2, H)))[1]
                    zeros = cell.recur(projected, (before[t], torch.zeros(2, H)))[1]
                    torch.testing.assert_close(gates["forget"][t], ones - zeros)
                    cs.append(cell.recur(projected, state)[1])


def test_review_gates_cover_every_token_read(small):
    tokens, gates = review_gates(small["sentiment-lstm"], REVIEW)
    assert tokens == [BEGIN, *REVIEW.split(), END]
    assert set(gates) == {"input", "forget"}
    assert all(g.shape == (len(tokens), 16) and 0 <= g.min() and g.max() <= 1 for g in gates.values())
    assert set(review_gates(small["sentiment-gru"], REVIEW)[1]) == {"update"}


# ----- writer -----


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_top_five_and_surprise_match_a_direct_softmax_at_every_position(small, cell):
    writer = small[f"shakespeare-{cell}"]
    text = "ROMEO:\nWhat light"
    reading = read_characters(writer, text)
    assert reading.surprise.shape == (len(text) - 1,) and reading.top_ids.shape == (len(text), 5)
    assert (reading.top_probabilities.sum(dim=1) <= 1 + 1e-6).all()
    for t in range(1, len(text) + 1):  # after text[:t], the writer's own next-character distribution
        with torch.no_grad():
            logits, _ = writer(torch.tensor([writer.encode(writer.lead_in(text) + text[:t])]))  # as a prime is read
        probabilities = torch.softmax(logits[0], dim=-1)
        top = probabilities.topk(5)
        torch.testing.assert_close(reading.top_probabilities[t - 1], top.values)
        assert reading.top_ids[t - 1].tolist() == top.indices.tolist()
        if t < len(text):
            actual = probabilities[writer.char_ids[text[t]]]
            assert reading.surprise[t - 1].item() == pytest.approx(-math.log(actual), abs=1e-5)


# ----- the endpoints -----


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def confidences(label: dict) -> dict[str, float]:
    return {item["label"]: item["confidence"] for item in label["confidences"]}


def test_the_api_lists_the_views_under_their_names(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    counts = {name: (len(endpoints[name]["parameters"]), len(endpoints[name]["returns"]))
              for name in ("/explain_domain", "/first_layers", "/read_review", "/word_influence", "/gates",
                           "/inspect_text")}
    assert counts == {"/explain_domain": (1, 3), "/first_layers": (0, 6), "/read_review": (1, 2),
                      "/word_influence": (1, 2), "/gates": (1, 4), "/inspect_text": (2, 2)}
    assert all(r["label"] for name in counts for r in endpoints[name]["returns"])
    assert endpoints["/inspect_text"]["parameters"][1]["parameter_default"] == "GRU"


def test_explain_domain_draws_a_map_per_domain_for_each_variant(client):
    views = client.predict(handle_file(example_images()[0]), api_name="/explain_domain")
    assert len(views) == len(GRIDS)
    for view in views:
        assert Image.open(view["image"]).size == (227, 227)
        assert [a["label"] for a in view["annotations"]] == list(DOMAIN_COLOURS)
        masks = [Image.open(a["image"]) for a in view["annotations"]]
        assert all(mask.size == (227, 227) and mask.mode == "RGBA" for mask in masks)
        assert max(mask.getchannel("A").getextrema()[1] for mask in masks) > 0


def test_first_layers_shows_each_variants_kernels_and_grid(client):
    *kernels, alexnet, large_kernel, avg_pooling = client.predict(api_name="/first_layers")
    sizes = [Image.open(path).size for path in kernels]
    assert len(sizes) == 3 and sizes[0] == sizes[2] != sizes[1]
    assert "| 256×13×13 |" in alexnet and "| 256×13×13 |" in avg_pooling and "| 256×6×6 |" in large_kernel
    assert "| `conv1` conv 21×21, 96, stride 8, pad 1 | 96×27×27 |" in large_kernel
    assert "| `conv1` conv 11×11, 96, stride 4 | 96×55×55 |" in alexnet
    assert "| `avgpool13` average pool 3×3, stride 2 | 256×6×6 |" in avg_pooling


def test_read_review_ends_each_curve_on_the_scored_answer(client):
    curve, words = client.predict(REVIEW, api_name="/read_review")
    gru, lstm, *_ = client.predict(REVIEW, api_name="/score_sentiment")
    rows = [dict(zip(curve["columns"], row, strict=True)) for row in curve["data"]]
    for title, label in (("GRU", gru), ("LSTM", lstm)):
        points = [row for row in rows if row["model"] == title]
        assert [row["word"] for row in points] == REVIEW.split()
        assert points[-1]["p(positive)"] == pytest.approx(confidences(label)["positive"], abs=1e-4)
    assert [entry["token"] for entry in words] == [f"{word} " for word in REVIEW.split()]


def test_read_review_greys_the_words_outside_the_window(client):
    curve, words = client.predict(" ".join(["good", "film"] * 120), api_name="/read_review")
    assert len(curve["data"]) == 2 * 198
    rows = [dict(zip(curve["columns"], row, strict=True)) for row in curve["data"]]
    for title in ("GRU", "LSTM"):  # each point at the review's own word number: the curve jumps the skipped middle
        assert [row["word number"] for row in rows if row["model"] == title] == [*range(1, 135), *range(177, 241)]
    # The fixture's models read 134 words from the start and 64 from the end: the middle 42 are skipped.
    assert [entry["class_or_confidence"] for entry in words] == [None] * 134 + [NOT_READ] * 42 + [None] * 64


def test_word_influence_leaves_the_words_not_read_uncoloured(client):
    review = " ".join(["good", "film"] * 120)
    for view in client.predict(review, api_name="/word_influence"):
        scores = [entry["class_or_confidence"] for entry in view]
        assert len(scores) == 240 and scores[134:176] == [None] * 42
        assert None not in scores[:134] + scores[176:] and max(abs(s) for s in scores[176:]) > 0


def test_word_influence_scores_each_word_for_each_model(client, checkpoints):
    review = "the film was zebra good"
    for view, name in zip(client.predict(review, api_name="/word_influence"), ("sentiment-gru", "sentiment-lstm"),
                          strict=True):
        scores = [entry["class_or_confidence"] for entry in view]
        assert [entry["token"].strip() for entry in view] == review.split()
        assert scores[3] == 0  # out of the vocabulary already: replacing it changes nothing
        _, change = occlusion(load_local(SentimentClassifier, checkpoints / name), review)
        scale = max(float(change.abs().max()), MIN_INFLUENCE_SCALE)  # the strongest word, unless it is tiny
        assert scores == pytest.approx((change / scale).tolist(), abs=1e-4)
        assert max(abs(s) for s in scores) > 0


def test_gates_draws_each_gate_and_its_mean(client):
    *maps, means = client.predict(REVIEW, api_name="/gates")
    tokens = len(REVIEW.split()) + 2
    assert [Image.open(path).size[1] for path in maps] == [16 * 3] * 3  # 16 units, 3 pixels each
    rows = means["data"]
    assert len(rows) == len(GATE_VIEWS) * tokens
    assert {row[0] for row in rows} == {"GRU update", "LSTM input", "LSTM forget"}


@pytest.mark.parametrize("cell", ["GRU", "LSTM"])
def test_inspect_text_colours_each_character_and_gives_five_candidates(client, cell):
    text = "ROMEO:\nWhat light"
    characters, following = client.predict(text, cell, api_name="/inspect_text")
    assert "".join(entry["token"] for entry in characters) == text.replace("\n", "↵\n")
    scores = [entry["class_or_confidence"] for entry in characters]
    assert scores[0] is None and all(0 <= s <= 1 for s in scores[1:])
    candidates = confidences(following)
    assert len(candidates) == 5 and sum(candidates.values()) <= 1 + 1e-6


@pytest.mark.parametrize(
    ("api_name", "arguments", "words"),
    [
        ("/explain_domain", [None], "No image"),
        ("/read_review", [" "], "empty"),
        ("/word_influence", [""], "empty"),
        ("/gates", [""], "empty"),
        ("/inspect_text", ["", "GRU"], "empty"),
        ("/inspect_text", ["ROMEO ☃", "GRU"], "never saw"),
        ("/inspect_text", ["R" * (MAX_INSPECT_CHARACTERS + 1), "GRU"], f"at most {MAX_INSPECT_CHARACTERS:,}"),
    ],
)
def test_invalid_input_to_a_view_gives_a_message(client, api_name, arguments, words):
    with pytest.raises(AppError) as error:
        client.predict(*arguments, api_name=api_name)
    assert words.lower() in error.value.message.lower() and "Traceback" not in error.value.message


def test_every_view_names_the_missing_models_and_how_to_train_them(tmp_path):
    with running_app(tmp_path) as url:
        client = Client(url, verbose=False)
        calls = [("/explain_domain", [handle_file(example_images()[0])], "--variant alexnet-large-kernel"),
                 ("/first_layers", [], "--variant alexnet"),
                 ("/read_review", [REVIEW], "--cell lstm"),
                 ("/gates", [REVIEW], "--cell gru"),
                 ("/inspect_text", ["ROMEO", "LSTM"], "LSTM writer is not available")]
        for api_name, arguments, words in calls:
            with pytest.raises(AppError) as error:
                client.predict(*arguments, api_name=api_name)
            assert words in error.value.message, api_name



def test_the_benchmark_times_every_view():
    from training import benchmark

    # Its writer input is the longest the view reads (training/ may not import demos/ to ask).
    assert inspect.signature(benchmark.bench_views).parameters["characters"].default == MAX_INSPECT_CHARACTERS
    rows = benchmark.bench_views(torch.device("cpu"), repeats=1, review_words=5, characters=20)
    assert [row["view"] for row in rows] == ["explain_domain", "first_layers", "read_review", "word_influence",
                                             "gates", "inspect_text", "inspect_text"]
    assert all(row["seconds"] > 0 for row in rows)
    table = benchmark.format_table({"machine": "test", "torch": torch.__version__, "cells": [], "sentiment": [],
                                    "writer": {"characters_per_s_trained": 1.0, "write_1000_carried_s": 1.0,
                                               "write_1000_reread_s": 1.0}, "alexnet": [], "views": rows})
    assert "| /gates | 5 words, GRU and LSTM |" in table and "| /inspect_text | 20 characters, LSTM writer |" in table
