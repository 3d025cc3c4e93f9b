"""Every kind of input a public Space gets, sent over real HTTP: each is refused with a clear message
or answered sanely, and after each refusal the server still answers a good request.

The plainest cases (no image, a text file, an 8000x8000 image, an empty review, an empty prime,
a negative length, NaN settings) are in test_app.py.
"""

import io
import math
import struct
import zlib

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image, ImageDraw, ImageOps

import app
from demos import inputs
from demos.errors import InvalidInput
from hw3core import DOMAINS

UPLOAD_LIMIT = 300 * 1024 * 1024  # app.MAX_UPLOAD ("300mb") in bytes, as Gradio reads it
GOOD = {
    "/classify_domain": lambda files: [handle_file(files["drawing.png"])],
    "/score_sentiment": lambda files: ["The film was great, I loved it."],
    "/generate": lambda files: ["ROMEO", 5, 1.0, 0],
}


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False, analytics_enabled=False)


def drawing(size=(96, 64)) -> Image.Image:
    """An RGB picture that looks different turned or flipped: a gradient, a disc and a corner block."""
    gradient = np.linspace(0, 255, size[0], dtype=np.uint8)[None, :, None].repeat(size[1], 0)
    image = Image.fromarray(np.concatenate([gradient, gradient[:, ::-1], np.full_like(gradient, 90)], axis=2))
    draw = ImageDraw.Draw(image)
    draw.ellipse((size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2 + 10), fill=(250, 220, 0))
    draw.rectangle((0, 0, size[0] // 5, size[1] // 5), fill="black")
    return image


def png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header says width x height: a decoder that trusted it would allocate that much."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    # signature (8 bytes), IHDR length (4), b"IHDR" (4), width, height (4 + 4), 5 more bytes, CRC of type + data
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(data[12:29]))
    return bytes(data)


def jpeg_turned(orientation: int) -> bytes:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    drawing().save(buffer, "JPEG", exif=exif.tobytes())
    return buffer.getvalue()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Every upload of these tests, by file name."""
    folder = tmp_path_factory.mktemp("hostile-uploads")
    made = {}

    def save(name, image=None, data=None, **options):
        path = folder / name
        if image is not None:
            image.save(path, **options)
        else:
            path.write_bytes(data)
        made[name] = path

    picture = drawing()
    save("drawing.png", picture)
    jpeg = io.BytesIO()
    picture.save(jpeg, "JPEG")
    # Not images, or not whole ones.
    save("empty.png", data=b"")
    save("cut.jpg", data=jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    save("letter.jpg", data=b"Dear reviewer,\nthis is a text file with an image's name.\n")
    save("garbage.png", data=b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    # Headers that promise more pixels than the app decodes: Pillow's own limit, then the app's.
    save("bomb-20000x20000.png", data=png_claiming(20000, 20000))
    save("bomb-7000x7000.png", data=png_claiming(7000, 7000))
    save("over-the-image-limit.png", data=b"\x89PNG\r\n\x1a\n" + bytes(inputs.MAX_IMAGE_BYTES))
    save("over-the-upload-limit.png", data=b"\x89PNG\r\n\x1a\n")
    with open(folder / "over-the-upload-limit.png", "r+b") as file:
        file.truncate(UPLOAD_LIMIT + 1)  # sparse: 300 MB of zeros that take no disk
    # Sizes: the smallest, a thin strip, and exactly the pixel limit (a few kB: one grey with a line).
    save("1x1.png", Image.new("RGB", (1, 1), "orange"))
    save("1x4000.png", Image.new("RGB", (1, 4000), "navy"))
    at_limit = Image.new("L", (8000, inputs.MAX_PIXELS // 8000), 200)
    ImageDraw.Draw(at_limit).line((0, 0, 8000, at_limit.height), fill=0, width=40)
    save("at-the-pixel-limit.png", at_limit)
    # Modes.
    for mode in ("1", "L", "LA", "P", "RGBA"):
        save(f"mode-{mode}.png", picture.convert(mode))
    save("mode-CMYK.jpg", picture.convert("CMYK"))
    save("mode-CMYK.tif", picture.convert("CMYK"))
    grey = np.asarray(picture.convert("L"))
    save("grey-8-bit.png", Image.fromarray(grey))
    save("grey-16-bit.png", Image.fromarray(grey.astype(np.uint16) * 257))  # I;16, the same values scaled
    save("grey-16-bit.tif", Image.fromarray(grey.astype(np.uint16) * 257))
    # Turned by an EXIF tag (3: upside down, 6 and 8: a quarter turn), and what the eye sees.
    for orientation in (3, 6, 8):
        save(f"exif-{orientation}.jpg", data=jpeg_turned(orientation))
        save(f"exif-{orientation}-upright.png", ImageOps.exif_transpose(Image.open(made[f"exif-{orientation}.jpg"])))
    # An animation whose frames differ; what it shows first, and last.
    frames = [drawing(), drawing().transpose(Image.Transpose.ROTATE_180), Image.new("RGB", (96, 64), "white")]
    save("animated.gif", frames[0], save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(made["animated.gif"]) as gif:
        save("animated-first-frame.png", gif.convert("RGB"))
        gif.seek(gif.n_frames - 1)
        save("animated-last-frame.png", gif.convert("RGB"))
    return made


def confidences(label: dict) -> dict[str, float]:
    return {item["label"]: item["confidence"] for item in label["confidences"]}


def assert_distribution(label: dict, classes) -> None:
    probabilities = confidences(label)
    assert set(probabilities) == set(classes)
    assert math.isclose(sum(probabilities.values()), 1, abs_tol=1e-4)
    assert label["label"] == max(probabilities, key=probabilities.get)


def classify(client, path) -> list[dict]:
    """The three variants' labels, each checked to be a distribution over the domains."""
    outputs = client.predict(handle_file(path), api_name="/classify_domain")
    for label in outputs[:3]:
        assert_distribution(label, DOMAINS)
    return outputs[:3]


def same_answers(first: list[dict], second: list[dict]) -> bool:
    return all(
        math.isclose(confidences(a)[domain_], confidences(b)[domain_], abs_tol=1e-6)
        for a, b in zip(first, second, strict=True) for domain_ in DOMAINS
    )


def assert_refused(client, files, api_name, arguments, *words) -> str:
    """The request gets a message with each of ``words``, then a good request is still answered."""
    with pytest.raises(AppError) as error:
        client.predict(*arguments, api_name=api_name)
    message = error.value.message
    for word in words:
        assert word.lower() in message.lower(), message
    assert "Traceback" not in message
    assert client.predict(*GOOD[api_name](files), api_name=api_name)
    return message


# ----- images -----


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("empty.png", ["empty.png", "not an image"]),
        ("cut.jpg", ["cut.jpg", "not an image"]),
        ("letter.jpg", ["letter.jpg", "not an image"]),
        ("garbage.png", ["garbage.png", "not an image"]),
        ("bomb-20000x20000.png", ["too large", "40 megapixels"]),
        ("bomb-7000x7000.png", ["too large", "7000×7000"]),
    ],
)
def test_images_that_cannot_be_read_are_refused(client, files, name, words):
    # The bombs carry one pixel of data: only a check of the header, before decoding, says "too large".
    assert_refused(client, files, "/classify_domain", [handle_file(files[name])], *words)


