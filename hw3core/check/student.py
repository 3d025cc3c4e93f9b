"""Reading a student's saved model, safely, and the parts of it that the check compares.

Only ``torch.load(..., weights_only=True)`` or a safetensors file is ever used: never a full
unpickle, which can run any code. What is read must be a state dict (tensors by name), raw or in
the usual wrappers (``{'model': ...}``, ``{'state_dict': ...}``, the starter's Part D
``{'model': ..., 'vocabulary': [...]}``), or one of this project's own checkpoint files (a
``model.safetensors``, a ``compressed.safetensors``, or their folder with its ``config.json``).
"""

import json
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor, nn

from hw3core.compression import FORMAT as COMPRESSED_FORMAT
from hw3core.compression import CompressedFileError, load_compressed

SAVE_STATE_DICT = "torch.save(model.state_dict(), 'best_model.pt')"
SAVE_WITH_VOCABULARY = "torch.save({'model': model.state_dict(), 'vocabulary': vocabulary}, path)"
WRAPPER_KEYS = ("model", "state_dict", "model_state_dict")
VOCABULARY_KEYS = ("vocabulary", "vocab")
# What a compressed checkpoint may decode into: the largest of the assignment's models (an AlexNet,
# 58.3 million weights) with room to spare. Its few bytes of metadata can declare any shape.
MAX_DECODED_PARAMETERS = 100_000_000
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_DIGITS = re.compile(r"(\d+)")


class StudentFileError(ValueError):
    """A file that cannot be read as a model's weights; the message says why and what to do."""


@dataclass
class StudentWeights:
    """What a file held: the weights in the order they were saved, and the vocabulary if it had one."""

    state: dict[str, Tensor]
    vocabulary: list[str] | None = None
    source: str = "state dict"
    module: nn.Module | None = field(default=None, repr=False)  # when an nn.Module was given, not a file


@dataclass
class Layer:
    """One layer of a state dict: a weight (2-D or more) and the bias saved after it under the same prefix."""

    prefix: str
    weight: Tensor
    bias: Tensor | None = None
    keys: list[str] = field(default_factory=list)  # the state dict's keys of the weight and the bias

    @property
    def parameters(self) -> int:
        return self.weight.numel() + (0 if self.bias is None else self.bias.numel())


# ----- reading -----


def read_weights(source) -> StudentWeights:
    """A file path, a checkpoint folder of this project, a state dict (or wrapper) or an nn.Module ->
    the weights; raises StudentFileError with the reason for anything else. Weights already read pass as they are."""
    if isinstance(source, StudentWeights):
        return source
    if isinstance(source, nn.Module):
        return StudentWeights(dict(source.state_dict()), source="nn.Module", module=source)
    if isinstance(source, dict):
        return _unwrap(source, "state dict")
    path = Path(source)
    if path.is_dir():
        return _read_folder(path)
    if not path.is_file():
        raise StudentFileError(f"{path.name or path}: no such file.")
    size = path.stat().st_size
    if size == 0:
        raise StudentFileError(f"{path.name} is empty (0 bytes): save the model again with {SAVE_STATE_DICT}.")
    with open(path, "rb") as file:
        head = file.read(16)
    if _looks_like_safetensors(head, size):
        return _read_safetensors(path)
    return _unwrap(_torch_load(path, head), "torch.save file")


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    """safetensors: an 8-byte little-endian header length, then the JSON header ('{')."""
    return len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < size


def _torch_load(path: Path, head: bytes):
    name = path.name
    is_zip = head.startswith(b"PK\x03\x04")
    if not is_zip and not head.startswith(b"\x80"):  # torch.save writes a zip archive, or (legacy) a pickle
        raise StudentFileError(
            f"{name} is not a PyTorch checkpoint (torch.save) or a safetensors file. Save the weights with "
            f"{SAVE_STATE_DICT}.")
    try:
        # mmap: the tensors are read from the file as they are used, not copied into memory first.
        return torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except pickle.UnpicklingError as error:
        # torch's own message goes on to advise weights_only=False: never passed on to a user.
        found = _GLOBAL.search(str(error))
        if found is None:  # no object of any class: a pickle torch.save did not write, or a damaged one
            raise StudentFileError(f"{name} cannot be read as a PyTorch checkpoint (a damaged file, or a pickle that "
                                   f"torch.save did not write). Save the weights with {SAVE_STATE_DICT}.") from None
        what = f" (`{found.group(1)}`)"
        raise StudentFileError(
            f"{name} holds pickled Python objects{what}, not only weights: a whole model saved with "
            f"torch.save(model), or code. It is not unpickled, since unpickling can run any code. Save the "
            f"weights alone: {SAVE_STATE_DICT}.") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        if is_zip or "central directory" in str(error) or isinstance(error, EOFError):
            raise StudentFileError(
                f"{name} is incomplete or damaged ({path.stat().st_size:,} bytes; the archive cannot be read to "
                f"its end): was the save or the upload cut short? Save it again with {SAVE_STATE_DICT} and "
                f"upload the whole file.") from None
        raise StudentFileError(f"{name} cannot be read as a PyTorch checkpoint. Save the weights with "
                               f"{SAVE_STATE_DICT}.") from None


