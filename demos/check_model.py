"""Check your model: a student's checkpoint against the assignment's tables, then run beside ours.

The check is ``hw3core.check``; this tab uploads the file, shows the report, and, once a model
passes, runs it beside this project's model of the same class. Each session's model is its own
(demos.uploads): another browser tab or API client never sees it.
"""

import functools
import logging
from pathlib import Path

import gradio as gr
from PIL import Image

from demos.domain import VARIANTS as OUR_ALEXNETS
from demos.domain import domain_probabilities
from demos.errors import InvalidInput, shown_to_user
from demos.examples import example_images
from demos.inputs import MAX_INSPECT_CHARACTERS, check_passage, check_prime, clean_review, read_uploaded_image
from demos.inside_domain import DOMAIN_COLOURS, cam_view
from demos.inside_writer import CANDIDATES, TEXT_CSS, surprise_view
from demos.install_line import install_note
from demos.lasting_errors import LastingErrors
from demos.model_store import CONCURRENCY_ID, ModelStore, ModelUnavailable
from demos.received import ReceivedUploads, received_uploads
from demos.uploads import UPLOADS, Held, UploadedModels
from demos.your_curves import build as build_your_curves
from hw3core import DOMAINS
from hw3core.alexnet import preprocess_image
from hw3core.check import ALEXNETS, CHOICES, check
from hw3core.check.student import SAVE_STATE_DICT, StudentFileError, StudentWeights, read_weights
from hw3core.check.text import CELL_KEYS
from hw3core.registry import spec_of

LOG = logging.getLogger(__name__)

OUR_CHECKPOINTS = {title: name for name, title in OUR_ALEXNETS.items()}  # "AlexNet" -> "alexnet"
GENERATED_LENGTH = 300
GENERATION = {"temperature": 0.8, "seed": 0}
# A session's model is freed this long after its check (gr.State's time to live); a closed tab frees it at once.
SESSION_SECONDS = 3600
INTRO = """\
Upload the file your notebook saved (`torch.save(model.state_dict(), 'best_model.pt')`, up to 300 MB), pick the
class it should be or leave it on auto, and press **Check**. Each layer is compared with the assignment's table:
its shape and parameter count, a ✔ or ✘ per row, problems first with their likely cause. Only weights are read,
never pickled code. Once your model passes, run it beside ours below. Your model is yours alone: no other user
sees it. The same check runs in a notebook: `from hw3core import check_model; check_model(model, "AlexNet")`.
"""


@functools.cache
def example_evidence() -> list:
    """The drawn example images with their domains: what the check may read a file's pooling from, where clear."""
    domain = {"painting": "art_painting"}
    return [(preprocess_image(Image.open(path).convert("RGB")), DOMAINS.index(domain.get(path.stem, path.stem)))
            for path in example_images()]


def _summary(report, why_not_run: str | None, readings: list[str] | None = None, weights_wait: bool = False) -> str:
    lines = [f"### {'✔' if report.ok else '✘'} {report.model or 'Not one of the assignment models'}"
             + (f" ({report.cell})" if report.cell else "")]
    lines += [f"- ✘ {problem}" for problem in report.problems]
    lines += [f"- {note}" for note in report.notes]
    # a blank line first: a paragraph of its own, not the end of the list's last item
    if report.ok and why_not_run is None:
        lines += ["", "Your model passes: compare it with ours below."]
    elif why_not_run and not report.notes:
        lines += ["", f"Not run beside ours: {why_not_run}."]
    if readings:
        lines += ["", "Pick how to read your weights under **Read your weights as**, then press **Check** again: "
                      "the weights read from your file wait for it, no new upload needed."]
    elif weights_wait and not report.ok:
        lines += ["", "To check the same weights as another class, pick it under **It should be** and press "
                      "**Check** again: no new upload needed."]
    return "\n".join(lines)


