"""Deep Compression's storage format (Han, Mao & Dally, ICLR 2016): sparse, quantized weights as tensors.

Each compressed weight tensor NAME is stored as

* ``NAME.codebook``: its shared values (float32, ``2**bits`` of them, found by k-means);
* ``NAME.codes``: for every kept weight, the index of its value in the codebook, bit-packed;
* where it was pruned, the positions of the kept weights, whichever is smaller:
  ``NAME.mask`` (one bit per weight) or ``NAME.gaps`` (the distance from the previous kept weight,
  one byte each; a 0 byte means "255 further on, nothing kept here").

Other tensors (the biases) are stored as they are. The safetensors metadata records each
compressed tensor's shape, bits and count of kept weights, so a file is checked before it is used.
Decoding gives back the dense state dict exactly: the codebook value at every kept position, zero elsewhere.
"""

import json
import math
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

COMPRESSED_FILE = "compressed.safetensors"
COMPRESSION_FILE = "compression.json"  # the record training.compress writes beside it
FORMAT = "hw3-deep-compression/1"
_GAP_LIMIT = 255
MAX_BITS = 8  # a codebook of at most 256 shared values, one byte a code at most


class CompressedFileError(Exception):
    """A compressed file that cannot be decoded; the message names the file and what is wrong."""


# ----- Quantization: a codebook per tensor -----