def _read_safetensors(path: Path) -> StudentWeights:
    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata() or {}
            if metadata.get("format") == COMPRESSED_FORMAT:
                decoded = load_compressed(path, max_parameters=MAX_DECODED_PARAMETERS)
                state = {name: decoded[name] for name in sorted(decoded, key=_layer_order)}
                return StudentWeights(state, source="this project's compressed checkpoint")
            # safetensors stores its tensors sorted by name ('bias' before 'weight'), not in the order saved.
            names = sorted(file.keys(), key=_layer_order)
            state = {name: file.get_tensor(name) for name in names}
    except CompressedFileError as error:
        raise StudentFileError(f"{path.name} cannot be read as this project's compressed checkpoint: "
                               f"{str(error).removeprefix(str(path)).strip()}.") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise StudentFileError(f"{path.name} is a damaged safetensors file ({error}).") from None
    return StudentWeights(state, source="safetensors file")


def _read_folder(folder: Path) -> StudentWeights:
    """This project's checkpoint folder: its weights, and the vocabulary its config.json holds."""
    from hw3core.checkpoints import CONFIG_FILE, weights_file

    weights = weights_file(folder)
    if weights is None:
        raise StudentFileError(f"{folder} has no model.safetensors or compressed.safetensors.")
    read = _read_safetensors(weights)
    config_file = folder / CONFIG_FILE
    if config_file.is_file():
        try:
            config = json.loads(config_file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            config = {}
        vocabulary = config.get("vocabulary") or (list(config["characters"]) if "characters" in config else None)
        read.vocabulary = _vocabulary(vocabulary, folder.name) if vocabulary else None
    read.source = f"this project's checkpoint folder ({weights.name})"
    return read


def _unwrap(loaded, source: str) -> StudentWeights:
    if isinstance(loaded, nn.Module):  # only reachable from Python: weights_only refuses a pickled module
        return read_weights(loaded)
    if not isinstance(loaded, dict):
        raise StudentFileError(f"The file holds {_describe(loaded)}, not a state dict. Save the weights with "
                               f"{SAVE_STATE_DICT}.")
    vocabulary = next((loaded[key] for key in VOCABULARY_KEYS if key in loaded), None)
    wrapper = next((key for key in WRAPPER_KEYS if isinstance(loaded.get(key), dict)), None)
    state = loaded[wrapper] if wrapper else loaded
    if wrapper:
        source = f"{{'{wrapper}': state dict{', ' + repr(VOCABULARY_KEYS[0]) + ': ...' if vocabulary else ''}}}"
    not_tensors = [key for key, value in state.items() if not isinstance(value, Tensor)]
    if not_tensors or not state:
        shown = ", ".join(repr(key) for key in not_tensors[:5])
        raise StudentFileError(
            "The file holds a dict that is not a state dict" + (f" (not tensors: {shown})" if shown else " (empty)")
            + f". Save the weights with {SAVE_STATE_DICT}, or {SAVE_WITH_VOCABULARY} for a text model.")
    return StudentWeights(dict(state), _vocabulary(vocabulary, "the file") if vocabulary is not None else None,
                          source)


def _vocabulary(vocabulary, where: str) -> list[str]:
    """A vocabulary as a list (id -> token): a list or string as saved, or a dict token -> id."""
    if isinstance(vocabulary, str):
        return list(vocabulary)
    if isinstance(vocabulary, dict):
        if not all(isinstance(i, int) for i in vocabulary.values()):
            raise StudentFileError(f"The vocabulary in {where} is a dict whose values are not token ids.")
        return [token for token, _ in sorted(vocabulary.items(), key=lambda item: item[1])]
    if isinstance(vocabulary, (list, tuple)) and all(isinstance(token, str) for token in vocabulary):
        return list(vocabulary)
    raise StudentFileError(f"The vocabulary in {where} must be a list of strings (id -> token), not "
                           f"{_describe(vocabulary)}.")


def _describe(value) -> str:
    if isinstance(value, Tensor):
        return f"a single tensor of shape {list(value.shape)}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"


def _layer_order(name: str) -> tuple:
    """Layers by their names' numbers, and in each layer its weight before its bias (as modules register them)."""
    prefix, _, leaf = name.rpartition(".")
    return natural_key(prefix), leaf != "weight", leaf


def natural_key(name: str) -> list:
    """'conv11.weight' after 'conv4.weight': numbers compared as numbers."""
    return [int(part) if part.isdigit() else part for part in _DIGITS.split(name)]


# ----- layers -----


def layers(state: dict[str, Tensor]) -> list[Layer]:
    """The weighted layers of a state dict, in its order. Integer tensors (BatchNorm's step counter) are
    skipped; a 1-D tensor that is not a bias after its weight (a BatchNorm's own scale) is a layer."""
    found: list[Layer] = []
    for key, tensor in state.items():
        if not tensor.is_floating_point():
            continue
        prefix, _, leaf = key.rpartition(".")
        last = found[-1] if found else None
        if tensor.ndim == 1 and "bias" in leaf and last and last.prefix == prefix and last.bias is None:
            last.bias = tensor
            last.keys.append(key)
        elif tensor.ndim >= 1:
            found.append(Layer(prefix, tensor, keys=[key]))
    return found


def parameter_count(state: dict[str, Tensor]) -> int:
    return sum(t.numel() for t in state.values() if t.is_floating_point())
