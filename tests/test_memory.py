"""The app's resident memory with the shipped checkpoints: at most MAX_RESIDENT_MB after start-up (every model
loaded) and after one request to every endpoint, which adds at most MAX_GROWTH_MB (what the server sets up on
first use; not what the largest request's buffers once needed). The app runs as ``python app.py`` runs it,
in a process of its own; its memory is read from /proc. Prints the figures (pytest -s)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from conftest import free_port
from demos.examples import example_images
from tests.student_models import StarterGRUCell, StarterSentenceGeneration

REPO = Path(__file__).resolve().parent.parent
# torch (with its CUDA libraries) and Gradio take about 0.6 GB, the models and the app the rest: 0.78 GB after
# start and 0.86 GB after the requests, measured here. torch._dynamo, which would add 149 MB, is never imported.
MAX_RESIDENT_MB = 1000
# What the server sets up on first use: about 30 MB with the first request, 15 MB with the AlexNets' first, and
# 18 MB with the first curves comparison (TensorBoard's reader and matplotlib load then), measured here.
MAX_GROWTH_MB = 96
MODELS = 7

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")


def resident_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def requests(student: Path, log: Path) -> dict[str, list]:
    image = handle_file(example_images()[0])
    review = "A moving, beautifully acted film, though far too long."
    return {  # the text models first: the first request of all pays for what the server sets up on first use
        "/score_sentiment": [review], "/read_review": [review], "/word_influence": [review], "/gates": [review],
        "/classify_domain": [image], "/explain_domain": [image], "/first_layers": [],
        "/generate": ["ROMEO", 200, 0.8, 0, "GRU"], "/inspect_text": ["ROMEO:\nWhat light", "LSTM"],
        "/check_model": [handle_file(student), "auto"], "/your_writer": ["ROMEO:\nWhat light"],
        "/your_generate": ["JULIET"], "/your_domain": [image], "/your_sentiment": [review],
        "/your_curves": [handle_file(log), "AlexNet"],
    }


def test_the_app_with_the_shipped_models_stays_under_its_memory_bound(tmp_path):
    import torch

    characters = sorted(set("ROMEO:\nWhat light JULIET"))
    student = tmp_path / "writer.pt"
    torch.save({"model": StarterSentenceGeneration(len(characters), 12, StarterGRUCell, 16).state_dict(),
                "vocabulary": characters}, student)
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    env.pop("HW3_HUB_ORG", None)
    env.pop("HW3_CHECKPOINTS", None)
    app = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=REPO, env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        loaded = []
        deadline = time.monotonic() + 300
        while len(loaded) < MODELS and time.monotonic() < deadline:
            line = app.stdout.readline()
            assert line, "the app stopped"
            if ": loaded from " in line or " is not available: " in line:
                loaded.append(line.strip())
        assert len(loaded) == MODELS and all(": loaded from " in line for line in loaded), loaded
        after_start = resident_mb(app.pid)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False)
        calls, growth = requests(student, next((REPO / "checkpoints" / "alexnet").glob("events.out.tfevents.*"))), {}
        assert set(calls) == set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
        for api_name, arguments in calls.items():
            before = resident_mb(app.pid)
            try:
                client.predict(*arguments, api_name=api_name)
            except AppError as error:  # a writer was checked: /your_domain and /your_sentiment refuse it, once read
                assert api_name in ("/your_domain", "/your_sentiment") and "this compares" in str(error), error
            growth[api_name] = resident_mb(app.pid) - before
        after_requests = resident_mb(app.pid)
    finally:
        app.terminate()
        app.wait(timeout=30)
    print(f"\napp resident memory: {after_start:.0f} MB after start, {after_requests:.0f} MB after one request "
          f"to each of {len(calls)} endpoints; growth by endpoint (MB): "
          + ", ".join(f"{name} {mb:.0f}" for name, mb in growth.items()))
    assert max(after_start, after_requests) <= MAX_RESIDENT_MB and after_requests - after_start <= MAX_GROWTH_MB


def test_the_app_does_not_import_torchvision():
    """Importing torchvision brings torch._dynamo, SymPy and Triton with it: 165 MB resident the app never uses
    (tests/test_meta_device.py: nor does building a model on the meta device)."""
    loaded = subprocess.run([sys.executable, "-c", "import sys, app; print(sorted(m for m in sys.modules if m in "
                             "('torchvision', 'torch._dynamo', 'triton')))"], cwd=REPO, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"
