"""Parts A and B: which PACS domain an image looks like, according to each AlexNet variant."""

from pathlib import Path

import gradio as gr
import torch
from gradio.utils import get_upload_folder
from PIL import Image, ImageOps, UnidentifiedImageError

from demos.availability import build_availability_notice
from demos.errors import InvalidInput, shown_to_user
from demos.examples import example_images
from demos.inside_domain import build_inside_views
from demos.model_store import CONCURRENCY_ID, ModelStore, Prediction
from demos.received import ReceivedUploads, received_uploads
from demos.training_info import build_training_panel
from hw3core import DOMAINS
from hw3core.alexnet import decode_transform, image_transform
from hw3core.registry import titles

# Checkpoint name -> the title shown above its result, in the order of the API's outputs.
VARIANTS = titles("domain")
# Checked from the file's header, before decoding: a small file can unpack into gigabytes.
MAX_PIXELS = 40_000_000
# The app's upload limit (app.MAX_UPLOAD) is set once for every upload, and a student's AlexNet needs 300 MB:
# an image keeps its own 10 MB limit, checked here before the file is opened.
MAX_IMAGE_BYTES = 10 * 1024 * 1024
# Greyscale with 16 or 32 bits a pixel, which Pillow clips to 8 bits rather than scales, turning it white.
WIDE_GREYSCALE = ("I", "I;16", "I;16B", "I;16L", "I;16N")

preprocess = image_transform()


def as_rgb(image: Image.Image) -> Image.Image:
    """The decoded image (an animation's first frame) upright and in 8-bit RGB."""
    ImageOps.exif_transpose(image, in_place=True)  # a camera stores a portrait photo sideways, with a tag to turn it
    if image.mode in WIDE_GREYSCALE:
        image = image.convert("I").point(lambda value: value / 257)  # 0..65535 -> 0..255
    return image.convert("RGB")


def open_image(path: str | Path | None, name: str | None = None) -> Image.Image:
    """The image at ``path`` (uploaded as ``name``) as RGB; raises InvalidInput for no file,
    a file that is not an image, or one too large to decode."""
    if path is None:
        raise InvalidInput("No image: upload one (or pick an example) first.")
    not_an_image = f"{name or Path(path).name} is not an image that can be read (PNG, JPEG, WebP, BMP, GIF...)."
    too_large = f"The image is too large: the limit is {MAX_PIXELS // 1_000_000} megapixels"
    try:
        image = Image.open(path)  # reads the header only
    except Image.DecompressionBombError:
        raise InvalidInput(f"{too_large}.") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise InvalidInput(not_an_image) from None
    with image:
        if image.width * image.height > MAX_PIXELS:
            raise InvalidInput(f"{too_large}; this one has {image.width}×{image.height} pixels.")
        try:
            return as_rgb(image)
        except (OSError, ValueError):  # a truncated or corrupt file fails only when decoded
            raise InvalidInput(not_an_image) from None


@torch.inference_mode()
def domain_probabilities(model: torch.nn.Module, image: Image.Image) -> dict[str, float]:
    probabilities = torch.softmax(model(preprocess(image)[None]), dim=-1)[0]  # (4,)
    return dict(zip(DOMAINS, probabilities.tolist(), strict=True))


def classify(image: Image.Image, models: ModelStore) -> list[Prediction]:
    """One prediction per variant, in VARIANTS order; an unavailable variant carries its problem."""
    return [models.predict(name, lambda model: domain_probabilities(model, image)) for name in VARIANTS]


def describe(prediction: Prediction) -> str:
    if prediction.problem:
        return f"⚠️ **Not available.** {prediction.problem}"
    top = max(prediction.probabilities, key=prediction.probabilities.get)
    return f"**{top.replace('_', ' ')}** · {prediction.milliseconds:.0f} ms"


def uploaded_file(value: dict | str | None) -> tuple[str | None, str | None]:
    """(path, original name) of the image input. The endpoint skips gr.Image's preprocessing, which
    would decode the file and fail on a non-image with a stack trace, so an upload arrives as
    gr.Image's file record; an example, preprocessed by gr.Examples, as its path. Either way the file
    must be one Gradio received (its upload folder): a record naming any other path of the server
    is refused, never opened."""
    path, name = (value.get("path"), value.get("orig_name")) if isinstance(value, dict) else (value, None)
    if path is not None and not Path(path).resolve().is_relative_to(Path(get_upload_folder()).resolve()):
        raise InvalidInput("Send the image as a file upload: with gradio_client, "
                           "`client.predict(handle_file('photo.jpg'), api_name='/classify_domain')`.")
    if path is not None and Path(path).is_file() and (size := Path(path).stat().st_size) > MAX_IMAGE_BYTES:
        raise InvalidInput(f"The image is too large a file: {size / 1024 / 1024:.1f} MB; the limit for an image is "
                           f"{MAX_IMAGE_BYTES // 1024 // 1024} MB.")
    return path, name


def network_sized(image: Image.Image) -> Image.Image:
    """The image as the networks see it (227x227, decode_transform's resize): what each view reads of it,
    and the same pixels when decode_transform reads it again (a resize to its own size changes nothing)."""
    return Image.fromarray(decode_transform()(image).permute(1, 2, 0).numpy())


def read_uploaded_image(upload: dict | str | None, received: ReceivedUploads) -> Image.Image:
    """The image input's value (see ``uploaded_file``) as an RGB image the size the networks see; the
    uploaded file is deleted once read (demos.received)."""
    path = upload.get("path") if isinstance(upload, dict) else upload
    return received.read_image(path, lambda: network_sized(open_image(*uploaded_file(upload))))


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
