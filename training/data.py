"""The three data sets, read from the files a user downloads, and their deterministic splits."""

import csv
import random
import re
import tarfile
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2
from tqdm import tqdm

from hw3core.alexnet import DOMAINS, IMAGE_SIZE, decode_image, normalize_pixels
from hw3core.text import pad_reviews

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


class DataError(Exception):
    """A data path or file that cannot be read; the message says which and why."""


# ----- PACS (Parts A and B) -----


def find_pacs_root(path: str | Path) -> Path:
    """Accepts the folder holding the four domain folders, or one level above it (``.../pacs``)."""
    path = Path(path)
    for candidate in (path, path / "pacs", path / "PACS"):
        if all((candidate / domain).is_dir() for domain in DOMAINS):
            return candidate
    raise DataError(f"{path} is not a PACS folder: expected sub-folders {', '.join(DOMAINS)}")


def pacs_samples(path: str | Path) -> list[tuple[str, int]]:
    """(image path relative to the PACS root, domain id) for every image, in sorted order."""
    root = find_pacs_root(path)
    samples = []
    for label, domain in enumerate(DOMAINS):
        for file in sorted((root / domain).rglob("*")):
            if file.suffix.lower() in IMAGE_SUFFIXES:
                samples.append((file.relative_to(root).as_posix(), label))
    return samples


