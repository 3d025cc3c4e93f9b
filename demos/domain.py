"""Parts A and B: which PACS domain an image looks like, according to each AlexNet variant."""


import gradio as gr
import torch
from PIL import Image

from demos.availability import build_availability_notice
from demos.errors import shown_to_user
from demos.examples import example_images
from demos.inputs import read_uploaded_image
from demos.inside_domain import build_inside_views
from demos.model_store import CONCURRENCY_ID, ModelStore, Prediction
from demos.received import received_uploads
from demos.training_info import build_training_panel
from hw3core import DOMAINS
from hw3core.alexnet import preprocess_image
from hw3core.registry import titles

# Checkpoint name -> the title shown above its result, in the order of the API's outputs.
VARIANTS = titles("domain")


@torch.inference_mode()
def domain_probabilities(model: torch.nn.Module, image: Image.Image) -> dict[str, float]:
    probabilities = torch.softmax(model(preprocess_image(image)[None]), dim=-1)[0]  # (4,)
    return dict(zip(DOMAINS, probabilities.tolist(), strict=True))


def classify(image: Image.Image, models: ModelStore) -> list[Prediction]:
    """One prediction per variant, in VARIANTS order; an unavailable variant carries its problem."""
    return [models.predict(name, lambda model: domain_probabilities(model, image)) for name in VARIANTS]


def describe(prediction: Prediction) -> str:
    if prediction.problem:
        return f"⚠️ **Not available.** {prediction.problem}"
    top = max(prediction.probabilities, key=prediction.probabilities.get)
    return f"**{top.replace('_', ' ')}** · {prediction.milliseconds:.0f} ms"


def build(models: ModelStore) -> None:
    received = received_uploads()

    @shown_to_user
    def classify_domain(upload):
        image = read_uploaded_image(upload, received)
        models.require(VARIANTS)  # an error naming what is missing, never an empty label
        predictions = classify(image, models)
        return *[p.probabilities for p in predictions], *[describe(p) for p in predictions]

    gr.Markdown(
        "Upload an image, or pick one of the drawings below. Each AlexNet variant predicts which "
        "[PACS](https://domaingeneralization.github.io/) domain it looks like: art painting, cartoon, photo or sketch."
    )
    build_availability_notice(models, VARIANTS)
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=280):
            image = gr.Image(type="filepath", image_mode=None, sources=["upload", "clipboard"], label="Image",
                             height=300)
            button = gr.Button("Classify", variant="primary")
        with gr.Column(scale=3):
            with gr.Row():
                labels, notes = [], []
                for title in VARIANTS.values():
                    with gr.Column(min_width=160):
                        labels.append(gr.Label(num_top_classes=len(DOMAINS), label=title))
                        notes.append(gr.Markdown(label=f"{title} note", elem_classes="result-note"))
    gr.on([button.click, image.upload], classify_domain, inputs=image, outputs=labels + notes,
          api_name="classify_domain", preprocess=False, concurrency_id=CONCURRENCY_ID)
    # After the endpoint: the examples' event, named after the same function, must not take its api_name.
    examples = example_images()
    gr.Examples(
        [[str(path)] for path in examples],
        inputs=image,
        outputs=labels + notes,
        fn=classify_domain,
        run_on_click=True,
        cache_examples=False,  # a Space would run them at start-up, and freeze a missing model's error
        example_labels=[path.stem for path in examples],
        label="Drawn examples (not from PACS)",
    )
    received.keep_cached(image)  # the examples' copies: a click sends them again
    build_inside_views(models, VARIANTS, image, read_image=lambda upload: read_uploaded_image(upload, received))
    build_training_panel(models, VARIANTS)