def kmeans_codebook(values: torch.Tensor, bits: int, iterations: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """(codebook, codes): ``2**bits`` shared values for ``values`` and each value's index into them.
    One-dimensional k-means started from a linear spread over the range, which Deep Compression
    found keeps the rare large weights that matter most."""
    values = values.detach().float().flatten()
    size = 2**bits
    low, high = values.min().item(), values.max().item()
    codebook = torch.linspace(low, high, size) if high > low else torch.full((size,), low)
    for _ in range(iterations):
        codes = _nearest(values, codebook)
        sums = torch.zeros(size).index_add_(0, codes, values)
        counts = torch.bincount(codes, minlength=size).float()
        codebook = torch.where(counts > 0, sums / counts.clamp(min=1), codebook)
    return codebook, _nearest(values, codebook)


def _nearest(values: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    order = torch.argsort(codebook)
    ordered = codebook[order]
    boundaries = (ordered[1:] + ordered[:-1]) / 2
    return order[torch.bucketize(values, boundaries)]


# ----- Encoding -----


def pack_bits(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Indices below ``2**bits`` -> ``bits`` bits each, packed into bytes (uint8)."""
    codes = codes.numpy().astype(np.uint8)
    planes = (codes[:, None] >> np.arange(bits, dtype=np.uint8)) & 1  # (n, bits), least significant first
    return torch.from_numpy(np.packbits(planes.ravel()))


def unpack_bits(packed: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """The ``count`` indices ``pack_bits`` packed, as int64. Each index's bit planes are packed back into
    one byte (least significant first), so no array larger than the result is made."""
    planes = np.unpackbits(packed.numpy())[: count * bits].reshape(count, bits)
    return torch.from_numpy(np.packbits(planes, axis=1, bitorder="little")[:, 0]).long()


def encode_gaps(positions: torch.Tensor) -> torch.Tensor:
    """Sorted flat positions -> one byte per kept weight, plus a 0 byte for each 255 skipped."""
    gaps = torch.diff(positions, prepend=torch.tensor([-1])).numpy()
    fillers = (gaps - 1) // _GAP_LIMIT
    ends = np.cumsum(fillers + 1) - 1  # where each kept weight's byte goes
    encoded = np.zeros(ends[-1] + 1 if len(ends) else 0, dtype=np.uint8)
    encoded[ends] = gaps - fillers * _GAP_LIMIT
    return torch.from_numpy(encoded)


def decode_gaps(encoded: torch.Tensor) -> torch.Tensor:
    steps = encoded.long()
    positions = torch.cumsum(torch.where(steps == 0, _GAP_LIMIT, steps), 0) - 1
    return positions[steps != 0]


def compress_tensor(name: str, weight: torch.Tensor, mask: torch.Tensor, bits: int) -> tuple[dict, dict]:
    """(tensors, metadata) for one weight: the kept entries (``mask``) quantized to ``bits`` bits."""
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"{name}: bits must be 1 to {MAX_BITS}, not {bits}")
    flat_mask = mask.flatten().bool()
    positions = torch.nonzero(flat_mask).flatten()
    codebook, codes = kmeans_codebook(weight.flatten()[positions], bits)
    tensors = {f"{name}.codebook": codebook, f"{name}.codes": pack_bits(codes, bits)}
    encoding = "dense"
    if len(positions) < weight.numel():
        gaps = encode_gaps(positions)
        encoding = "gaps" if len(gaps) < math.ceil(weight.numel() / 8) else "mask"
        tensors[f"{name}.{encoding}"] = gaps if encoding == "gaps" else torch.from_numpy(np.packbits(flat_mask.numpy()))
    size = sum(t.numel() * t.element_size() for t in tensors.values())
    return tensors, {"shape": list(weight.shape), "bits": bits, "kept": len(positions), "positions": encoding,
                     "bytes": size}


def save_compressed(path, state: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], bits: dict[str, int]) -> dict:
    """Writes ``state`` with every tensor named in ``bits`` compressed (kept where ``masks`` is true,
    everywhere if it has no mask); returns the per-tensor metadata that the file records."""
    tensors, layout = {}, {}
    for name, tensor in state.items():
        if name in bits:
            mask = masks.get(name, torch.ones_like(tensor, dtype=torch.bool))
            encoded, layout[name] = compress_tensor(name, tensor, mask, bits[name])
            tensors.update(encoded)
        else:
            tensors[name] = tensor.detach().float().contiguous()
    save_file(tensors, str(path), metadata={"format": FORMAT, "compressed": json.dumps(layout)})
    return layout


# ----- Decoding -----


def load_compressed(path, max_parameters: int | None = None) -> dict[str, torch.Tensor]:
    """The dense state dict a compressed file holds; raises CompressedFileError naming the file.
    ``max_parameters``: refuse a file that would decode into more weights (a few bytes of metadata can
    declare any shape, so an untrusted file is measured before anything is allocated)."""
    with decoding_errors(path):
        file = read_compressed(path, max_parameters)
        return {**file.plain, **{name: file.dense(name) for name in file.layout}}


@dataclass
class CompressedTensors:
    """A compressed file as stored: its plain tensors (the biases), and per compressed weight its
    layout entry and encoded tensors. Each weight is decoded on demand, dense or as kept entries."""

    plain: dict[str, torch.Tensor]
    layout: dict[str, dict]
    encoded: dict[str, torch.Tensor]

    def kept(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(flat positions (kept,) in increasing order, their values (kept,)) of one compressed weight."""
        return _kept(self.encoded, name, self.layout[name])

    def dense(self, name: str) -> torch.Tensor:
        """The weight with its codebook value at every kept position and zero elsewhere."""
        positions, values = self.kept(name)
        entry = self.layout[name]
        dense = torch.zeros(math.prod(entry["shape"]))
        dense[positions] = values
        return dense.reshape(entry["shape"])


def read_compressed(path, max_parameters: int | None = None) -> CompressedTensors:
    """The file's tensors, checked against its metadata, nothing decoded yet (see ``load_compressed``).
    Raises the errors ``decoding_errors`` turns into a CompressedFileError."""
    with safe_open(str(path), framework="pt") as file:
        metadata = file.metadata() or {}
    if metadata.get("format") != FORMAT:
        raise CompressedFileError(f"{path} is not a compressed checkpoint (format {metadata.get('format')!r})")
    layout = json.loads(metadata["compressed"])
    decoded = sum(_decoded_size(entry) for entry in layout.values())
    if max_parameters is not None and decoded > max_parameters:
        raise CompressedFileError(f"{path} would decode into {decoded:,} weights, more than the "
                                  f"{max_parameters:,} allowed")
    tensors = load_file(str(path))
    # safetensors maps the file and its tensors view the mapping: the plain tensors (kept by the model as they
    # are) are copied, so that the mapping goes once the encoded ones are decoded and dropped.
    plain = {name: tensor.clone() for name, tensor in tensors.items() if name.rsplit(".", 1)[0] not in layout}
    encoded = {name: tensor for name, tensor in tensors.items() if name not in plain}
    return CompressedTensors(plain, layout, encoded)


@contextmanager
def decoding_errors(path):
    """Whatever a damaged or foreign file makes safetensors, json or the decoder raise, as a
    CompressedFileError naming the file."""
    try:
        yield
    except CompressedFileError:
        raise
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        raise CompressedFileError(f"{path} cannot be decoded: {type(error).__name__}: {error}") from None


def _decoded_size(entry: dict) -> int:
    """The number of weights an entry decodes into, once its shape, bits and count are checked."""
    shape, bits, kept = entry["shape"], entry["bits"], entry["kept"]
    if not (isinstance(shape, list) and all(isinstance(n, int) and n >= 0 for n in shape)):
        raise ValueError(f"a shape must be a list of sizes, not {shape!r}")
    size = math.prod(shape)
    if not (isinstance(bits, int) and 1 <= bits <= MAX_BITS and isinstance(kept, int) and 0 <= kept <= size):
        raise ValueError(f"{bits!r} bits and {kept!r} kept weights do not fit shape {shape}")
    return size


def _kept(tensors: dict, name: str, entry: dict) -> tuple[torch.Tensor, torch.Tensor]:
    shape, bits, kept = entry["shape"], entry["bits"], entry["kept"]
    size = _decoded_size(entry)
    codebook = tensors[f"{name}.codebook"]
    if len(codebook) != 2**bits:
        raise ValueError(f"{name}: a {bits}-bit codebook has {2**bits} values, not {len(codebook)}")
    values = codebook[unpack_bits(tensors[f"{name}.codes"], bits, kept)]
    if f"{name}.gaps" in tensors:
        positions = decode_gaps(tensors[f"{name}.gaps"])
    elif f"{name}.mask" in tensors:
        positions = torch.from_numpy(np.unpackbits(tensors[f"{name}.mask"].numpy())[:size]).nonzero().flatten()
    else:
        positions = torch.arange(size)
    if len(positions) != kept or (kept and positions[-1] >= size):
        raise ValueError(f"{name}: the positions do not fit {kept} kept weights in shape {shape}")
    return positions, values