def stratified_split(labels: list[int], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices of a seeded split that holds out ``val_fraction`` of every class."""
    rng = random.Random(seed)
    train, val = [], []
    for label in sorted(set(labels)):
        members = [i for i, y in enumerate(labels) if y == label]
        rng.shuffle(members)
        n_val = round(len(members) * val_fraction)
        val += members[:n_val]
        train += members[n_val:]
    return sorted(train), sorted(val)


class ImageFolderDataset(Dataset):
    """Images by path, each decoded and resized once, when the data set is built, and kept as uint8
    (1.5 GB for all of PACS): an epoch then costs only the network. With a ``crop_scale`` each read draws
    a random crop (at least that share of the image) and flip (training); without one every read is the
    plain preprocessing of the app.
    An unreadable image yields None, which ``collate_images`` drops and counts."""

    def __init__(self, root: Path, samples: list[tuple[str, int]], crop_scale: float | None = None):
        self.root = root
        self.samples = samples
        self.images = [self._decode(path) for path, _ in tqdm(samples, desc="decoding images", leave=False,
                                                               mininterval=2, disable=len(samples) < 1000)]
        self.augment = None if crop_scale is None else train_augmentation(crop_scale)

    def _decode(self, path: str) -> torch.Tensor | None:
        try:
            with Image.open(self.root / path) as image:
                return decode_image(image.convert("RGB"))
        except (OSError, Image.DecompressionBombError, ValueError):
            return None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        image = self.images[index]
        if image is None:
            return None
        if self.augment is not None:
            image = self.augment(image)
        return normalize_pixels(image), self.samples[index][1]


def train_augmentation(crop_scale: float) -> v2.Compose:
    """Crops and flips keep an image's domain (its style) while moving and rescaling its content.
    A crop covers ``crop_scale`` to all of the image: the smaller it may be, the more its strokes and
    textures are magnified, and these are what tell the domains apart."""
    return v2.Compose([
        v2.RandomResizedCrop(IMAGE_SIZE, scale=(crop_scale, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
    ])


def collate_images(batch: list) -> dict:
    good = [item for item in batch if item is not None]
    images = torch.stack([image for image, _ in good]) if good else torch.empty(0, 3, IMAGE_SIZE, IMAGE_SIZE)
    return {
        "images": images,
        "labels": torch.tensor([label for _, label in good], dtype=torch.long),
        "skipped": len(batch) - len(good),
    }


# ----- IMDB (Part C) -----

_IMDB_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/[^/]+\.txt$")
LABELS = {"negative": 0, "positive": 1}


def read_imdb(path: str | Path) -> list[tuple[str, int]]:
    """Labelled reviews (text, 1 for positive) from the aclImdb tarball, its extracted folder, or a
    CSV with columns ``review`` and ``sentiment`` (``positive``/``negative``), in a stable order."""
    path = Path(path)
    if path.is_dir():
        reviews = _imdb_from_folder(path)
    elif path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
        reviews = _imdb_from_tarball(path)
    elif path.is_file() and path.suffix.lower() == ".csv":
        reviews = _imdb_from_csv(path)
    else:
        raise DataError(f"{path}: expected aclImdb_v1.tar.gz, an extracted aclImdb folder, or a CSV file")
    if not reviews:
        raise DataError(f"{path}: no labelled reviews found (aclImdb/{{train,test}}/{{pos,neg}}/*.txt)")
    return reviews


def _imdb_from_tarball(path: Path) -> list[tuple[str, int]]:
    found = []
    try:
        with tarfile.open(path) as archive:
            for member in archive:
                match = _IMDB_MEMBER.search(member.name)
                if member.isfile() and match:
                    text = archive.extractfile(member).read().decode("utf-8", errors="replace")
                    found.append((member.name, text, int(match[2] == "pos")))
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DataError(f"{path}: cannot read the tarball: {error}") from None
    return [(text, label) for _, text, label in sorted(found)]


def _imdb_from_folder(path: Path) -> list[tuple[str, int]]:
    files = sorted(p for p in path.rglob("*.txt") if _IMDB_MEMBER.search(p.as_posix()))
    return [(f.read_text(encoding="utf-8", errors="replace"), int(f.parent.name == "pos")) for f in files]


def _imdb_from_csv(path: Path) -> list[tuple[str, int]]:
    reviews = []
    with open(path, newline="", encoding="utf-8", errors="replace") as file:
        reader = csv.DictReader(file)
        if not reader.fieldnames or not {"review", "sentiment"} <= set(reader.fieldnames):
            raise DataError(f"{path}: the CSV needs the columns 'review' and 'sentiment'")
        for row in reader:
            sentiment = (row.get("sentiment") or "").strip().lower()
            if row.get("review") is None or sentiment not in LABELS:
                raise DataError(
                    f"{path}, line {reader.line_num}: expected a review and a sentiment of "
                    f"'positive' or 'negative', got {sentiment!r}"
                )
            reviews.append((row["review"], LABELS[sentiment]))
    return reviews


def seeded_subset(indices: list[int], limit: int | None, seed: int) -> list[int]:
    """``limit`` of the indices, drawn with a seed (a smoke run keeps every class), or all of them."""
    if not limit:
        return indices
    generator = torch.Generator().manual_seed(seed)
    return sorted(indices[i] for i in torch.randperm(len(indices), generator=generator)[:limit].tolist())


def balanced_holdout(labels: list[int], n_val: int, seed: int) -> tuple[list[int], list[int]]:
    """The assignment's split: ``n_val`` examples held out, an equal share of each class; the rest train."""
    if n_val >= len(labels):
        raise DataError(f"cannot hold out {n_val} of {len(labels)} reviews for validation")
    rng = random.Random(seed)
    classes = sorted(set(labels))
    val = []
    for k, label in enumerate(classes):
        members = [i for i, y in enumerate(labels) if y == label]
        rng.shuffle(members)
        val += members[: n_val // len(classes) + (k < n_val % len(classes))]
    held = set(val)
    return [i for i in range(len(labels)) if i not in held], sorted(val)


class ReviewDataset(Dataset):
    def __init__(self, encoded: list[list[int]], labels: list[int]):
        self.encoded = encoded
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[list[int], int]:
        return self.encoded[index], self.labels[index]


def collate_reviews(batch: list[tuple[list[int], int]]) -> dict:
    reviews, lengths = pad_reviews([ids for ids, _ in batch])
    return {"reviews": reviews, "lengths": lengths, "labels": torch.tensor([y for _, y in batch])}


# ----- Tiny Shakespeare (Part D) -----


def read_text(path: str | Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is not a file (expected a plain UTF-8 text, e.g. tinyshakespeare/input.txt)")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not UTF-8 text: {error}") from None


def split_text(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """The first 90% trains, the last 10% validates (no shuffling: the texts stay contiguous)."""
    cut = int(len(text) * (1 - val_fraction))
    return text[:cut], text[cut:]


class CharChunks(Dataset):
    """Non-overlapping windows of ``history`` characters, each with the window shifted by one as
    its targets, so every position of every window is a training example (teacher forcing)."""

    def __init__(self, ids: torch.Tensor, history: int):
        self.ids = ids
        self.history = history

    def __len__(self) -> int:
        return max(0, (len(self.ids) - 1) // self.history)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = index * self.history
        window = self.ids[start : start + self.history + 1]
        return window[:-1], window[1:]


class CharStreams(Dataset):
    """The text cut into ``streams`` contiguous rows, each read in windows of ``history`` characters
    (truncated backpropagation through time, as char-rnn trains). Example ``i`` is window
    ``i // streams`` of row ``i % streams``, so read in order in batches of ``streams``, batch k holds
    window k of every row: each window continues the previous batch's window of the same row, and a
    model can start it from the state that one ended in. Items are (inputs, targets, window)."""

    def __init__(self, ids: torch.Tensor, history: int, streams: int):
        row_length = len(ids) // streams
        self.rows = ids[: row_length * streams].view(streams, row_length)
        self.history = history
        self.streams = streams
        self.windows = max(0, (row_length - 1) // history)

    def __len__(self) -> int:
        return self.windows * self.streams

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        window, row = divmod(index, self.streams)
        start = window * self.history
        chars = self.rows[row, start : start + self.history + 1]
        return chars[:-1], chars[1:], window


def collate_chars(batch: list) -> dict:
    """Windows of CharChunks, or of CharStreams with the index of the batch's window (``window``)."""
    collated = {"inputs": torch.stack([item[0] for item in batch]), "targets": torch.stack([item[1] for item in batch])}
    if len(batch[0]) == 3:
        collated["window"] = batch[0][2]
    return collated

