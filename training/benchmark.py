"""Speed of the hand-written cells against PyTorch's own, and of each model.

    python -m training.benchmark [--quick] [--device cuda] [--json results.json] [--only SECTION ...]

Every figure of one run is measured in that run, side by side, so the ratios compare like with
like. This is the only module that imports torch.nn.GRU / torch.nn.LSTM: as the reference. The app's
request latency, under load, is measured by tests/test_load.py (training/ never imports the app).
"""

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hw3core import ALEXNET_VARIANTS, CELLS, AlexNet, LSTMCell, SentimentClassifier, ShakespeareWriter, explain
from hw3core.check import check
from hw3core.checkpoints import WEIGHTS_FILE, load_local
from hw3core.compression import COMPRESSED_FILE, load_compressed
from hw3core.numerics import flush_denormals
from hw3core.text import SPECIAL_TOKENS
from training.distributed import hardware

BUILTIN = {"gru": nn.GRU, "lstm": nn.LSTM}
# (name, batch, steps, input size, hidden size): the two shapes the assignment trains at.
SHAPES = [("sentiment", 256, 200, 128, 100), ("shakespeare", 64, 100, 256, 512)]


def timed(fn: Callable, repeats: int, device: torch.device, statistic: Callable = statistics.median) -> float:
    """Seconds of ``fn`` over ``repeats`` runs, after one warm-up run: their median, or ``statistic``."""
    return statistic(_seconds({"fn": fn}, repeats, device)["fn"])


def timed_in_turn(fns: dict[str, Callable], repeats: int, device: torch.device) -> dict[str, float]:
    """Median seconds of each of ``fns``, run in turn round after round after one warm-up each: on a
    machine shared with other jobs, their load falls on every one alike."""
    return {name: statistics.median(times) for name, times in _seconds(fns, repeats, device).items()}


