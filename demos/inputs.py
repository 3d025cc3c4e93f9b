"""What the tabs accept, checked in one place: an uploaded image, a review, a writer's prime and settings, a
passage to inspect. Each check raises InvalidInput with what to change; the tabs and "Check your model" share
them, so a bound (docs/limits.md) is set once.
"""

import math
from pathlib import Path

from gradio.utils import get_upload_folder
from PIL import Image, ImageOps, UnidentifiedImageError

from demos.character_names import character_names
from demos.errors import InvalidInput
from demos.received import ReceivedUploads
from hw3core import ShakespeareWriter
from hw3core.alexnet import decode_image

# ----- images -----

# Checked from the file's header, before decoding: a small file can unpack into gigabytes.
MAX_PIXELS = 40_000_000
# The app's upload limit (app.MAX_UPLOAD) is set once for every upload, and a student's AlexNet needs 300 MB:
# an image keeps its own 10 MB limit, checked here before the file is opened.
MAX_IMAGE_BYTES = 10 * 1024 * 1024
# Greyscale with 16 or 32 bits a pixel, which Pillow clips to 8 bits rather than scales, turning it white.
WIDE_GREYSCALE = ("I", "I;16", "I;16B", "I;16L", "I;16N")


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
    """The image as the networks see it (227x227, decode_image's resize): what each view reads of it,
    and the same pixels when decode_image reads it again (a resize to its own size changes nothing)."""
    return Image.fromarray(decode_image(image).permute(1, 2, 0).numpy())


def read_uploaded_image(upload: dict | str | None, received: ReceivedUploads) -> Image.Image:
    """The image input's value (see ``uploaded_file``) as an RGB image the size the networks see; the
    uploaded file is deleted once read (demos.received)."""
    path = upload.get("path") if isinstance(upload, dict) else upload
    return received.read_image(path, lambda: network_sized(open_image(*uploaded_file(upload))))



# ----- reviews -----

# The models read at most 200 tokens of a review; this bounds the tokenizer's work on a pasted book.
MAX_REVIEW_CHARACTERS = 100_000

def clean_review(text: str | None) -> str:
    """The review, cut to MAX_REVIEW_CHARACTERS; raises InvalidInput if it has no text."""
    if text is None or not text.strip():
        raise InvalidInput("The review is empty: type or paste one (or pick an example) first.")
    return text[:MAX_REVIEW_CHARACTERS]



# ----- the writer -----

DEFAULT_PRIME = "ROMEO"
# The prime is read one character a step, as the text is written: bounded like the output.
MAX_PRIME_LENGTH = 1000
MAX_LENGTH = 2000
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.1, 2.0
MAX_SEED = 2**32 - 1

def _whole_number_in(value, low: int, high: int) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value == int(value) and low <= value <= high


def check_settings(length, temperature, seed) -> tuple[int, float, int | None]:
    """The length, temperature and seed as int, float and int (or None: a random seed); raises InvalidInput."""
    if not _whole_number_in(length, 1, MAX_LENGTH):
        raise InvalidInput(f"Length must be a whole number of characters from 1 to {MAX_LENGTH}, not {length}.")
    # NaN fails every comparison, so it is refused here too.
    if not (isinstance(temperature, (int, float)) and MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE):
        raise InvalidInput(f"Temperature must be from {MIN_TEMPERATURE} to {MAX_TEMPERATURE}, not {temperature}.")
    if seed is not None and not _whole_number_in(seed, 0, MAX_SEED):
        raise InvalidInput(f"The seed must be a whole number from 0 to {MAX_SEED} (blank: a random one), not {seed}.")
    return int(length), float(temperature), None if seed is None else int(seed)


def check_prime(writer: ShakespeareWriter, prime: str | None) -> str:
    if not prime:
        raise InvalidInput(f"The prime is empty: give the writer a few characters to start from, e.g. {DEFAULT_PRIME}.")
    if len(prime) > MAX_PRIME_LENGTH:
        raise InvalidInput(f"The prime is too long: at most {MAX_PRIME_LENGTH} characters, not {len(prime)}.")
    unknown = writer.unknown_characters(prime)
    if unknown:
        raise InvalidInput(f"The prime has characters the model never saw in training: {character_names(unknown)}. "
                           "Use the letters, digits and punctuation of an English play.")
    return prime



# ----- a passage to inspect -----

MAX_INSPECT_CHARACTERS = 1500


def check_passage(passage: str | None) -> str:
    """A passage for the writers' surprise views; raises InvalidInput for an empty or too long one."""
    if not passage:
        raise InvalidInput("The text is empty: write something first, or paste a passage.")
    if len(passage) > MAX_INSPECT_CHARACTERS:
        raise InvalidInput(f"The text is too long to inspect: at most {MAX_INSPECT_CHARACTERS:,} characters, "
                           f"not {len(passage):,}. Paste a shorter part.")
    return passage
