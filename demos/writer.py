"""Part D: a character-level GRU (or LSTM) writes Shakespeare after a prime, streamed as it is written."""

import math
from collections.abc import Iterator

import gradio as gr

from demos.availability import build_availability_notice
from demos.character_names import character_names
from demos.errors import InvalidInput, shown_to_user
from demos.inside_writer import build_inside_views
from demos.model_store import CONCURRENCY_ID, ModelStore, ModelUnavailable
from demos.training_info import build_training_panel
from hw3core import ShakespeareWriter
from hw3core.registry import models_of, titles

# The cell a user picks -> its checkpoint. The GRU is the assignment's writer; the LSTM is optional.
WRITERS = {spec.choice[1].upper(): name for name, spec in models_of("shakespeare").items()}
DEFAULT_CELL = "GRU"
DEFAULT_PRIME = "ROMEO"
# The prime is read one character a step, as the text is written: bounded like the output.
MAX_PRIME_LENGTH = 1000
MAX_LENGTH = 2000
DEFAULT_LENGTH = 1000
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.1, 2.0
DEFAULT_TEMPERATURE = 0.8
MAX_SEED = 2**32 - 1
# Characters per streamed update: one event per character would cost more than writing it.
CHUNK = 16


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