def test_an_upload_over_the_size_limit_is_refused_by_the_client_and_by_the_server(client, files, app_url):
    assert app.MAX_UPLOAD == "300mb"  # a student's dense AlexNet (Check your model) is 233 MB
    path = files["over-the-upload-limit.png"]
    with pytest.raises(ValueError, match=f"exceeds the maximum file size of {UPLOAD_LIMIT} bytes"):
        client.predict(handle_file(path), api_name="/classify_domain")
    # A client that does not check: the server answers 413 with the limit, before the handler sees it.
    with open(path, "rb") as upload:
        response = httpx.post(f"{app_url}gradio_api/upload", files={"files": (path.name, upload, "image/png")},
                              timeout=60)
    assert response.status_code == 413 and f"{UPLOAD_LIMIT} bytes" in response.text
    assert client.predict(*GOOD["/classify_domain"](files), api_name="/classify_domain")


def test_an_image_over_its_own_10_mb_limit_is_refused_by_the_handler(client, files):
    assert_refused(client, files, "/classify_domain", [handle_file(files["over-the-image-limit.png"])],
                   "too large a file", "the limit for an image is 10 MB")


def test_a_path_on_the_server_is_not_opened_as_an_upload(client, files, app_url):
    """The endpoint reads the file record raw (no gr.Image preprocessing): Gradio must still refuse paths
    that no user uploaded."""
    for path in ("/etc/passwd", str(files["drawing.png"])):
        record = {"path": path, "meta": {"_type": "gradio.FileData"}}
        event = httpx.post(f"{app_url}gradio_api/call/classify_domain", json={"data": [record]}, timeout=30)
        answer = httpx.get(f"{app_url}gradio_api/call/classify_domain/{event.json()['event_id']}", timeout=30)
        assert "event: error" in answer.text and "event: complete" not in answer.text
    assert client.predict(*GOOD["/classify_domain"](files), api_name="/classify_domain")