def check_upload(path: str | None, model: str, session: dict | None, uploads: UploadedModels, reading: str = "auto",
                 held: StudentWeights | None = None):
    """(the report as JSON, its summary, its torchsummary text, the session's new state, which views to show,
    the readings to choose from). ``held``: the weights of the session's last upload, read again with another
    reading (the file itself was deleted once read)."""
    if not path and held is None:
        raise InvalidInput("No file: upload the .pt or .safetensors file your notebook saved first.")
    if model not in CHOICES:
        raise InvalidInput(f"The model must be one of {', '.join(CHOICES)}, not {model!r}.")
    if reading in ALEXNETS:  # for an AlexNet, the reading is the class: max or average pooling
        model, reading = reading, "auto"
    name = Path(path).name if path else "your file"
    try:
        weights = held or read_weights(path)
        checked = check(weights, model, reading or "auto", images=example_evidence())
    except StudentFileError as error:
        raise InvalidInput(str(error).replace(str(Path(path).parent) + "/", "") if path else str(error)) from None
    except (RuntimeError, ValueError, TypeError, IndexError, KeyError) as error:
        # A layout no rule foresaw: the user gets a message, the server log the stack trace.
        LOG.exception("checking %s failed", name)
        raise InvalidInput(f"{name} could not be checked ({type(error).__name__}). Save the weights with "
                           f"{SAVE_STATE_DICT}; if it still fails, please report it with how you saved it.") from None
    if session:  # a new upload replaces the session's model
        uploads.release(session.get("token"))
    report = checked.report
    # Where no model runs, the weights wait (within the same bound) for Check to be pressed again: with a reading
    # picked, or another class. A model that runs holds its own copy of them.
    waiting = None if checked.model is not None else weights
    token = uploads.hold(Held(checked.model, report.model, report.cell, weights=waiting))
    state = {"token": token, "model": report.model, "why": checked.why_not_run}
    runs = report.model if checked.model is not None else None  # the views beside ours, for the class that runs
    views = (gr.Column(visible=runs in ALEXNETS), gr.Column(visible=runs == "SentenceGeneration"),
             gr.Column(visible=runs == "SentimentClassification"))
    readings = gr.Dropdown(choices=["auto", *checked.readings], value="auto", visible=bool(checked.readings))
    return (report.as_json(), _summary(report, checked.why_not_run, checked.readings, waiting is not None),
            report.text(), state, *views, readings)


def waiting_weights(session: dict | None, uploads: UploadedModels) -> StudentWeights | None:
    """The weights of the session's last upload, where its check left no model to run."""
    try:
        return uploads.get(session.get("token")).weights if session else None
    except InvalidInput:
        return None


def session_model(session: dict | None, uploads: UploadedModels, wanted: str) -> Held:
    """The session's checked model, if it is of the kind ``wanted`` ('AlexNet', 'writer', 'classifier')."""
    held = uploads.get(session.get("token") if session else None)
    if held.model is None:
        raise InvalidInput(f"Your {held.name or 'model'} was checked but cannot be run: {session['why']}.")
    kinds = {"AlexNet": (held.is_alexnet, "an AlexNet"),
             "writer": (held.name == "SentenceGeneration", "a writer (SentenceGeneration)"),
             "classifier": (held.name == "SentimentClassification", "a classifier (SentimentClassification)")}
    fits, what = kinds[wanted]
    if not fits:
        raise InvalidInput(f"Your checked model is a {held.name}; this compares {what}: check one first.")
    return held


def _ours(models: ModelStore, name: str):
    """Our model, or (None, why) when it is not available: yours still runs."""
    try:
        return models.get(name), None
    except ModelUnavailable as error:
        return None, f"Ours is not available: {error}"