def _seconds(fns: dict[str, Callable], repeats: int, device: torch.device) -> dict[str, list[float]]:
    """Each run's seconds of each of ``fns``, in turn round after round, after one warm-up run each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def matrix_products(steps: int, batch: int, inputs: int, hidden: int, gates: int, backward: bool, device) -> Callable:
    """Only the matrix products a recurrent layer of ``gates`` gates cannot avoid: the input
    projection of all steps, one product with the hidden state per step and, with ``backward``, their
    transposes and the two weight gradients, each a separate BLAS call. No cell written with torch
    operations goes below this time (the rest of its work, the gates, is elementwise); a fused
    kernel can, as torch.nn.LSTM on CPU is: one oneDNN RNN call with its weights packed."""
    x = torch.randn(steps * batch, inputs, device=device)
    hs = torch.randn(steps * batch, hidden, device=device)
    h = hs[:batch]
    w_ih = torch.randn(inputs, gates * hidden, device=device)
    w_hh = torch.randn(hidden, gates * hidden, device=device)
    grad = torch.randn(steps * batch, gates * hidden, device=device)

    def run():
        x @ w_ih
        for _ in range(steps):
            h @ w_hh
        if backward:
            grad @ w_ih.t()  # the inputs' gradient
            for t in range(steps):
                grad[t * batch : (t + 1) * batch] @ w_hh.t()  # the hidden state's gradient, step by step
            grad.t() @ x  # the input weights' gradient, all steps in one product
            grad.t() @ hs  # the recurrent weights' gradient
    return run


def bench_cells(device, repeats) -> list[dict]:
    rows = []
    for shape, batch, steps, inputs, hidden in SHAPES:
        x = torch.randn(steps, batch, inputs, device=device, requires_grad=True)
        for cell in CELLS:
            custom = CELLS[cell](inputs, hidden, bias=True).to(device)
            builtin = BUILTIN[cell](inputs, hidden).to(device)
            for mode in ("forward+backward", "forward"):
                def run(module_fn):
                    if mode == "forward":
                        with torch.no_grad():
                            module_fn()
                    else:
                        module_fn().sum().backward()
                t_custom = timed(lambda: run(lambda: custom.sequence(x)[0]), repeats, device)
                t_builtin = timed(lambda: run(lambda: builtin(x)[0]), repeats, device)
                floor = matrix_products(steps, batch, inputs, hidden, custom.num_gates, mode != "forward", device)
                t_floor = timed(floor, repeats, device)
                rows.append({"shape": shape, "cell": cell, "mode": mode, "custom_s": t_custom,
                             "builtin_s": t_builtin, "ratio": t_custom / t_builtin,
                             "matrix_products_s": t_floor, "floor_ratio": t_floor / t_builtin})
    return rows


def bench_sentiment(device, repeats) -> list[dict]:
    rows = []
    vocabulary = [f"w{i}" for i in range(20_000)]
    reviews = torch.randint(4, 20_000, (128, 200), device=device)
    lengths = torch.full((128,), 200)
    labels = torch.randint(0, 2, (128,), device=device)
    for cell in CELLS:
        model = SentimentClassifier(vocabulary, cell).to(device)
        optimizer = torch.optim.Adam(model.parameters())

        def step():
            loss = F.cross_entropy(model(reviews, lengths), labels)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()

        rows.append({"cell": cell, "reviews_per_s": 128 / timed(step, repeats, device)})
    return rows


class TorchSentiment(nn.Module):
    """The assignment's sentiment model built on torch.nn's recurrent layer: the reference."""

    def __init__(self, cell: str, vocabulary_size: int, embedding_dim: int = 128, hidden_size: int = 100):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, embedding_dim)
        self.rnn = BUILTIN[cell](embedding_dim, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 2)

    def forward(self, reviews: torch.Tensor) -> torch.Tensor:  # (N, T) -> (N, 2), from the last step
        outputs, _ = self.rnn(self.embedding(reviews))
        return self.head(outputs[:, -1])


def bench_sentiment_as_trained(device, repeats, batch: int = 256, tokens: int = 200) -> list[dict]:
    """One forward and backward pass of the sentiment model at fresh weights, the loss on the last step
    only, as training starts: hand-written cells against torch.nn, with denormal floats flushed and not.
    The gradient from the last step shrinks through 200 steps into denormal range, where x86 CPUs crawl."""
    vocabulary = [f"w{i}" for i in range(20_000)]
    reviews = torch.randint(4, 20_000, (batch, tokens), device=device)
    lengths = torch.full((batch,), tokens)
    labels = torch.randint(0, 2, (batch,), device=device)
    rows = []
    for flushed in (True, False):
        torch.set_flush_denormal(flushed)
        for cell in CELLS:
            torch.manual_seed(0)
            custom = SentimentClassifier(vocabulary, cell).to(device)
            builtin = TorchSentiment(cell, len(vocabulary)).to(device)
            t_custom = timed(lambda: F.cross_entropy(custom(reviews, lengths), labels).backward(), repeats, device,
                             statistic=min)
            t_builtin = timed(lambda: F.cross_entropy(builtin(reviews), labels).backward(), repeats, device,
                              statistic=min)
            rows.append({"cell": cell, "denormals": "flushed" if flushed else "kept", "custom_s": t_custom,
                         "builtin_s": t_builtin, "ratio": t_custom / t_builtin})
    flush_denormals()
    return rows


def bench_writer(device, repeats, length: int = 1000) -> dict:
    characters = "".join(chr(c) for c in range(32, 97))
    model = ShakespeareWriter(characters).to(device)
    optimizer = torch.optim.Adam(model.parameters())
    inputs = torch.randint(0, 65, (64, 100), device=device)
    targets = torch.randint(0, 65, (64, 100), device=device)

    def step():
        logits, _ = model(inputs, every_position=True)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    model.eval()

    @torch.no_grad()
    def reread(n: int):  # the starter's way: feed the whole history again for every character
        history = torch.tensor([model.encode("ROMEO")], device=device)
        for _ in range(n):
            logits, _ = model(history)
            history = torch.cat([history, logits.argmax(-1, keepdim=True)], dim=1)

    carried = timed(lambda: "".join(model.generate("ROMEO", length, seed=0)), repeats, device)
    reread_n = length if repeats > 1 else length // 4  # --quick: time a quarter, scale up (quadratic: a lower bound)
    reread_s = timed(lambda: reread(reread_n), 1, device) * (length / reread_n)
    model.train()
    return {
        "characters_per_s_trained": 64 * 100 / timed(step, repeats, device),
        "write_1000_carried_s": carried,
        "write_1000_reread_s": reread_s,
        "reread_measured_characters": reread_n,
    }


def bench_alexnets(device, repeats) -> list[dict]:
    rows = []
    image = torch.randn(1, 3, 227, 227, device=device)
    batch = torch.randn(64, 3, 227, 227, device=device)
    labels = torch.randint(0, 4, (64,), device=device)
    for name, cls in ALEXNET_VARIANTS.items():
        model = cls().to(device)
        model.eval()
        with torch.no_grad():
            latency = timed(lambda: model(image), repeats * 5, device)
        model.train()
        optimizer = torch.optim.Adam(model.parameters())

        def step():
            loss = F.cross_entropy(model(batch), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        rows.append({"variant": name, "latency_ms": latency * 1000,
                     "train_images_per_s": 64 / timed(step, max(1, repeats // 2), device)})
    return rows


def bench_alexnet_files(root: Path, device, repeats) -> list[dict]:
    """Per variant and weights file found under ``root``: its size, the time to load it (read, decode,
    build the model) and one image through the loaded model."""
    rows = []
    image = torch.randn(1, 3, 227, 227, device=device)
    for name, cls in ALEXNET_VARIANTS.items():
        for file in (WEIGHTS_FILE, COMPRESSED_FILE):
            path = root / name / file
            if not path.is_file():
                continue
            load_s = timed(lambda: load_local(cls, root / name, file), max(1, repeats // 2), device)
            model = load_local(cls, root / name, file).to(device)
            with torch.no_grad():
                latency = timed(lambda: model(image), repeats * 5, device)
            rows.append({"variant": name, "weights": "compressed" if file == COMPRESSED_FILE else "dense",
                         "megabytes": path.stat().st_size / 1e6, "load_s": load_s, "latency_ms": latency * 1000})
    return rows


def bench_served(root: Path, device, repeats, batches=(1, 32), threads=(1, 2)) -> list[dict]:
    """The three AlexNets, each from its compressed file under ``root``, on one batch of images: served
    (pruned Linear layers in CSR, as the app and training.evaluate load them) against the dense decode of
    the same file, in turn (``timed_in_turn``), at each thread count and batch size; and their convolutions alone,
    which both forms share and which bound how fast the served form can be."""
    files = {name: root / name / COMPRESSED_FILE for name in ALEXNET_VARIANTS}
    found = {name: path for name, path in files.items() if path.is_file()}
    if not found:
        return []
    served = [load_local(ALEXNET_VARIANTS[name], path.parent, COMPRESSED_FILE).to(device) for name, path in found.items()]
    dense = []
    for name, path in found.items():
        model = ALEXNET_VARIANTS[name]()
        model.load_state_dict(load_compressed(path), strict=True)
        dense.append(model.eval().to(device))
    features = [explain.split_at_last_conv(model)[0] for model in served]
    rows, default_threads = [], torch.get_num_threads()
    for count in threads if device.type == "cpu" else (default_threads,):
        torch.set_num_threads(count)
        for batch in batches:
            images = torch.randn(batch, 3, 227, 227, device=device)
            runs = max(1, repeats * 5 // batch)

            @torch.no_grad()
            def run(models):
                return [model(images) for model in models]

            times = timed_in_turn({label: lambda models=models: run(models) for label, models in
                                   (("dense", dense), ("served", served), ("convolutions", features))}, runs, device)
            rows += [{"weights": label, "threads": count, "batch": batch, "models": len(found),
                      "ms": times[label] * 1000, "convolutions_ms": times["convolutions"] * 1000,
                      "ratio": times[label] / times["dense"]} for label in ("dense", "served")]
    torch.set_num_threads(default_threads)
    return rows


def bench_views(device, repeats, review_words: int = 198, characters: int = 1500) -> list[dict]:
    """The methods behind the app's "Inside the models" views, at the shipped models' sizes and the
    largest input each view takes: one image, a review filling the 200-token window, the longest text
    the writer view reads (demos.inside_writer.MAX_INSPECT_CHARACTERS). Each row is one view with
    every model it shows (rendering not included)."""
    torch.manual_seed(0)
    alexnets = [cls().to(device).eval() for cls in ALEXNET_VARIANTS.values()]
    image = torch.randn(1, 3, 227, 227, device=device)
    vocabulary = SPECIAL_TOKENS + [f"w{i}" for i in range(20_000 - len(SPECIAL_TOKENS))]
    classifiers = [SentimentClassifier(vocabulary, cell).to(device).eval() for cell in CELLS]
    review = " ".join(f"w{i}" for i in range(100, 100 + review_words))
    letters = "".join(chr(c) for c in range(32, 97))
    text = (letters * (characters // len(letters) + 1))[:characters]
    both = f"{review_words} words, GRU and LSTM"
    views = [
        ("explain_domain", "one image, 3 AlexNets", lambda: [explain.grad_cam(m, image) for m in alexnets]),
        ("first_layers", "3 AlexNets",
         lambda: [(explain.kernel_grid(m.conv1.weight.detach().cpu()), explain.layer_table(m)) for m in alexnets]),
        ("read_review", both, lambda: [explain.prefix_curve(m, review) for m in classifiers]),
        ("word_influence", both, lambda: [explain.occlusion(m, review) for m in classifiers]),
        ("gates", both, lambda: [explain.review_gates(m, review) for m in classifiers]),
    ]
    for cell in CELLS:
        writer = ShakespeareWriter(letters, cell).to(device).eval()
        views.append(("inspect_text", f"{characters:,} characters, {cell.upper()} writer",
                      lambda writer=writer: explain.read_characters(writer, text)))
    return [{"view": view, "input": input_, "seconds": timed(run, repeats, device)} for view, input_, run in views]


class _NoTanhLSTMCell(LSTMCell):
    """Our LSTMCell with a student's mistake (h = o ⊙ c): the check then tries its whole catalogue."""

    def recur(self, projected, state):
        i, f, g, o = torch.addmm(projected, state[0], self.weight_hh.t()).chunk(4, dim=1)
        c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * c, c


