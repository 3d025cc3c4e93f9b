"""Where each trained model comes from, loaded once and shared by every request.

A checkpoint NAME (a key of ``hw3core.registry.MODELS``) is looked for in:

1. the folder ``ROOT/NAME``, where ROOT is ``--checkpoints``, else the environment variable
   ``HW3_CHECKPOINTS``, else ``checkpoints`` (where the training scripts write);
2. else, when ``HW3_HUB_ORG`` names a Hugging Face user or organisation, the Hub repo
   ``ORG/hw3-NAME`` (for example ``HW3_HUB_ORG=alice`` -> ``alice/hw3-alexnet``).

Either way only ``config.json``, the weights (``model.safetensors``, or Deep Compression's
``compressed.safetensors``: see ``hw3core.compression``) and what training recorded beside them
(metrics, run description, plots) are read, never a pickle. A checkpoint that is missing or
broken makes that one model unavailable, with a message naming the file and how to fix it;
every other model keeps working.
"""

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import snapshot_download
from torch import nn

from hw3core.checkpoints import (
    CONFIG_FILE,
    METRICS_FILE,
    PLOT_FILES,
    RUN_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    is_valid_repo_id,
    load_local,
    weights_file,
)
from hw3core.compression import COMPRESSED_FILE, COMPRESSION_FILE
from hw3core.memory import return_freed_memory
from hw3core.registry import DEFAULT_ROOT, MODELS

# Every endpoint runs a model on the same few cores: they share one concurrency limit (app.py sets it).
CONCURRENCY_ID = "models"
RECORD_FILES = [METRICS_FILE, RUN_FILE, COMPRESSION_FILE, *PLOT_FILES.values()]
# A failed load is retried after this long: a checkpoint that a training run writes while the app
# is up is picked up, but an unreachable Hub is not asked again on every request.
RETRY_SECONDS = 30.0


class ModelUnavailable(Exception):
    """A model that cannot be used; the message says which file or repo and what to do."""


@dataclass
class Prediction:
    """One model's answer, or why it has none."""

    probabilities: dict[str, float] | None = None
    milliseconds: float | None = None
    parameters: int | None = None
    problem: str | None = None


def hub_repo(org: str, name: str) -> str:
    return f"{org}/hw3-{name}"


class ModelStore:
    """The checkpoints of one app: each model is loaded on first use, once, under a per-model lock."""

    def __init__(self, root: str | Path | None = None, hub_org: str | None = None):
        self.root = Path(root or os.environ.get("HW3_CHECKPOINTS") or DEFAULT_ROOT)
        self.hub_org = hub_org or os.environ.get("HW3_HUB_ORG") or None
        self._models: dict[str, nn.Module] = {}
        self._folders: dict[str, Path] = {}
        self._failures: dict[str, tuple[float, ModelUnavailable]] = {}
        self._sources: dict[str, str] = {}  # where each loaded model's weights came from
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def get(self, name: str) -> nn.Module:
        """The model, loaded strictly from its checkpoint on first use; raises ModelUnavailable."""
        with self._lock(name):
            if name not in self._models:
                self._models[name] = self._remembering_failure(name, lambda: self._load(name))
            return self._models[name]

    def folder(self, name: str) -> Path:
        """The folder holding the checkpoint's training record (from the Hub: without the weights)."""
        local = self.root / name
        if local.is_dir():
            return local
        with self._lock(name):
            if name not in self._folders:
                self._folders[name] = self._remembering_failure(name, lambda: self._download(name, RECORD_FILES))
            return self._folders[name]

    def predict(self, name: str, predict: Callable[[nn.Module], dict[str, float]]) -> Prediction:
        """Runs ``predict`` on the model and times it; an unavailable model gives its problem instead."""
        try:
            model = self.get(name)
        except ModelUnavailable as error:
            return Prediction(problem=str(error))
        start = time.perf_counter()
        probabilities = predict(model)
        return Prediction(
            probabilities=probabilities,
            milliseconds=(time.perf_counter() - start) * 1000,
            parameters=sum(p.numel() for p in model.parameters()),
        )

    def problem(self, name: str) -> str | None:
        """Why the model cannot be used (loading it if need be), or None when it can."""
        try:
            self.get(name)
        except ModelUnavailable as error:
            return str(error)
        return None

    def preload(self) -> dict[str, str]:
        """Loads every model now (a warm-up); returns the unavailable ones' messages, which they keep for later."""
        problems = {name: self.problem(name) for name in MODELS}
        return {name: problem for name, problem in problems.items() if problem}

    def source(self, name: str) -> str | None:
        """The weights file or Hub repo a loaded model came from."""
        return self._sources.get(name)

    def require(self, names: dict[str, str]) -> None:
        """Raises ModelUnavailable naming every model of ``names`` (checkpoint -> title) that cannot be used."""
        problems = [f"{title}: {problem}" for name, title in names.items() if (problem := self.problem(name))]
        if problems:
            raise ModelUnavailable(" ".join(problems))

    def training_command(self, name: str) -> str:
        return MODELS[name].command(self.root)

    def _lock(self, name: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(name, threading.Lock())

    def _remembering_failure(self, name: str, attempt: Callable):
        failed_at, error = self._failures.get(name, (0.0, None))
        if error is not None and time.monotonic() - failed_at < RETRY_SECONDS:
            raise error
        try:
            result = attempt()
        except ModelUnavailable as error:
            self._failures[name] = (time.monotonic(), error)
            raise
        self._failures.pop(name, None)
        return result

    def _load(self, name: str) -> nn.Module:
        local = self.root / name
        # A folder with only the training record (AlexNet weights stay out of git) still looks to the Hub.
        has_weights = weights_file(local) is not None
        folder = local if has_weights else self._download(name, [CONFIG_FILE, WEIGHTS_FILE, COMPRESSED_FILE])
        self._sources[name] = str(weights_file(local)) if has_weights else hub_repo(self.hub_org, name)
        try:
            return load_local(MODELS[name].cls, folder)
        except CheckpointError as error:
            raise ModelUnavailable(f"{error}. Retrain it with `{self.training_command(name)}`.") from None
        finally:
            return_freed_memory()  # what decoding the file used: the app is long-lived

    def _download(self, name: str, files: list[str]) -> Path:
        local = self.root / name
        if not self.hub_org:
            raise ModelUnavailable(
                f"No checkpoint: `{local / WEIGHTS_FILE}` does not exist. Train it with `{self.training_command(name)}`, "
                f"or set HW3_HUB_ORG to load `ORG/hw3-{name}` from the Hugging Face Hub."
            )
        repo = hub_repo(self.hub_org, name)
        if not is_valid_repo_id(repo):
            raise ModelUnavailable(f"HW3_HUB_ORG={self.hub_org!r} does not make a valid Hub repo id ({repo!r}).")
        try:
            return Path(snapshot_download(repo, allow_patterns=files))
        except Exception as error:  # noqa: BLE001 (offline, no such repo, no access, network: each has its own type)
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise ModelUnavailable(
                f"No checkpoint: `{local / WEIGHTS_FILE}` does not exist and the Hub repo `{repo}` could not be read "
                f"({type(error).__name__}: {reason}). Train it with `{self.training_command(name)}`."
            ) from None
