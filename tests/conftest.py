"""Shared fixtures: tiny checkpoints for every model the app serves, and the app running on them.

No test goes online: set before gradio or huggingface_hub is imported anywhere.
"""

import contextlib
import json
import os
import socket
import string
from pathlib import Path

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.pop("HW3_HUB_ORG", None)

import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from hw3core import AlexNet, AlexNetAvgPooling, AlexNetLargeKernel, SentimentClassifier, ShakespeareWriter  # noqa: E402
from hw3core.checkpoints import METRICS_FILE, PLOT_FILES, RUN_FILE  # noqa: E402
from hw3core.text import SPECIAL_TOKENS  # noqa: E402

WORDS = ["the", "film", "was", "good", "great", "bad", "boring", "loved", "it", "not", "a", "."]
CHARACTERS = string.ascii_letters + string.digits + " \n.,;:!?'-"
# Two epochs as training.loop writes them; the app shows the last one.
METRICS = [
    {"epoch": 1, "train_loss": 0.69, "train_accuracy": 0.55, "val_loss": 0.65, "val_accuracy": 0.6,
     "epoch_seconds": 12.5, "examples_per_second": 1600.0},
    {"epoch": 2, "train_loss": 0.41, "train_accuracy": 0.83, "val_loss": 0.45, "val_accuracy": 0.8125,
     "epoch_seconds": 12.0, "examples_per_second": 1700.0},
]


def assert_numerically_close(actual: torch.Tensor, expected: torch.Tensor, *, roundings: int = 64,
                             scale: float | None = None, msg=None) -> None:
    """One quantity computed by two numerical paths (another BLAS kernel, memory layout or summation
    order, which differ between CPUs) agrees to rounding, never bitwise: ``roundings`` units of the
    dtype's precision times the scale of the values (the largest |expected|, or ``scale`` where the
    result is a sum of larger terms)."""
    finfo = torch.finfo(expected.dtype)
    scale = float(expected.detach().abs().amax()) if scale is None else float(scale)
    atol = roundings * finfo.eps * max(scale, finfo.tiny)
    torch.testing.assert_close(actual, expected, rtol=0, atol=atol, msg=msg)


def tiny_models() -> dict:
    """Checkpoint name -> a small model of the right class (the AlexNets have one size only)."""
    return {
        "alexnet": AlexNet(),
        "alexnet-large-kernel": AlexNetLargeKernel(),
        "alexnet-avg-pooling": AlexNetAvgPooling(),
        "sentiment-gru": SentimentClassifier(SPECIAL_TOKENS + WORDS, cell="gru", embedding_dim=8, hidden_size=16,
                                                    tail_length=64),
        "sentiment-lstm": SentimentClassifier(SPECIAL_TOKENS + WORDS, cell="lstm", embedding_dim=8, hidden_size=16,
                                                    tail_length=64),
        "shakespeare-gru": ShakespeareWriter(CHARACTERS, cell="gru", embedding_dim=8, hidden_size=16),
        "shakespeare-lstm": ShakespeareWriter(CHARACTERS, cell="lstm", embedding_dim=8, hidden_size=16),
    }


def write_training_record(folder: Path) -> None:
    """metrics.jsonl, training.json and the three curve plots, as a training run leaves them."""
    (folder / METRICS_FILE).write_text("".join(json.dumps(row) + "\n" for row in METRICS))
    (folder / RUN_FILE).write_text(json.dumps({"hardware": "test fixture"}))
    for key, file in PLOT_FILES.items():
        plot = Image.new("RGB", (500, 320), "white")
        draw = ImageDraw.Draw(plot)
        draw.line([(50, 30), (50, 280), (470, 280)], fill="black", width=2)  # axes
        draw.line([(50 + 420 * i, 280 - 230 * row[key]) for i, row in enumerate(METRICS)], fill=(31, 119, 180), width=3)
        draw.text((200, 295), key, fill="black")
        plot.save(folder / file)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> Path:
    """A checkpoint root with every model the app serves, each with a training record."""
    root = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    for name, model in tiny_models().items():
        model.save_pretrained(root / name)
        write_training_record(root / name)
    return root


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_app(root: Path):
    """The app on its checkpoint root, served on a free local port; yields its URL."""
    import app

    demo = app.build_app(root)
    _, url, _ = app.launch(demo, "127.0.0.1", free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield url
    finally:
        demo.close()


@pytest.fixture(scope="session")
def app_url(checkpoints):
    with running_app(checkpoints) as url:
        yield url
