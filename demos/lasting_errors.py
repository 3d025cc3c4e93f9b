"""A refused check's message, shown where the report goes. Gradio shows an event's error in a pop-up that fades
after 10 s and leaves the outputs saying only "Error"; the page then runs the event's ``.failure`` step, which is
told nothing of the error. So the handler keeps its message for the browser session that sent it, and the
``.failure`` step shows it in the report area, where it stays until the next check. The API still raises it."""

import contextlib
import threading
from collections import OrderedDict

import gradio as gr

from demos.errors import InvalidInput
from demos.model_store import ModelUnavailable

# Sessions whose message waits to be shown: an API client runs no .failure step, so what it leaves is bounded.
REMEMBERED = 1000
NOT_CHECKED = "### ✘ Not checked"


class LastingErrors:
    def __init__(self, remembered: int = REMEMBERED):
        self.remembered = remembered
        self._messages: OrderedDict[str, str] = OrderedDict()  # session hash -> message, oldest first
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def kept_for(self, request: gr.Request | None):
        """Keeps the message of an InvalidInput or ModelUnavailable raised inside for ``request``'s session,
        and lets it go on (to shown_to_user, which makes it the event's error)."""
        try:
            yield
        except (InvalidInput, ModelUnavailable) as error:
            session = getattr(request, "session_hash", None)
            if session:
                with self._lock:
                    self._messages[session] = str(error)
                    self._messages.move_to_end(session)
                    while len(self._messages) > self.remembered:
                        self._messages.popitem(last=False)
            raise

    def shown(self, request: gr.Request) -> str:
        """The session's kept message as the report's summary (Markdown); it is forgotten here."""
        with self._lock:
            message = self._messages.pop(getattr(request, "session_hash", None) or "", None)
        return f"{NOT_CHECKED}\n\n{message}" if message else NOT_CHECKED

    def show_on_failure(self, event, summary: gr.Markdown, *cleared: gr.components.Component) -> None:
        """After ``event`` fails, the message in ``summary``; ``cleared`` (the last report's other views) emptied."""

        def failed(request: gr.Request):
            return self.shown(request), *(None for _ in cleared)

        event.failure(failed, outputs=[summary, *cleared], queue=False, api_visibility="private")
