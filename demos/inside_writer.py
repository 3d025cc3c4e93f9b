"""Inside the writers: how surprised the model is by each character, and the candidates it weighed."""

import math

import gradio as gr

from demos.character_names import character_names
from demos.errors import InvalidInput, shown_to_user
from demos.inputs import MAX_INSPECT_CHARACTERS, check_passage
from demos.model_store import CONCURRENCY_ID, ModelStore, ModelUnavailable
from hw3core import ShakespeareWriter
from hw3core.explain import read_characters

# Read in one pass, one cell step a character: 1,500 keep the view under a second on two cores for the
# LSTM writer (0.6 s, `python -m training.benchmark`); the default written text is about 1,000.
CANDIDATES = 5
SHOWN = {"\n": "↵", " ": "␣"}
# gr.HighlightedText draws each token as a padded chip, with a space between chips: right for words, unreadable
# for characters. This makes the surprise view read as text (the spaces between chips shrink to nothing), in a box
# that scrolls rather than lengthen the page.
TEXT_CSS = """
.surprise-text .textfield { display: block; line-height: 1.5; max-height: 24rem; overflow-y: auto; }
.surprise-text .token-container { display: inline; }
.surprise-text .textfield, .surprise-text .token-container, .surprise-text .token { font-size: 0; }
.surprise-text .token { padding: 0 !important; margin: 0 !important; border-radius: 0 !important; }
.surprise-text .token .text { font-size: var(--text-md); font-family: var(--font-mono); white-space: pre-wrap;
                              background-color: inherit; }
"""
HOW_TO_READ = """\
**Inside the models.** The writer reads a text (what it just wrote, or anything pasted) one character at a time, as
the start of a speech (after a blank line, as it reads a prime), and before each character it gives every character
a probability. Each character is coloured by its **surprise**, the model's loss there, −ln p(that character): white
is expected, full red is as surprising as a blind guess among all characters or more. The first character is given,
not predicted. Click a character to see the five candidates the model weighed there; beside the text, the five it
would write next.
"""


def shown(char: str) -> str:
    return SHOWN.get(char, char)


def surprise_view(writer: ShakespeareWriter, passage: str) -> tuple[list, list[dict[str, float]], list[float]]:
    """(each character with its surprise colour for gr.HighlightedText, the top-5 candidates {char: p} after each
    character, the surprise at each character after the first); raises InvalidInput for characters it never saw."""
    unknown = writer.unknown_characters(passage)
    if unknown:
        raise InvalidInput(f"The text has characters the model never saw in training: {character_names(unknown)}.")
    reading = read_characters(writer, passage, CANDIDATES)
    blind_guess = math.log(len(writer.characters))
    colours = [None] + [round(min(s / blind_guess, 1.0), 4) for s in reading.surprise.tolist()]
    candidates = [{shown(writer.characters[i]): p for i, p in zip(ids, ps, strict=True)}
                  for ids, ps in zip(reading.top_ids.tolist(), reading.top_probabilities.tolist(), strict=True)]
    # A newline keeps its line break and gets a mark, so that it can be seen and clicked.
    characters = [("↵\n" if char == "\n" else char, colour) for char, colour in zip(passage, colours, strict=True)]
    return characters, candidates, reading.surprise.tolist()


def build_inside_views(models: ModelStore, writers: dict[str, str], text: gr.Textbox, cell: gr.Radio) -> None:
    """The views, under the writer tab. ``writers``: the cell a user picks -> its checkpoint; ``text``: the
    written text, which a button copies here; ``cell``: the tab's choice of writer, read by the view too."""

    @shown_to_user
    def inspect_text(passage, cell=cell.value):
        check_passage(passage)
        if cell not in writers:
            raise InvalidInput(f"The cell must be one of {', '.join(writers)}, not {cell!r}.")
        try:
            writer = models.get(writers[cell])
        except ModelUnavailable as error:
            raise ModelUnavailable(f"The {cell} writer is not available. {error}") from None
        characters, candidates, surprise = surprise_view(writer, passage)
        state = {"cell": cell, "text": passage, "surprise": surprise, "candidates": candidates}
        return characters, candidates[-1], state

    def selected(state, event: gr.SelectData):
        if not state or event.index is None:
            return "", None
        t = event.index
        char = shown(state["text"][t])
        if t == 0:
            return f"Character 1, **{char}**, is the start: given, not predicted.", None
        surprise = state["surprise"][t - 1]
        return (f"Character {t + 1:,}, **{char}**: surprise {surprise:.2f} nats (the {state['cell']} writer gave it "
                f"p = {math.exp(-surprise):.1%}). The candidates it weighed there:"), state["candidates"][t - 1]

    with gr.Accordion("Inside the models", open=False), gr.Column(elem_classes="inside-writer"):
        gr.Markdown(HOW_TO_READ)
        passage = gr.Textbox(label="Text to inspect", lines=4, max_lines=8, max_length=MAX_INSPECT_CHARACTERS,
                             placeholder="Write above and press 'Inspect the written text', or paste a passage here.")
        with gr.Row():
            copy = gr.Button("Inspect the written text")
            inspect = gr.Button("Inspect", variant="primary")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                surprise = gr.HighlightedText(label="Surprise at each character (click one)", show_legend=False,
                                              elem_classes="surprise-text")
                gr.HTML(f"<style>{TEXT_CSS}</style>")
            with gr.Column(scale=1, min_width=200):
                following = gr.Label(num_top_classes=CANDIDATES, label="Top 5 next characters, after the text")
                picked_note = gr.Markdown(label="Selected character")
                picked = gr.Label(num_top_classes=CANDIDATES, label="Top 5 at the selected character")
        reading = gr.State()
    inputs, outputs = [passage, cell], [surprise, following, reading]
    inspect.click(inspect_text, inputs=inputs, outputs=outputs, api_name="inspect_text", concurrency_id=CONCURRENCY_ID)
    copy.click(lambda written: written, inputs=text, outputs=passage, queue=False, api_visibility="private").then(
        inspect_text, inputs=inputs, outputs=outputs, concurrency_id=CONCURRENCY_ID, api_visibility="private")
    surprise.select(selected, inputs=reading, outputs=[picked_note, picked], queue=False, api_visibility="private")
