"""The Homework 3 demo suite: one Gradio app with a tab per part of the assignment.

    python app.py [--host HOST] [--port PORT] [--checkpoints DIR]

Where the models come from (see demos/model_store.py):
    checkpoints/NAME/          the folders the training scripts write (``--checkpoints`` or
                               ``HW3_CHECKPOINTS`` moves the root);
    HW3_HUB_ORG=ORG            else the Hub repo ORG/hw3-NAME. Without it the app never goes
                               online (HF_HUB_OFFLINE=1 is set for it).
Serving: ``--host``/``--port`` or Gradio's GRADIO_SERVER_NAME/GRADIO_SERVER_PORT
(default 127.0.0.1:7860; use --host 0.0.0.0 in a container). HW3_MAX_ALEXNETS, HW3_MAX_TEXT_MODELS,
HW3_CONCURRENCY_LIMIT and HW3_QUEUE_SIZE change the limits (docs/limits.md).

API (gradio_client, api_name as below):
    /classify_domain   image -> AlexNet, AlexNetLargeKernel, AlexNetAvgPooling labels, then their notes
    /score_sentiment   review -> GRU, LSTM labels, then their notes
    /generate          prime, length, temperature, seed, cell ("GRU" or "LSTM", default GRU) -> the text, streamed
Inside the models: /explain_domain (image -> Grad-CAM per variant), /first_layers, /read_review,
    /word_influence, /gates (review -> the views), /inspect_text (text, cell -> surprise, top-5)
Check your model: /check_model (file, model: "auto" or a class name -> the report as JSON, ...), then,
    for the same session: /your_domain (image), /your_writer (text), /your_generate (prime),
    /your_sentiment (review) -> yours, then ours of the same class
"""

import argparse
import os
import sys
import threading
from pathlib import Path

# Read by gradio and huggingface_hub when imported: no analytics, and no Hub lookups unless a repo is configured.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
if not os.environ.get("HW3_HUB_ORG"):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr  # noqa: E402

from demos import check_model, domain, sentiment, writer  # noqa: E402
from demos.host_limits import HostLimitError, HostLimits, read_host_limits  # noqa: E402
from demos.model_store import ModelStore  # noqa: E402
from demos.uploads import MAX_ALEXNETS, MAX_TEXT_MODELS, UPLOADS  # noqa: E402
from hw3core.checkpoints import PLOT_FILES  # noqa: E402
from hw3core.memory import release_large_buffers_when_freed  # noqa: E402
from hw3core.numerics import flush_denormals  # noqa: E402
from hw3core.registry import MODELS  # noqa: E402

TABS = [
    ("Domain (AlexNet)", domain.build),
    ("Sentiment (GRU vs LSTM)", sentiment.build),
    ("Shakespeare writer", writer.build),
    ("Check your model", check_model.build),
]
# Set once for every upload of the app: a student's dense AlexNet state dict is 233 MB. Images keep
# their own 10 MB limit (demos.inputs.MAX_IMAGE_BYTES), checked by their handlers.
MAX_UPLOAD = "300mb"
# Two cores: two model requests at a time across all endpoints (they share demos.model_store.CONCURRENCY_ID),
# and a bounded line behind them. Defaults: a host may change both (demos.host_limits, docs/limits.md).
CONCURRENCY_LIMIT = 2
QUEUE_SIZE = 32
DEFAULT_LIMITS = HostLimits(MAX_ALEXNETS, MAX_TEXT_MODELS, CONCURRENCY_LIMIT, QUEUE_SIZE)
# Gradio draws gallery tiles square and scrolls after ~500 px; the training plots are wide (5 x 3.2 in) and few.
CSS = """
.training-curves .thumbnail-item { aspect-ratio: 3 / 2 !important; }
.training-curves .grid-wrap { max-height: none !important; min-height: 0 !important; }
.result-note { overflow-wrap: anywhere; }
.confusion-matrices { display: flex; flex-wrap: wrap; gap: 1.5em; }
/* A view of a long text (a 20,000-character review, a pasted passage) scrolls in its own box, not the page. */
.scroll-box .textfield { max-height: 24rem; overflow-y: auto; }
"""
# System fonts: the default theme would fetch web fonts, which an offline laptop cannot.
THEME = gr.themes.Default(
    font=["ui-sans-serif", "system-ui", "sans-serif"],
    font_mono=["ui-monospace", "Consolas", "monospace"],
)


def build_app(checkpoints: str | Path | None = None, limits: HostLimits | None = None) -> gr.Blocks:
    """The app, with its models read from ``checkpoints`` (default: HW3_CHECKPOINTS, else ./checkpoints) and the
    host's ``limits`` (default: read from the environment; a bad value raises HostLimitError)."""
    limits = limits or read_host_limits(DEFAULT_LIMITS)
    flush_denormals()
    release_large_buffers_when_freed()  # a long-lived server: its memory is not what its largest request once needed
    UPLOADS.resize(limits.max_alexnets, limits.max_text_models)
    models = ModelStore(checkpoints)
    with gr.Blocks(title="Homework 3 demos", delete_cache=(3600, 86400)) as demo:
        gr.Markdown("# Homework 3: CNNs and RNNs\nThe trained models of each part, running on this machine's CPU.")
        for title, build in TABS:
            with gr.Tab(title):
                build(models)
    demo.queue(default_concurrency_limit=limits.concurrency, max_size=limits.queue_size)
    demo.models = models  # for the warm-up in main() and for tests
    return demo


def launch(demo: gr.Blocks, host: str | None = None, port: int | None = None, **options):
    """Starts the server with the app's limits and look; returns what ``Blocks.launch`` returns."""
    return demo.launch(
        server_name=host,
        server_port=port,
        max_file_size=MAX_UPLOAD,
        # The training plots and nothing else of the checkpoint folders (not the weights, not the records).
        allowed_paths=[str(demo.models.root / name / file) for name in MODELS for file in PLOT_FILES.values()],
        theme=THEME,
        css=CSS,
        share=False,
        **options,
    )


def report_models(models: ModelStore) -> None:
    """One line per model: where it was loaded from, or why it cannot be, with the command that makes it."""
    problems = models.preload()
    for name in MODELS:
        if name in problems:
            print(f"{name} is not available: {problems[name]}", flush=True)
        else:
            print(f"{name}: loaded from {models.source(name)}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=None, help="address to listen on (default: GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--checkpoints", default=None, help="checkpoint root (default: HW3_CHECKPOINTS or checkpoints)")
    args = parser.parse_args(argv)
    try:
        limits = read_host_limits(DEFAULT_LIMITS)
    except HostLimitError as error:
        sys.exit(f"error: {error}")
    demo = build_app(args.checkpoints, limits)
    # Load the models while the first page is served, so the first request does not wait for them,
    # and say at once in the console which ones cannot be used, and how to make them.
    threading.Thread(target=report_models, args=(demo.models,), daemon=True).start()
    launch(demo, args.host, args.port)


if __name__ == "__main__":
    main()
