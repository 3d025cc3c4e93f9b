"""What the user can fix, shown by Gradio as a message: input (InvalidInput, raised by the prediction
functions) and a model that is not there (ModelUnavailable, whose message says how to make it)."""

import functools
import inspect
from collections.abc import Callable

import gradio as gr

from demos.model_store import ModelUnavailable


class InvalidInput(ValueError):
    """The message tells the user what to change."""


def shown_to_user(handler: Callable) -> Callable:
    """Turns InvalidInput and ModelUnavailable into gr.Error, which Gradio shows as a message (no stack
    trace) and gradio_client raises as AppError with that message; the app keeps serving."""
    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def streaming(*args, **kwargs):
            try:
                yield from handler(*args, **kwargs)
            except (InvalidInput, ModelUnavailable) as error:
                raise gr.Error(str(error), print_exception=False) from None

        return streaming

    @functools.wraps(handler)
    def answering(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except (InvalidInput, ModelUnavailable) as error:
            raise gr.Error(str(error), print_exception=False) from None

    return answering
