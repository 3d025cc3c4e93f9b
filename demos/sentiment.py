"""Part C: is a movie review positive or negative? The GRU and the LSTM answer side by side."""

import gradio as gr

from demos.availability import build_availability_notice
from demos.errors import shown_to_user
from demos.inputs import MAX_REVIEW_CHARACTERS, clean_review
from demos.inside_sentiment import build_inside_views
from demos.model_store import CONCURRENCY_ID, ModelStore, Prediction
from demos.training_info import build_training_panel
from hw3core import SentimentClassifier
from hw3core.registry import titles

# Checkpoint name -> title, in the order of the API's outputs.
CLASSIFIERS = titles("sentiment")
EXAMPLES = [
    "One of the best films I have seen in years. The acting is superb, the story moving, "
    "and the ending left the whole audience in tears. Go and see it.",
    "A complete waste of two hours. The plot makes no sense, the dialogue is wooden and "
    "I nearly fell asleep halfway through. Avoid.",
    "The first half is slow and the lead is miscast, but the last forty minutes are "
    "gripping and the score is wonderful.",
    "I wanted to love this. The trailer was great. Sadly the film is a mess: boring, "
    "predictable and far too long.",
]


def sentiment_probabilities(model: SentimentClassifier, text: str) -> dict[str, float]:
    probabilities = model.predict([text])[0]  # (2,): negative, positive
    return dict(zip(model.LABELS, probabilities.tolist(), strict=True))


def score(text: str, models: ModelStore) -> list[Prediction]:
    """One prediction per model, in CLASSIFIERS order; an unavailable model carries its problem."""
    review = clean_review(text)
    return [models.predict(name, lambda model: sentiment_probabilities(model, review)) for name in CLASSIFIERS]


def describe(prediction: Prediction) -> str:
    if prediction.problem:
        return f"⚠️ **Not available.** {prediction.problem}"
    return f"{prediction.milliseconds:.1f} ms · {prediction.parameters:,} parameters"


def build(models: ModelStore) -> None:
    @shown_to_user
    def score_sentiment(text):
        clean_review(text)
        models.require(CLASSIFIERS)  # an error naming what is missing, never an empty label
        predictions = score(text, models)
        return *[p.probabilities for p in predictions], *[describe(p) for p in predictions]

    gr.Markdown("Type or paste a movie review. Both recurrent networks read up to 198 of its words: "
                "of a longer one, its opening words and then its closing ones.")
    build_availability_notice(models, CLASSIFIERS)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=280):
            review = gr.Textbox(label="Review", lines=7, max_lines=14, max_length=MAX_REVIEW_CHARACTERS,
                                placeholder="What did you think of the film?")
            button = gr.Button("Score", variant="primary")
        with gr.Column(scale=2):
            with gr.Row():
                labels, notes = [], []
                for title in CLASSIFIERS.values():
                    with gr.Column(min_width=160):
                        labels.append(gr.Label(num_top_classes=2, label=title))
                        notes.append(gr.Markdown(label=f"{title} note", elem_classes="result-note"))
    button.click(score_sentiment, inputs=review, outputs=labels + notes, api_name="score_sentiment",
                 concurrency_id=CONCURRENCY_ID)
    # After the endpoint: the examples' event, named after the same function, must not take its api_name.
    gr.Examples([[text] for text in EXAMPLES], inputs=review, outputs=labels + notes, fn=score_sentiment,
                run_on_click=True, cache_examples=False, label="Example reviews")
    build_inside_views(models, CLASSIFIERS, review, clean_review)
    build_training_panel(models, CLASSIFIERS)
