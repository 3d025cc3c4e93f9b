"""Inside the sentiment classifiers: the review read word by word, which words mattered, and the gates."""

from collections.abc import Callable

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from demos.errors import shown_to_user
from demos.model_store import CONCURRENCY_ID, ModelStore
from hw3core.explain import occlusion, prefix_curve, review_gates

# The gates drawn, in the API's order: (checkpoint, gate of its cell).
GATE_VIEWS = [("sentiment-gru", "update"), ("sentiment-lstm", "input"), ("sentiment-lstm", "forget")]
NOT_READ = "not read: outside the window"
# Word influence is scaled to the strongest word, but never to less than this change of p(positive): a model
# already certain moves by millionths, and scaling those up would paint rounding noise at full strength.
MIN_INFLUENCE_SCALE = 0.01
LINE_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c"]
# Viridis at five points (dark purple for 0, yellow for 1), interpolated here: matplotlib loads only to compare curves.
VIRIDIS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=float)
HEATMAP_WIDTH = 720  # pixels for a whole review; a short one gets wider columns
UNIT_PIXELS = 3
HOW_TO_READ = """\
**Inside the models.** Three views of how the GRU and the LSTM read the review above.

- **Word by word:** p(positive) after each word read, each point the classifier's answer for the words read up to
  that one, given exactly as a whole review is (a beginning token, the words, an end token). The last point is the
  answer above. Hover a point for its word; the axis counts the review's words. The models read at most 198 words
  (200 tokens with the beginning and end tokens): of a longer review, its opening words and then its closing ones,
  so the curve jumps over the middle, and the words skipped are greyed in the text under the curve.
- **Which words mattered:** each word replaced in turn by the unknown-word token; the colour is how much p(positive)
  fell without it (red: the word pushed towards *positive*, purple: towards *negative*), scaled for each model to its
  strongest word (or to 1 percentage point, if no word moves it that much: a model already certain moves little).
  Compare the colours within one model rather than across the two.
- **The gates, per word:** the GRU's update gate (how much of the state each word rewrites) against the LSTM's input
  gate (how much it writes) and forget gate (how much of its memory it keeps). One row per hidden unit, sorted by its
  mean, one column per token; dark 0, yellow 1. The line below is each gate's mean over the units.
"""


def spaced(tokens: list[str], categories: list) -> list[tuple[str, object]]:
    return [(f"{token} ", category) for token, category in zip(tokens, categories, strict=True)]