@pytest.mark.parametrize(
    "name",
    ["1x1.png", "1x4000.png", "at-the-pixel-limit.png", "mode-1.png", "mode-L.png", "mode-LA.png", "mode-P.png",
     "mode-RGBA.png", "mode-CMYK.jpg", "mode-CMYK.tif"],
)
def test_images_of_any_size_and_mode_within_the_limits_are_classified(client, files, name):
    classify(client, files[name])


@pytest.mark.parametrize("name", ["grey-16-bit.png", "grey-16-bit.tif"])
def test_16_bit_greyscale_is_scaled_to_8_bits_not_clipped(client, files, name):
    assert same_answers(classify(client, files[name]), classify(client, files["grey-8-bit.png"]))


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_a_photo_turned_by_its_exif_tag_is_classified_as_it_is_seen(client, files, orientation):
    turned = classify(client, files[f"exif-{orientation}.jpg"])
    assert same_answers(turned, classify(client, files[f"exif-{orientation}-upright.png"]))


def test_an_animated_gif_is_classified_by_its_first_frame(client, files):
    answer = classify(client, files["animated.gif"])
    assert same_answers(answer, classify(client, files["animated-first-frame.png"]))
    assert not same_answers(answer, classify(client, files["animated-last-frame.png"]))  # the frames do matter


# ----- reviews -----


@pytest.mark.parametrize(
    "review",
    [
        "great",
        "!",
        ("I loved this film, the acting was great. " * 30_000)[:1_000_000],  # 1 MB, cut to the limit
        "x" * 1_000_000,  # 1 MB without a space
        "<html><script>alert('hi')</script><p>A <b>great</b> film.<br/><br />Loved it.</p></html>",
        "😍🎬🍿👍🏽 ❤️‍🔥",
        "这部电影非常好看。 فيلم رائع جدا. Отличный фильм! बहुत अच्छी फिल्म है।",
        "good\u200b\x00film\u202e tluser",  # zero-width, NUL and right-to-left override characters
    ],
    ids=["one-word", "one-mark", "1MB", "1MB-one-word", "html", "emoji", "other-scripts", "control-characters"],
)
def test_any_review_text_gets_both_labels(client, review):
    gru, lstm, *notes = client.predict(review, api_name="/score_sentiment")
    for label in (gru, lstm):
        assert_distribution(label, ("positive", "negative"))
    assert all("parameters" in note for note in notes)


@pytest.mark.parametrize("review", [None, "\u3000\u00a0\u2003\n"], ids=["none", "unicode-spaces"])
def test_a_review_with_no_text_is_refused(client, files, review):
    assert_refused(client, files, "/score_sentiment", [review], "review is empty")


