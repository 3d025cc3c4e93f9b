"""Input the user can fix: raised as InvalidInput by the prediction functions, shown by Gradio as a message."""

import functools
import inspect
from collections.abc import Callable

import gradio as gr


class InvalidInput(ValueError):
    """The message tells the user what to change."""


def shown_to_user(handler: Callable) -> Callable:
    """Turns InvalidInput into gr.Error, which Gradio shows as a message (no stack trace) and keeps serving."""
    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def streaming(*args, **kwargs):
            try:
                yield from handler(*args, **kwargs)
            except InvalidInput as error:
                raise gr.Error(str(error), print_exception=False) from None

        return streaming

    @functools.wraps(handler)
    def answering(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except InvalidInput as error:
            raise gr.Error(str(error), print_exception=False) from None

    return answering