def heatmap(gate: np.ndarray) -> np.ndarray:
    """Gate values (T, H) in [0, 1] -> an RGB image, one row per unit (sorted by mean, highest on top)."""
    units = gate.T[np.argsort(-gate.mean(axis=0), kind="stable")]  # (H, T)
    positions = np.clip(units, 0, 1) * (len(VIRIDIS) - 1)
    rgb = np.stack([np.interp(positions, np.arange(len(VIRIDIS)), VIRIDIS[:, c]) for c in range(3)], axis=-1)
    column = max(2, HEATMAP_WIDTH // units.shape[1])
    image = Image.fromarray(rgb.round().astype(np.uint8))
    return np.asarray(image.resize((units.shape[1] * column, units.shape[0] * UNIT_PIXELS), Image.Resampling.NEAREST))


def build_inside_views(models: ModelStore, classifiers: dict[str, str], review: gr.Textbox,
                       clean_review: Callable[[str | None], str]) -> None:
    """The views, under the tab's review box. ``classifiers``: checkpoint -> title, in the API's order;
    ``clean_review``: the tab's check of the review (raises InvalidInput)."""

    def loaded(text):
        text = clean_review(text)
        models.require(classifiers)
        return text, {name: models.get(name) for name in classifiers}

    @shown_to_user
    def read_review(text):
        text, classifier = loaded(text)
        rows, read_by_all = [], None
        for name, title in classifiers.items():
            tokens, p = prefix_curve(classifier[name], text)
            read_by_all = set(tokens.read) if read_by_all is None else read_by_all & set(tokens.read)
            rows += [{"model": title, "word number": position + 1, "word": tokens.tokens[position],
                      "p(positive)": round(float(value), 4)}
                     for position, value in zip(tokens.read, p.tolist(), strict=True)]
        shown = [None if i in read_by_all else NOT_READ for i in range(len(tokens.tokens))]
        return pd.DataFrame(rows), spaced(tokens.tokens, shown)

    @shown_to_user
    def word_influence(text):
        text, classifier = loaded(text)
        views = []
        for name in classifiers:
            tokens, change = occlusion(classifier[name], text)
            scores = (change / max(float(change.abs().max()), MIN_INFLUENCE_SCALE)).tolist()
            shown = [None] * len(tokens.tokens)  # a word not read has no colour
            for position, score in zip(tokens.read, scores, strict=True):
                shown[position] = round(score, 4)
            views.append(spaced(tokens.tokens, shown))
        return tuple(views)

    @shown_to_user
    def gates(text):
        text, classifier = loaded(text)
        read = {name: review_gates(classifier[name], text) for name in classifiers}
        images, rows = [], []
        for name, gate in GATE_VIEWS:
            tokens, values = read[name]
            title = f"{classifiers[name]} {gate}"
            images.append(heatmap(values[gate].numpy()))
            rows += [{"gate": title, "token number": t, "token": token, "mean": round(float(mean), 4)}
                     for t, (token, mean) in enumerate(zip(tokens, values[gate].mean(dim=1).tolist(), strict=True))]
        return *images, pd.DataFrame(rows)

    with gr.Accordion("Inside the models", open=False):
        gr.Markdown(HOW_TO_READ)
        look = gr.Button("Look inside: read the review word by word")
        with gr.Column(elem_classes="inside-curve"):  # each section is one of the browser test's screenshots
            gr.Markdown("#### Word by word")
            curve = gr.LinePlot(x="word number", y="p(positive)", color="model", y_lim=[0, 1],
                                color_map=dict(zip(classifiers.values(), LINE_COLOURS, strict=False)),
                                tooltip=["model", "word number", "word", "p(positive)"],
                                label="p(positive) after each word")
            words = gr.HighlightedText(label="The words, as the models read them", color_map={NOT_READ: "#d0d0d0"},
                                       show_legend=True, elem_classes="scroll-box")  # app.CSS
        with gr.Column(elem_classes="inside-influence"):
            gr.Markdown("#### Which words mattered")
            with gr.Row():
                influence = [gr.HighlightedText(label=f"{title}: each word's push (red: positive, purple: negative)",
                                                show_legend=True, elem_classes="scroll-box")
                             for title in classifiers.values()]
        with gr.Column(elem_classes="inside-gates"):
            gr.Markdown("#### The gates, per word")
            with gr.Row():
                maps = [gr.Image(label=f"{classifiers[name]} {gate} gate (units × tokens)", interactive=False,
                                 format="png", height=320, min_width=220) for name, gate in GATE_VIEWS]
            means = gr.LinePlot(x="token number", y="mean", color="gate", y_lim=[0, 1],
                                color_map={f"{classifiers[name]} {gate}": colour
                                           for (name, gate), colour in zip(GATE_VIEWS, LINE_COLOURS, strict=True)},
                                tooltip=["gate", "token number", "token", "mean"], label="Mean gate value per token")
    look.click(read_review, inputs=review, outputs=[curve, words], api_name="read_review",
               concurrency_id=CONCURRENCY_ID)
    look.click(word_influence, inputs=review, outputs=influence, api_name="word_influence",
               concurrency_id=CONCURRENCY_ID)
    look.click(gates, inputs=review, outputs=[*maps, means], api_name="gates", concurrency_id=CONCURRENCY_ID)