def build(models: ModelStore, uploads: UploadedModels = UPLOADS) -> None:
    """The tab: the upload and its report, then each kind of model's view beside ours (shown once one runs), then
    the training curves."""
    received = received_uploads()  # each uploaded file is deleted once read
    refusals = LastingErrors()  # a refused file's message stays in the report until the next check

    @shown_to_user
    def check_model(file, model, session, reading="auto", request: gr.Request = None):
        with refusals.kept_for(request):
            waiting = waiting_weights(session, uploads)
            if waiting is not None and received.was_read(file):  # the same upload, read another way
                return check_upload(None, model, session, uploads, reading, held=waiting)
            return received.read_file(file, lambda: check_upload(file, model, session, uploads, reading))

    def release(ended: dict | None) -> None:  # gr.State's delete callback: the session has ended
        if ended:
            uploads.release(ended.get("token"))

    gr.Markdown(INTRO + install_note())
    session = gr.State(None, time_to_live=SESSION_SECONDS, delete_callback=release)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=260):
            upload = gr.File(label="Your model (.pt, .pth or .safetensors)", type="filepath",
                             file_types=[".pt", ".pth", ".bin", ".safetensors", ".ckpt"])
            choice = gr.Dropdown(list(CHOICES), value="auto", label="It should be")
            # The choices are the last report's; the check itself refuses a reading the weights do not have.
            reading = gr.Dropdown(["auto"], value="auto", label="Read your weights as", visible=False,
                                  allow_custom_value=True,
                                  info="Your file's weights can be read several ways: pick the one your forward uses.")
            button = gr.Button("Check", variant="primary")
        with gr.Column(scale=2, elem_classes="check-report"):
            summary = gr.Markdown(label="Summary")
            table = gr.Code(label="Row by row (torchsummary's format)", language=None, interactive=False, lines=12)
            with gr.Accordion("The report as JSON", open=False):
                report = gr.JSON(label="Report")
    views = [build_view(models, uploads, session, received) for build_view in (alexnet_view, writer_view,
                                                                                 sentiment_view)]
    build_your_curves(models, session)
    checking = button.click(check_model, inputs=[upload, choice, session, reading],
                            outputs=[report, summary, table, session, *views, reading], api_name="check_model",
                            concurrency_id=CONCURRENCY_ID)
    refusals.show_on_failure(checking, summary, table, report)


def alexnet_view(models: ModelStore, uploads: UploadedModels, session: gr.State, received: ReceivedUploads) -> gr.Column:
    """The student's AlexNet beside ours of the same class: labels, and Grad-CAM. /your_domain."""

    @shown_to_user
    def your_domain(upload, session):
        image = read_uploaded_image(upload, received)  # first: the upload is deleted whatever follows
        held = session_model(session, uploads, "AlexNet")
        ours, why = _ours(models, OUR_CHECKPOINTS[held.name])
        yours_label = domain_probabilities(held.model, image)
        ours_label = domain_probabilities(ours, image) if ours else None
        return (yours_label, ours_label, cam_view(held.model, image), cam_view(ours, image) if ours else None,
                why or f"Ours: this project's {held.name}.")

    with gr.Column(visible=False, elem_classes="check-alexnet") as view:
        gr.Markdown("**Your AlexNet beside ours** of the same class: the labels, and where each looked (Grad-CAM).")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=220):
                image = gr.Image(type="filepath", image_mode=None, sources=["upload", "clipboard"], label="Image",
                                 height=260)
                classify = gr.Button("Classify with both", variant="primary")
            with gr.Column(scale=3):
                with gr.Row():
                    yours_label = gr.Label(num_top_classes=4, label="Yours")
                    ours_label = gr.Label(num_top_classes=4, label="Ours")
                with gr.Row():
                    yours_cam = gr.AnnotatedImage(label="Yours: where it looked", color_map=DOMAIN_COLOURS, height=260)
                    ours_cam = gr.AnnotatedImage(label="Ours: where it looked", color_map=DOMAIN_COLOURS, height=260)
                note = gr.Markdown(label="Note")
    classify.click(your_domain, inputs=[image, session], outputs=[yours_label, ours_label, yours_cam, ours_cam, note],
                   api_name="your_domain", preprocess=False, concurrency_id=CONCURRENCY_ID)
    return view


