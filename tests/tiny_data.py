"""Tiny stand-ins for the three data sets, in the layouts a user's download arrives in, and
helpers to run the training entry points as a user would (``python -m training.<script>``).

The session fixtures built from these are in ``tiny_data_fixtures`` (a test module asks for them
with ``pytest_plugins = ["tiny_data_fixtures"]``).
"""

import csv
import io
import json
import os
import random
import subprocess
import sys
import tarfile
from pathlib import Path

from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
PACS_DOMAINS = ("art_painting", "cartoon", "photo", "sketch")  # as in the download, not imported: tests check it
PACS_CATEGORIES = ("dog", "horse")
WORDS = ("great", "awful", "plot", "actor", "boring", "wonderful", "film", "the", "a", "and", "was", "not")

# ----- PACS: pacs/<domain>/<category>/<n>.jpg (sketches are .png), 227x227 RGB -----


def make_pacs(root: Path, per_category: int = 3) -> Path:
    """Draws ``per_category`` images for every domain and category; returns the ``pacs`` folder."""
    rng = random.Random(0)
    pacs = root / "pacs"
    for d, domain in enumerate(PACS_DOMAINS):
        for category in PACS_CATEGORIES:
            folder = pacs / domain / category
            folder.mkdir(parents=True)
            for n in range(per_category):
                image = Image.new("RGB", (227, 227), (60 * d, rng.randrange(256), rng.randrange(256)))
                box = sorted(rng.sample(range(227), 2)), sorted(rng.sample(range(227), 2))
                ImageDraw.Draw(image).ellipse((box[0][0], box[1][0], box[0][1], box[1][1]), fill=(255, 255, 0))
                suffix = ".png" if domain == "sketch" else ".jpg"
                image.save(folder / f"pic_{n:03d}{suffix}")
    return pacs


def add_corrupt_images(pacs: Path) -> list[str]:
    """A garbage '.jpg' and a zero-byte '.png' in the photo domain; returns their relative paths."""
    garbage = pacs / "photo" / "dog" / "garbage.jpg"
    garbage.write_bytes(b"this is not a JPEG at all" * 20)
    empty = pacs / "photo" / "horse" / "empty.png"
    empty.write_bytes(b"")
    return [p.relative_to(pacs).as_posix() for p in (garbage, empty)]


# ----- IMDB: aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt -----


def tiny_reviews(per_folder: int = 6) -> list[tuple[str, str, int]]:
    """(member name inside the tarball, text, label) in canonical (sorted member) order.

    Texts hold what a real review holds and a CSV must quote: commas, quotes, line breaks,
    ``<br />`` and non-ASCII letters."""
    rng = random.Random(1)
    reviews = []
    for split in ("train", "test"):
        for folder, label in (("pos", 1), ("neg", 0)):
            for n in range(per_folder):
                rating = rng.randint(7, 10) if label else rng.randint(1, 4)
                cue = "great, wonderful" if label else "awful, \"boring\""
                filler = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
                text = f"{cue} {filler}.<br /><br />Café {n}\nthe end"
                reviews.append((f"aclImdb/{split}/{folder}/{n}_{rating}.txt", text, label))
    return sorted(reviews)


def expected_reviews(reviews) -> list[tuple[str, int]]:
    return [(text, label) for _, text, label in reviews]


def make_imdb_tarball(path: Path, reviews) -> Path:
    """aclImdb_v1.tar.gz with the labelled reviews plus the parts a loader must ignore."""
    extras = {
        "aclImdb/README": "Large Movie Review Dataset v1.0",
        "aclImdb/imdb.vocab": "the\nand\n",
        "aclImdb/train/urls_pos.txt": "http://www.imdb.com/title/tt0000001/usercomments\n",
        "aclImdb/train/unsup/0_0.txt": "an unlabelled review",
        "aclImdb/train/labeledBow.feat": "9 0:9 1:1\n",
    }
    with tarfile.open(path, "w:gz") as archive:
        for directory in ("aclImdb", "aclImdb/train", "aclImdb/test", "aclImdb/train/unsup",
                          *(f"aclImdb/{s}/{f}" for s in ("train", "test") for f in ("pos", "neg"))):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            archive.addfile(info)
        members = [(name, text) for name, text, _ in reviews] + list(extras.items())
        for name, text in reversed(members):  # not in sorted order: the loader must sort
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def make_imdb_folder(root: Path, reviews) -> Path:
    """The extracted tarball: ``root/aclImdb/...``; returns ``root``."""
    for name, text, _ in reviews:
        file = root / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text, encoding="utf-8")
    (root / "aclImdb" / "train" / "unsup").mkdir(parents=True, exist_ok=True)
    (root / "aclImdb" / "train" / "unsup" / "0_0.txt").write_text("an unlabelled review")
    return root


def make_imdb_csv(path: Path, reviews, reverse: bool = True) -> Path:
    """The Kaggle layout: columns ``review`` and ``sentiment`` (``positive``/``negative``)."""
    rows = [(text, "positive" if label else "negative") for _, text, label in reviews]
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["review", "sentiment"])
        writer.writerows(reversed(rows) if reverse else rows)
    return path


# ----- Text: a plain UTF-8 file -----


def make_text(path: Path, n_characters: int, seed: int = 2) -> Path:
    rng = random.Random(seed)
    lines = []
    while sum(len(line) + 1 for line in lines) < n_characters:
        speaker = rng.choice(["ROMEO", "JULIET", "NURSE"])
        lines.append(f"{speaker}:\n" + " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 10))) + ".\n")
    text = "\n".join(lines)[:n_characters]
    path.write_text(text, encoding="utf-8")
    return path


# ----- Running the entry points -----


def python_env(**extra: str) -> dict:
    """The environment of a child process: one thread (the CPUs are shared) and no Hub access."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", **extra}


def run_module(module: str, *args, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m module args...`` from the repository root, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=REPO, env=env or python_env(), capture_output=True, text=True, timeout=timeout, check=False,
    )


def check_ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    return result


def last_json_line(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