def _alexnet_without_relu17() -> nn.Module:
    model = AlexNet()
    model.relu17 = nn.Identity()  # a student's mistake: the check finds the row and tries the catalogue there
    return model


def bench_check(repeats: int) -> list[dict]:
    """"Check your model": a student's dense AlexNet state dict (torch.save, 233 MB) checked and loaded into our
    class, as the tab does with an upload; and in a notebook, a module's forward and gradients run beside ours,
    right and with a mistake (whose search tries the catalogue of common mistakes). CPU only."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "best_model.pt"
        torch.save(AlexNet().state_dict(), path)

        def check_and_load():
            checked = check(path, "AlexNet")
            assert checked.report.ok and checked.model is not None

        rows.append({"what": f"an AlexNet state dict (torch.save, {path.stat().st_size / 1e6:.0f} MB), checked and "
                             "loaded", "seconds": timed(check_and_load, repeats, torch.device("cpu"))})
    modules = [
        ("an AlexNet module, right", AlexNet, "auto", True),
        ("an AlexNet module without ReLU-17", _alexnet_without_relu17, "auto", False),
        ("the LSTMCell class, right (two sizes)", lambda: LSTMCell, "LSTMCell", True),
        ("an LSTMCell class with h = o ⊙ c (two sizes)", lambda: _NoTanhLSTMCell, "LSTMCell", False),
    ]
    for what, make, name, right in modules:
        given = make()

        def run(given=given, name=name, right=right):
            assert check(given, name).report.ok == right

        rows.append({"what": what, "seconds": timed(run, repeats, torch.device("cpu"))})
    return rows


def bench_curves(points: int = 1_000_000) -> dict:
    """Reading a student's TensorBoard log at the upload limit and comparing it with ours, as /your_curves does:
    ``points`` per-step training losses (a million make a 50 MB event file, just under hw3core.event_files'
    MAX_BYTES) and five epochs of validation accuracy. Timed once: writing the log takes as long as reading it."""
    from torch.utils.tensorboard import SummaryWriter

    from hw3core.curves import compare

    with tempfile.TemporaryDirectory() as folder:
        with SummaryWriter(folder) as writer:
            for step in range(points):
                writer.add_scalar("Loss/train", 1.0 / (1 + step), step)
            for epoch in range(5):
                writer.add_scalar("Accuracy/val", 0.7 + 0.04 * epoch, epoch)
        size = sum(file.stat().st_size for file in Path(folder).iterdir())
        start = time.perf_counter()
        comparison = compare(folder, "AlexNet")
        seconds = time.perf_counter() - start
    assert len(comparison.curves["Loss/train"].points) == points
    return {"points": points, "megabytes": size / 1e6, "seconds": seconds}


def format_table(results: dict) -> str:
    lines = [f"Benchmark on {results['machine']} (torch {results['torch']})"]
    if results.get("cells"):
        lines += ["", "| shape | cell | pass | custom (s) | torch.nn (s) | custom / torch.nn | matrix products alone (s) "
                  "| their / torch.nn |", "|---|---|---|---|---|---|---|---|"]
    for r in results.get("cells", []):
        lines.append(f"| {r['shape']} | {r['cell']} | {r['mode']} | {r['custom_s']:.3f} | {r['builtin_s']:.3f} "
                     f"| {r['ratio']:.2f}x | {r['matrix_products_s']:.3f} | {r['floor_ratio']:.2f}x |")
    if results.get("sentiment_as_trained"):
        lines += ["", "| sentiment model at fresh weights, loss on the last step | denormals | custom (s) | torch.nn (s) "
                  "| custom / torch.nn |", "|---|---|---|---|---|"]
        lines += [f"| {r['cell']} | {r['denormals']} | {r['custom_s']:.3f} | {r['builtin_s']:.3f} | {r['ratio']:.2f}x |"
                  for r in results["sentiment_as_trained"]]
    if results.get("sentiment"):
        lines += ["", "| sentiment model, cell | training reviews/s |", "|---|---|"]
        lines += [f"| {r['cell']} | {r['reviews_per_s']:.0f} |" for r in results["sentiment"]]
    if results.get("writer"):
        w = results["writer"]
        lines += ["", "| char-RNN (GRU 256/512) | value |", "|---|---|",
                  f"| characters/s trained | {w['characters_per_s_trained']:.0f} |",
                  f"| 1,000 characters written, state carried | {w['write_1000_carried_s']:.3f} s |",
                  f"| 1,000 characters written, history re-read | {w['write_1000_reread_s']:.3f} s |"]
    if results.get("alexnet"):
        lines += ["", "| AlexNet variant | one image (ms) | training images/s (batch 64) |", "|---|---|---|"]
        lines += [f"| {r['variant']} | {r['latency_ms']:.1f} | {r['train_images_per_s']:.1f} |"
                  for r in results["alexnet"]]
        lines.append(f"| all three, one image | {sum(r['latency_ms'] for r in results['alexnet']):.1f} | |")
    if results.get("alexnet_files"):
        lines += ["", "| AlexNet checkpoint | weights | file (MB) | load (s) | one image (ms) |", "|---|---|---|---|---|"]
        lines += [f"| {r['variant']} | {r['weights']} | {r['megabytes']:.1f} | {r['load_s']:.2f} | {r['latency_ms']:.1f} |"
                  for r in results["alexnet_files"]]
    if results.get("served"):
        lines += ["", "| AlexNets from their compressed files | threads | batch | all three (ms) | / dense "
                  "| their convolutions alone (ms) |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['weights']} | {r['threads']} | {r['batch']} | {r['ms']:.1f} | {r['ratio']:.2f}x "
                  f"| {r['convolutions_ms']:.1f} |" for r in results["served"]]
        slower = [f"{r['threads']} thread(s), batch {r['batch']} ({r['ratio']:.2f}x)" for r in results["served"]
                  if r["weights"] == "served" and r["ratio"] > 1]
        lines += ["", "The served form is slower than the dense decode at: " + "; ".join(slower) + "."] if slower else []
    if results.get("check"):
        lines += ["", "| Check your model: a student's | seconds |", "|---|---|"]
        lines += [f"| {r['what']} | {r['seconds']:.2f} |" for r in results["check"]]
    if results.get("curves"):
        c = results["curves"]
        lines += ["", "| Your training curves | log (MB) | points | read and compare (s) |", "|---|---|---|---|",
                  f"| per-step loss and per-epoch accuracy | {c['megabytes']:.1f} | {c['points']:,} | {c['seconds']:.1f} |"]
    if results.get("views"):
        lines += ["", "| app view (hw3core method) | input | seconds |", "|---|---|---|"]
        lines += [f"| /{r['view']} | {r['input']} | {r['seconds']:.3f} |" for r in results["views"]]
    return "\n".join(lines)


# Each section of the results: (device, repeats, the command's arguments) -> its measurements.
SECTIONS = {
    "cells": lambda device, repeats, args: bench_cells(device, repeats),
    "sentiment_as_trained": lambda device, repeats, args: bench_sentiment_as_trained(device, repeats),
    "sentiment": lambda device, repeats, args: bench_sentiment(device, repeats),
    "writer": lambda device, repeats, args: bench_writer(device, repeats),
    "alexnet": lambda device, repeats, args: bench_alexnets(device, repeats),
    "alexnet_files": lambda device, repeats, args: bench_alexnet_files(args.checkpoints, device, repeats),
    "served": lambda device, repeats, args: bench_served(args.checkpoints, device, repeats),
    "views": lambda device, repeats, args: bench_views(device, repeats),
    "check": lambda device, repeats, args: bench_check(repeats),
    "curves": lambda device, repeats, args: bench_curves(100_000 if args.quick else 1_000_000),
}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one timed repeat each (under 2 minutes on 2 cores)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's, one per core)")
    parser.add_argument("--checkpoints", type=Path, default=Path("checkpoints"),
                        help="where the AlexNet checkpoints are, dense and compressed (default: checkpoints)")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), metavar="SECTION",
                        help=f"measure these sections only ({', '.join(SECTIONS)}; default: all)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    flush_denormals()
    repeats = 1 if args.quick else 5
    torch.manual_seed(0)
    results = {"machine": hardware(device), "torch": torch.__version__, "quick": args.quick}
    for section in args.only or SECTIONS:
        results[section] = SECTIONS[section](device, repeats, args)
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)
    return results


if __name__ == "__main__":
    main()