def writer_view(models: ModelStore, uploads: UploadedModels, session: gr.State, received: ReceivedUploads) -> gr.Column:
    """The student's writer beside ours: the next characters, the surprise at each, text from a prime.
    /your_writer, /your_generate."""

    def our_writer(held: Held):
        return _ours(models, spec_of("shakespeare", CELL_KEYS[held.cell]).name)

    @shown_to_user
    def your_writer(passage, session):
        held = session_model(session, uploads, "writer")
        check_passage(passage)
        yours_characters, yours_candidates, _ = surprise_view(held.model, passage)
        ours, why = our_writer(held)
        if ours is not None:
            try:
                ours_characters, ours_candidates, _ = surprise_view(ours, passage)
            except InvalidInput as error:
                ours, why = None, f"Ours cannot read this text: {error}"
        if ours is None:
            return yours_candidates[-1], None, yours_characters, None, why
        return yours_candidates[-1], ours_candidates[-1], yours_characters, ours_characters, "Ours: this project's writer."

    @shown_to_user
    def your_generate(prime, session):
        held = session_model(session, uploads, "writer")
        prime = check_prime(held.model, prime)
        yours = prime + "".join(held.model.generate(prime, GENERATED_LENGTH, **GENERATION))
        ours, why = our_writer(held)
        if ours is not None and not ours.unknown_characters(prime):
            return yours, prime + "".join(ours.generate(prime, GENERATED_LENGTH, **GENERATION))
        return yours, why or "Ours has never seen some characters of this prime."

    with gr.Column(visible=False, elem_classes="check-writer") as view:
        gr.HTML(f"<style>{TEXT_CSS}</style>")
        gr.Markdown("**Your writer beside ours**: the five characters each would write next, the surprise at each "
                    "character (white: expected; red: as surprising as a blind guess), and text from a prime.")
        passage = gr.Textbox("ROMEO:\nWhat light", label="Text", lines=3, max_length=MAX_INSPECT_CHARACTERS)
        inspect = gr.Button("Read with both", variant="primary")
        with gr.Row(equal_height=False):
            yours_next = gr.Label(num_top_classes=CANDIDATES, label="Yours: top 5 next characters")
            ours_next = gr.Label(num_top_classes=CANDIDATES, label="Ours: top 5 next characters")
        with gr.Row(equal_height=False):
            yours_surprise = gr.HighlightedText(label="Yours: surprise", show_legend=False, elem_classes="surprise-text")
            ours_surprise = gr.HighlightedText(label="Ours: surprise", show_legend=False, elem_classes="surprise-text")
        note = gr.Markdown(label="Note")
        prime = gr.Textbox("JULIET", label="Prime", max_lines=2)
        write = gr.Button("Write with both")
        with gr.Row():
            yours_text = gr.Textbox(label="Yours wrote", lines=8, interactive=False)
            ours_text = gr.Textbox(label="Ours wrote", lines=8, interactive=False)
    inspect.click(your_writer, inputs=[passage, session], outputs=[yours_next, ours_next, yours_surprise,
                                                                    ours_surprise, note],
                  api_name="your_writer", concurrency_id=CONCURRENCY_ID)
    write.click(your_generate, inputs=[prime, session], outputs=[yours_text, ours_text], api_name="your_generate",
                concurrency_id=CONCURRENCY_ID)
    return view


def sentiment_view(models: ModelStore, uploads: UploadedModels, session: gr.State, received: ReceivedUploads) -> gr.Column:
    """The student's classifier beside ours on a review. /your_sentiment."""

    @shown_to_user
    def your_sentiment(review, session):
        held = session_model(session, uploads, "classifier")
        text = clean_review(review)
        ours, why = _ours(models, spec_of("sentiment", CELL_KEYS[held.cell]).name)
        yours_p = held.model.predict([text])[0].tolist()
        yours_label = dict(zip(held.model.LABELS, yours_p, strict=True))
        if ours is None:
            return yours_label, None, why
        return yours_label, dict(zip(ours.LABELS, ours.predict([text])[0].tolist(), strict=True)), \
            "Yours reads the review as the starter does (split at spaces); ours with its own tokenizer."

    with gr.Column(visible=False, elem_classes="check-sentiment") as view:
        gr.Markdown("**Your classifier beside ours** on a review.")
        review = gr.Textbox(label="Review", lines=4, placeholder="What did you think of the film?")
        score = gr.Button("Score with both", variant="primary")
        with gr.Row():
            yours_sentiment = gr.Label(num_top_classes=2, label="Yours")
            ours_sentiment = gr.Label(num_top_classes=2, label="Ours")
        note = gr.Markdown(label="Note")
    score.click(your_sentiment, inputs=[review, session], outputs=[yours_sentiment, ours_sentiment, note],
                api_name="your_sentiment", concurrency_id=CONCURRENCY_ID)
    return view
