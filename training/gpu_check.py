"""The check to run on a machine with a CUDA GPU, in one command, in a few minutes; prints one table.

    python -m training.gpu_check --data DATA_DIR [--json gpu.json]

DATA_DIR holds the three data sets as they download (``pacs/``, ``imdb/aclImdb_v1.tar.gz``,
``tinyshakespeare/input.txt``; default: ``HW3_DATA_DIR``). On the GPU, in one run:

* a short training of each training script (one epoch on a subset, ``--limit``), in bfloat16 autocast
  as the scripts train on a GPU: its time, last training loss and validation accuracy;
* the hand-written GRU and LSTM cells against cuDNN's ``torch.nn.GRU`` / ``torch.nn.LSTM``
  (``training.benchmark``'s cell rows);
* the three AlexNets from their compressed files, dense decode against the served form (sparse
  Linear layers: cuSPARSE here), at batch 1 and 32.

Without a CUDA GPU it stops at once with a message saying so. The runs write to a temporary folder.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from training import benchmark, train_alexnet, train_sentiment, train_shakespeare
from training.loop import hardware

# (name, script, flags after --data): one epoch on a subset each; the AlexNets at their recipe's batch size.
TRAININGS = [
    ("alexnet", train_alexnet, "pacs", ["--variant", "alexnet", "--limit", "2048"]),
    ("alexnet-large-kernel", train_alexnet, "pacs", ["--variant", "alexnet-large-kernel", "--limit", "2048"]),
    ("alexnet-avg-pooling", train_alexnet, "pacs", ["--variant", "alexnet-avg-pooling", "--limit", "2048"]),
    ("sentiment-gru", train_sentiment, "imdb/aclImdb_v1.tar.gz", ["--cell", "gru", "--limit", "5000"]),
    ("sentiment-lstm", train_sentiment, "imdb/aclImdb_v1.tar.gz", ["--cell", "lstm", "--limit", "5000"]),
    ("shakespeare-gru", train_shakespeare, "tinyshakespeare/input.txt", ["--cell", "gru", "--limit", "2000"]),
    ("shakespeare-lstm", train_shakespeare, "tinyshakespeare/input.txt", ["--cell", "lstm", "--limit", "2000"]),
]
NO_GPU = ("error: no CUDA GPU is available here (torch.cuda.is_available() is False): training.gpu_check runs "
          "on a machine with one. On this machine, python -m training.benchmark measures the CPU.")


def short_trainings(data: Path, out: Path, device: str = "cuda") -> list[dict]:
    rows = []
    for name, script, data_file, flags in TRAININGS:
        start = time.perf_counter()
        history = script.main(["--data", str(data / data_file), *flags, "--epochs", "1", "--device", device,
                               "--workers", "2", "--out", str(out / name)])
        last = history[-1]
        rows.append({"run": name, "seconds": time.perf_counter() - start, "train_loss": last["train_loss"],
                     "val_accuracy": last.get("val_accuracy")})
    return rows


def format_table(results: dict) -> str:
    lines = [f"GPU check on {results['machine']} (torch {results['torch']}, training in bfloat16 autocast)", "",
             "| part | what | measured |", "|---|---|---|"]
    for r in results["trainings"]:
        accuracy = f", validation accuracy {r['val_accuracy']:.3f}" if r["val_accuracy"] is not None else ""
        lines.append(f"| short training | {r['run']} (one epoch, --limit) | {r['seconds']:.1f} s, "
                     f"last training loss {r['train_loss']:.3f}{accuracy} |")
    for r in results["cells"]:
        lines.append(f"| cells | {r['shape']} {r['cell']} {r['mode']} | custom {r['custom_s'] * 1000:.1f} ms, "
                     f"cuDNN {r['builtin_s'] * 1000:.1f} ms ({r['ratio']:.2f}x) |")
    for r in results["served"]:
        lines.append(f"| AlexNets | {r['weights']}, batch {r['batch']}, all {r['models']} | {r['ms']:.1f} ms "
                     f"({r['ratio']:.2f}x dense) |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=os.environ.get("HW3_DATA_DIR"),
                        help="the folder of the three data sets (default: HW3_DATA_DIR)")
    parser.add_argument("--checkpoints", type=Path, default=Path("checkpoints"),
                        help="where the compressed AlexNets are (default: checkpoints)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        sys.exit(NO_GPU)
    if args.data is None or not Path(args.data).is_dir():
        sys.exit(f"error: --data must name the folder of the three data sets (pacs/, imdb/, tinyshakespeare/), "
                 f"not {args.data}")
    device = torch.device("cuda")
    results = {"machine": hardware(device), "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as out:
        results["trainings"] = short_trainings(Path(args.data), Path(out))
    results["cells"] = benchmark.bench_cells(device, repeats=3)
    results["served"] = benchmark.bench_served(args.checkpoints, device, repeats=3)
    print(format_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
