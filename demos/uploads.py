"""Students' checked models, held for the session that uploaded each one, within a memory bound.

A session's gr.State holds only a token (a random string, never shown), so no other session can
reach its model. A dense AlexNet is 233 MB: at most MAX_ALEXNETS are held across all sessions, with
any other upload of over LARGE_BYTES, the oldest dropped first; its session is told to upload again.
Text models are small, but bounded too. A session that ends (its State deleted) frees its model at once.
"""

import secrets
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from torch import nn

from demos.errors import InvalidInput

# Defaults: a host may change both (demos.host_limits, docs/limits.md).
MAX_ALEXNETS = 2
MAX_TEXT_MODELS = 8
# An upload holding more is held in the AlexNets' slots, whatever the check took it for (the shipped text models
# hold 4 to 7 MB; a student's with a large vocabulary, some tens).
LARGE_BYTES = 64 * 2**20
# Tokens of dropped models remembered, to tell their sessions why (not where a model went: a bounded list).
REMEMBERED_DROPS = 1000
NOT_CHECKED = "No model checked yet: upload yours under 'Check your model' and press Check first."


@dataclass
class Held:
    model: nn.Module | None  # None when it cannot run: the check failed, or asks how to read the weights
    name: str | None  # the assignment's class the check took it for: "AlexNet", "SentenceGeneration", ...
    cell: str | None
    # Where no model runs, the weights as read (hw3core.check.student.StudentWeights): the uploaded file is deleted
    # once read, and Check pressed again (another class, or a reading picked) reads these.
    weights: object = None
    bytes: int = field(init=False)

    def __post_init__(self):
        tensors = (list(self.model.parameters()) + list(self.model.buffers()) if self.model is not None
                   else list(getattr(self.weights, "state", {}).values()))
        # A file's vocabulary too: a few bytes a token on disk, some fifty as Python strings.
        vocabulary = getattr(self.weights, "vocabulary", None) or []
        self.bytes = sum(tensor.nbytes for tensor in tensors) + sum(map(sys.getsizeof, vocabulary))

    @property
    def is_alexnet(self) -> bool:
        return (self.name or "").startswith("AlexNet")

    @property
    def is_large(self) -> bool:
        """Held in the AlexNets' slots."""
        return self.is_alexnet or self.bytes > LARGE_BYTES


class UploadedModels:
    def __init__(self, max_alexnets: int = MAX_ALEXNETS, max_text_models: int = MAX_TEXT_MODELS):
        self.limits = {True: max_alexnets, False: max_text_models}
        self._held: OrderedDict[str, Held] = OrderedDict()  # oldest first
        self._dropped: OrderedDict[str, bool] = OrderedDict()  # token -> whether it was large (is_large), oldest first
        self._lock = threading.Lock()

    def hold(self, held: Held) -> str:
        """Keeps the model; returns its token. Drops the oldest of its kind beyond the limit."""
        token = secrets.token_urlsafe(16)
        with self._lock:
            same_kind = [t for t, h in self._held.items() if h.is_large == held.is_large]
            for old in same_kind[: max(0, len(same_kind) + 1 - self.limits[held.is_large])]:
                del self._held[old]
                self._dropped[old] = held.is_large
                if len(self._dropped) > REMEMBERED_DROPS:
                    self._dropped.popitem(last=False)
            self._held[token] = held
        return token

    def resize(self, max_alexnets: int, max_text_models: int) -> None:
        """New limits (the host's, read at start-up); beyond them, the oldest models go at the next hold."""
        with self._lock:
            self.limits = {True: max_alexnets, False: max_text_models}

    def get(self, token: str | None) -> Held:
        """The session's model; raises InvalidInput saying what to do when there is none."""
        with self._lock:
            if token in self._held:
                return self._held[token]
            was_large = self._dropped.get(token) if token is not None else None
        if was_large is not None:
            kind = "AlexNets (or files as large)" if was_large else "text models"
            raise InvalidInput(f"Your model was dropped to make room for other users' (at most "
                               f"{self.limits[was_large]} uploaded {kind} are held at a time): upload it again.")
        raise InvalidInput(NOT_CHECKED)

    def release(self, token: str | None) -> None:
        with self._lock:
            self._held.pop(token, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)

    def count(self, large: bool) -> int:
        """How many are held in the AlexNets' slots (``large``), or in the text models'."""
        with self._lock:
            return sum(h.is_large == large for h in self._held.values())


# One for the process: the memory bound is the machine's, whichever app instance holds the models. The app sets the
# host's limits on it at start-up (UploadedModels.resize).
UPLOADS = UploadedModels()
