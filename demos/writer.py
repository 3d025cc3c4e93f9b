"""Part D: a character-level GRU (or LSTM) writes Shakespeare after a prime, streamed as it is written."""

from collections.abc import Iterator

import gradio as gr

from demos.availability import build_availability_notice
from demos.errors import shown_to_user
from demos.inputs import (
    DEFAULT_PRIME,
    MAX_LENGTH,
    MAX_PRIME_LENGTH,
    MAX_SEED,
    MAX_TEMPERATURE,
    MIN_TEMPERATURE,
    check_prime,
    check_settings,
)
from demos.inside_writer import build_inside_views
from demos.model_store import CONCURRENCY_ID, ModelStore, ModelUnavailable
from demos.training_info import build_training_panel
from hw3core import ShakespeareWriter
from hw3core.registry import models_of, titles

# The cell a user picks -> its checkpoint. The GRU is the assignment's writer; the LSTM is optional.
WRITERS = {spec.cell.upper(): name for name, spec in models_of("shakespeare").items()}
DEFAULT_CELL = "GRU"
DEFAULT_LENGTH = 1000
DEFAULT_TEMPERATURE = 0.8
# Characters per streamed update: one event per character would cost more than writing it.
CHUNK = 16


def write(writer: ShakespeareWriter, prime: str, length: int, temperature: float, seed: int | None) -> Iterator[str]:
    """The text so far (the prime, then every CHUNK new characters); the last value is the whole text."""
    prime = check_prime(writer, prime)
    length, temperature, seed = check_settings(length, temperature, seed)
    pieces = [prime]
    yield prime
    for count, char in enumerate(writer.generate(prime, length, temperature, seed), 1):
        pieces.append(char)
        if count % CHUNK == 0 or count == length:
            yield "".join(pieces)


def build(models: ModelStore) -> None:
    @shown_to_user
    def generate(prime, length, temperature, seed, cell=DEFAULT_CELL):
        check_settings(length, temperature, seed)  # before loading the model: bad numbers need no model
        try:
            writer = models.get(WRITERS[cell])
        except ModelUnavailable as error:
            raise gr.Error(f"The {cell} writer is not available. {error}", print_exception=False) from None
        yield from write(writer, prime, length, temperature, seed)

    gr.Markdown("A character-level GRU (or LSTM) trained on Shakespeare's plays continues the prime one character "
                "at a time. The prime is read as the start of a speech, after a blank line: a speaker's name, such "
                "as JULIET, begins one.")
    build_availability_notice(models, titles("shakespeare"))
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=260):
            prime = gr.Textbox(DEFAULT_PRIME, label="Prime", max_lines=3, max_length=MAX_PRIME_LENGTH)
            length = gr.Slider(1, MAX_LENGTH, value=DEFAULT_LENGTH, step=1, label="Length")
            temperature = gr.Slider(MIN_TEMPERATURE, MAX_TEMPERATURE, value=DEFAULT_TEMPERATURE, step=0.05,
                                    label="Temperature", info="Lower: safer and more repetitive. Higher: wilder.")
            seed = gr.Number(0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed",
                             info="The same seed writes the same text; blank for a random one.")
            cell = gr.Radio(list(WRITERS), value=DEFAULT_CELL, label="Cell")  # Gradio refuses any other value
            with gr.Row():
                start = gr.Button("Write", variant="primary")
                stop = gr.Button("Stop", variant="stop", interactive=False)  # active only while writing
        with gr.Column(scale=2):
            text = gr.Textbox(label="Text", lines=22, max_lines=22, autoscroll=True, buttons=["copy"],
                              interactive=False)

    def stop_button(active: bool):
        return lambda: gr.Button(interactive=active)

    # One chain, so the Stop button is on exactly while the text is being written.
    started = start.click(stop_button(True), outputs=stop, queue=False, api_visibility="private")
    writing = started.then(generate, inputs=[prime, length, temperature, seed, cell], outputs=text,
                           api_name="generate", concurrency_id=CONCURRENCY_ID)
    writing.then(stop_button(False), outputs=stop, queue=False, api_visibility="private")
    # The page runs no .then after an event that failed (a refused prime): the Stop button is turned off here then.
    writing.failure(stop_button(False), outputs=stop, queue=False, api_visibility="private")
    stop.click(stop_button(False), outputs=stop, cancels=[writing], queue=False, api_visibility="private")
    build_inside_views(models, WRITERS, text, cell)
    build_training_panel(models, titles("shakespeare"))