# ----- generation -----


def test_a_prime_with_unknown_characters_names_them(client, files):
    message = assert_refused(client, files, "/generate", ["ROMEO ☃ é 😀", 10, 1.0, 0], "never saw")
    assert all(repr(char) in message for char in "☃é😀")


def test_a_character_that_draws_nothing_is_named_by_its_code_point(client, files):
    """An emoji is often followed by a variation selector, which in quotes reads as '' (nothing)."""
    message = assert_refused(client, files, "/generate", ["ROMEO \u2764\ufe0f", 10, 1.0, 0], "never saw")
    assert "'\u2764'" in message and "U+FE0F VARIATION SELECTOR-16" in message
    assert repr("\ufe0f") not in message


def test_a_prime_of_many_unknown_characters_gets_a_short_message(client, files):
    prime = "".join(chr(0x4E00 + i) for i in range(500))
    message = assert_refused(client, files, "/generate", [prime, 10, 1.0, 0], "never saw", "and 490 more")
    assert len(message) < 300


@pytest.mark.parametrize(
    ("settings", "word"),
    [
        (["ROMEO", 0, 1.0, 0], "minimum"),
        (["ROMEO", 10**12, 1.0, 0], "maximum"),
        (["ROMEO", 10, 1e-9, 0], "minimum"),
        (["ROMEO", 10, 1e308, 0], "maximum"),
        (["ROMEO", 10, 1.0, inputs.MAX_SEED + 1], "maximum"),
        (["ROMEO", 10, 1.0, 2**63 + 1], "maximum"),
        (["ROMEO", 10, 1.0, 2**64], "maximum"),
        ([None, 10, 1.0, 0], "prime is empty"),
        (["ROMEO " * 200, 10, 1.0, 0], f"at most {inputs.MAX_PRIME_LENGTH} characters"),
    ],
    ids=["length-0", "length-huge", "temperature-tiny", "temperature-huge", "seed-over-max", "seed-over-2**63",
         "seed-2**64", "no-prime", "prime-too-long"],
)
def test_generation_settings_out_of_range_are_refused(client, files, settings, word):
    assert_refused(client, files, "/generate", settings, word)


@pytest.mark.parametrize(
    "settings",
    [
        [" ", 10, 1.0, 0],
        ["R" * inputs.MAX_PRIME_LENGTH, 1, inputs.MAX_TEMPERATURE, inputs.MAX_SEED],
        ["ROMEO", inputs.MAX_LENGTH, inputs.MIN_TEMPERATURE, None],  # blank seed: a random one
    ],
    ids=["space-prime", "longest-prime-hottest", "longest-text-coldest"],
)
def test_generation_at_the_limits_writes_the_text(client, settings):
    prime, length, *_ = settings
    text = client.predict(*settings, api_name="/generate")
    assert text.startswith(prime) and len(text) == len(prime) + length


@pytest.mark.parametrize(
    "settings",
    [(10, -math.inf, 0), (math.inf, 1.0, 0), (10, 1.0, math.inf), (10, 1.0, 2**63), (10, 1.0, 1e300),
     (10, "1.0", 0)],
)
def test_settings_check_refuses_what_the_slider_would_not_send(settings):
    with pytest.raises(InvalidInput):
        inputs.check_settings(*settings)


# ----- malformed API calls -----


@pytest.mark.parametrize(
    ("api_name", "arguments"),
    [("/generate", ["ROMEO", "ten", 1.0, 0]), ("/generate", ["ROMEO", 10, "hot", 0]),
     ("/generate", ["ROMEO", 10, 1.0, "seed"])],
    ids=["text-length", "text-temperature", "text-seed"],
)
def test_values_of_the_wrong_type_are_refused_and_the_server_keeps_serving(client, files, api_name, arguments):
    assert_refused(client, files, api_name, arguments)

