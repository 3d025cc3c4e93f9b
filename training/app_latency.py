"""Request latency of the app's three endpoints, through gradio_client over local HTTP."""

import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gradio_client import Client, handle_file  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

import app  # noqa: E402

REQUESTS = {
    "classify_domain": lambda image: (handle_file(image),),
    "score_sentiment": lambda _: ("A moving, beautifully acted film; I loved every minute of it.",),
    "generate": lambda _: ("ROMEO", 200, 1.0, 0),
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def measure_app(repeats: int, checkpoints: str | Path | None = None) -> dict[str, float]:
    """Median milliseconds per request of each endpoint (models loaded beforehand; one client)."""
    demo = app.build_app(checkpoints)
    demo.models.preload()
    _, url, _ = app.launch(demo, "127.0.0.1", _free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = Client(url, verbose=False)
        with tempfile.TemporaryDirectory() as folder:
            image = Path(folder) / "drawing.png"
            picture = Image.new("RGB", (227, 227), "white")
            ImageDraw.Draw(picture).ellipse((40, 40, 190, 190), outline="black", width=4)
            picture.save(image)
            latencies = {}
            for name, arguments in REQUESTS.items():
                times = []
                for _ in range(repeats + 1):  # the first request warms up
                    start = time.perf_counter()
                    client.predict(*arguments(str(image)), api_name=f"/{name}")
                    times.append(time.perf_counter() - start)
                latencies[name] = statistics.median(times[1:]) * 1000
        return latencies
    finally:
        demo.close()
