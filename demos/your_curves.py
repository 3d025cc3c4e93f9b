"""Your training curves beside ours: a student's TensorBoard log (an event file, or a zip of the run's
folder), compared by hw3core.curves with our run of the same part and the assignment's mark.

Part of the "Check your model" tab: "auto" takes the part from the model the session checked.
"""

from pathlib import Path

import gradio as gr

from demos.errors import InvalidInput, shown_to_user
from demos.model_store import ModelStore
from demos.received import received_uploads
from hw3core.curves import CHOICES, PARTS, ROLES, CurvesError, compare

INTRO = """\
**Your training curves beside ours.** Upload the event file your `SummaryWriter` wrote
(`runs/.../events.out.tfevents.*`), or a zip of the run's folder (up to 50 MB). Your loss and accuracy curves are
found by their names; if yours do not say which is which, name them below. The same in a notebook:
`from hw3core import compare_curves; compare_curves("runs/", "AlexNet")`.
"""
TAGS_HINT = "train_loss=Loss/train; val_accuracy=Accuracy/val"


def parse_tags(text: str | None) -> dict[str, str]:
    """"train_loss=Loss/train; val_accuracy=acc" (or one per line) -> {"train_loss": "Loss/train", ...}."""
    tags = {}
    for item in (text or "").replace("\n", ";").split(";"):
        if not item.strip():
            continue
        role, sep, tag = item.partition("=")
        if not sep or role.strip() not in ROLES or not tag.strip():
            raise InvalidInput(f"{item.strip()!r}: name each curve as ROLE=TAG ({', '.join(ROLES)}), "
                               f"separated by ';', e.g. {TAGS_HINT}.")
        tags[role.strip()] = tag.strip()
    return tags


def your_curves(path: str | None, part: str, tags: str | None, session: dict | None, root: Path):
    """(the comparison as JSON, its figure, the verdict as Markdown)."""
    if not path:
        raise InvalidInput("No file: upload your run's event file (events.out.tfevents.*) or a zip of its folder.")
    if part not in CHOICES:
        raise InvalidInput(f"The part must be one of {', '.join(CHOICES)}, not {part!r}.")
    if part == "auto":
        checked = (session or {}).get("model")
        if checked not in PARTS:
            why = f"the one checked above is a {checked}" if checked else "none is checked yet"
            raise InvalidInput(f"Which part is this run? Pick its model (auto takes the model you checked above, and "
                               f"{why}).")
        part = checked
    try:
        comparison = compare(path, part, parse_tags(tags), ours=root)
    except CurvesError as error:
        raise InvalidInput(str(error)) from None
    return comparison.to_json(), _figure(comparison), "\n".join(f"- {line}" for line in comparison.verdict)


def _figure(comparison):
    # matplotlib loads with the first comparison, not at start-up: 21 MB the app would hold for every visitor.
    from hw3core.curves_figure import draw

    return draw(comparison)


def build(models: ModelStore, session: gr.State) -> None:
    """The panel, in the caller's layout; ``session`` is the check's state (which model was checked)."""

    received = received_uploads()  # the log is deleted once read, as every upload is

    @shown_to_user
    def handler(path, part, tags, state):
        return received.read_file(path, lambda: your_curves(path, part, tags, state, models.root))

    with gr.Column(elem_classes="your-curves"):
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=260):
                log = gr.File(label="Your TensorBoard log (event file or .zip)", type="filepath")
                part = gr.Dropdown(list(CHOICES), value="auto", label="Its part (model)")
                tags = gr.Textbox("", label="Which tag is which (only if not found by name)", placeholder=TAGS_HINT,
                                  max_lines=2, max_length=1000)
                button = gr.Button("Compare with ours", variant="primary")
            with gr.Column(scale=3):
                verdict = gr.Markdown(label="Verdict")
        plot = gr.Plot(label="Yours (solid) and ours (dashed), by epoch", show_label=False, format="png")
        with gr.Accordion("The comparison as JSON", open=False):
            result = gr.JSON(label="Comparison")
    button.click(handler, inputs=[log, part, tags, session], outputs=[result, plot, verdict], api_name="your_curves")
