"""Checkpoint folders: what each one holds, which class rebuilds it, and safe loading.

A checkpoint is a folder in the Hugging Face format (``config.json`` + ``model.safetensors``,
written by ``PyTorchModelHubMixin``) plus what its training run recorded: ``metrics.jsonl``
(one JSON object per epoch), ``training.json`` (command, split, hardware, wall time) and the
three curve plots. Only JSON and safetensors are ever read: never a pickle.
"""

import json
import re
from pathlib import Path

import safetensors.torch
from torch import nn

from hw3core.compression import COMPRESSED_FILE, CompressedFileError, decoding_errors, read_compressed
from hw3core.served import build_served

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.jsonl"
RUN_FILE = "training.json"
PLOT_FILES = {
    "train_loss": "train_loss.png",
    "train_accuracy": "train_accuracy.png",
    "val_accuracy": "val_accuracy.png",
}
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message names the file and what is wrong."""


def is_valid_repo_id(repo_id: str) -> bool:
    return bool(_REPO_ID.match(repo_id)) and ".." not in repo_id


def weights_file(folder: str | Path) -> Path | None:
    """The folder's weights: the dense file where there is one (a fresh training run), else the compressed one."""
    for name in (WEIGHTS_FILE, COMPRESSED_FILE):
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def load_local(cls: type[nn.Module], folder: str | Path, file: str | None = None) -> nn.Module:
    """Rebuilds a model from a local checkpoint folder, dense or compressed, strictly (every weight
    present, every shape right). ``file`` picks the weights (default: ``weights_file``'s choice).
    A compressed file is served as it is stored (``hw3core.served``): its pruned Linear layers sparse."""
    folder = Path(folder)
    weights = folder / file if file else weights_file(folder)
    if weights is None or not weights.is_file():
        raise CheckpointError(f"{weights or folder / WEIGHTS_FILE} is missing")
    if not (folder / CONFIG_FILE).is_file():
        raise CheckpointError(f"{folder / CONFIG_FILE} is missing")
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{folder / CONFIG_FILE} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{folder / CONFIG_FILE} must hold a JSON object")
    try:
        if weights.name == COMPRESSED_FILE:
            with decoding_errors(weights):
                stored = read_compressed(weights)
            return build_served(cls, config, stored)
        model = cls(**config)
        safetensors.torch.load_model(model, weights, strict=True)  # what from_pretrained does, without its print
        return model.eval()
    except CompressedFileError as error:
        raise CheckpointError(str(error)) from None
    except (TypeError, KeyError) as error:  # an unknown, missing or mistyped constructor argument
        raise CheckpointError(f"{folder / CONFIG_FILE} does not fit {cls.__name__}: {error!r}") from None
    except Exception as error:  # noqa: BLE001 (safetensors and torch raise several types for a bad file)
        raise CheckpointError(f"{weights} cannot be loaded into {cls.__name__}: {error}") from None


