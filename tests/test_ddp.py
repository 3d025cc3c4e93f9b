"""DistributedDataParallel on CPU: torchrun starts two processes (gloo); only rank 0 writes, and
the metrics it writes are those of the whole data set, each example counted once."""

import argparse
import json
import subprocess
import sys

import pytest
import torch
from torch.utils.data import DataLoader

from hw3core.checkpoints import load_local
from hw3core.registry import MODELS
from tiny_data import REPO, check_ok, python_env, read_jsonl
from training import train_shakespeare

pytest_plugins = ["tiny_data_fixtures"]  # tiny_pacs, tiny_imdb, tiny_text, real_data

# 7 windows: not a multiple of the two processes, so a padded validation shard would show.
FLAGS = {"limit": 7, "history": 10, "embedding_dim": 8, "hidden_size": 16, "batch_size": 2, "seed": 0}


def test_torchrun_two_processes_train_once_and_save_once(tiny_text, tmp_path):
    out = tmp_path / "shakespeare-gru"
    flags = [item for key, value in FLAGS.items() for item in (f"--{key.replace('_', '-')}", str(value))]
    flags += ["--no-carry-state", "--dropout", "0"]  # independent windows, as the check below scores them
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "training.train_shakespeare", "--data", str(tiny_text), *flags, "--epochs", "2", "--out", str(out)]
    result = check_ok(subprocess.run(command, cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=300,
                                     check=False))

    printed = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"epoch"')]
    assert [row["epoch"] for row in printed] == [1, 2]  # rank 0 alone reports
    rows = read_jsonl(out / "metrics.jsonl")
    assert [row["epoch"] for row in rows] == [1, 2]
    run = json.loads((out / "training.json").read_text())
    assert run["hardware"].startswith("2 x ")
    assert not list(out.glob("*.tmp")) and not (out / ".saving").exists()
    state = torch.load(out / "resume.pt", weights_only=True)
    assert len(state["rng"]) == 2  # one random state per rank

    # The saved model's loss on the validation windows, in one process, is what the two ranks reported.
    model = load_local(MODELS["shakespeare-gru"].cls, out)
    args = argparse.Namespace(data=tiny_text, val_fraction=0.1, cell="gru", clip_grad_norm=1.0, dropout=0.0, **FLAGS)
    task = train_shakespeare.build_task(args)
    assert len(task.val_set) == FLAGS["limit"]
    loss_sum, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for batch in DataLoader(task.val_set, batch_size=3, collate_fn=task.collate):
            loss, right, n = task.batch_metrics(model, batch)
            loss_sum, correct, count = loss_sum + loss.item() * n, correct + int(right), count + n
    assert count == FLAGS["limit"] * FLAGS["history"]
    assert rows[-1]["val_loss"] == pytest.approx(loss_sum / count, abs=1e-4)
    assert rows[-1]["val_accuracy"] == pytest.approx(correct / count)


def _train_with_an_unreadable_batch_on_rank_0(rank: int, store: str, results: str) -> None:
    import datetime

    import torch.distributed as dist
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel

    from training import train_alexnet
    from training.data import collate_images
    from training.distributed import Distributed
    from training.loop import Task, run_epoch

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2,
                            timeout=datetime.timedelta(seconds=60))
    torch.manual_seed(0)
    model = DistributedDataParallel(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4)))
    generator = torch.Generator().manual_seed(rank)
    good = [(torch.randn(3, 227, 227, generator=generator), label) for label in (0, 1, 2)]
    shard = [None, None, *good[:2]] if rank == 0 else [*good, good[0]]  # rank 0's first batch: all unreadable
    task = Task("t", model, shard, shard, collate_images, train_alexnet.batch_metrics, clip_grad_norm=1.0)
    loader = DataLoader(shard, batch_size=2, collate_fn=collate_images)
    world = Distributed(rank=rank, world_size=2)
    scores = run_epoch(model, loader, task, world, amp=False, optimizer=torch.optim.Adam(model.parameters(), 0.1))
    torch.save({"scores": scores, "weights": model.module.state_dict()}, f"{results}/{rank}.pt")
    dist.destroy_process_group()


def test_a_rank_with_an_all_unreadable_batch_keeps_step_with_the_others(tmp_path):
    # Each rank takes a backward pass per batch; a rank that skipped one would leave the others waiting.
    torch.multiprocessing.spawn(_train_with_an_unreadable_batch_on_rank_0, args=(str(tmp_path / "store"), str(tmp_path)),
                                nprocs=2)
    ranks = [torch.load(tmp_path / f"{rank}.pt", weights_only=True) for rank in (0, 1)]
    assert ranks[0]["scores"]["n"] == 6 and ranks[0]["scores"]["skipped"] == 2  # summed over the two ranks
    for name, weight in ranks[0]["weights"].items():
        assert torch.equal(weight, ranks[1]["weights"][name]), name
    torch.manual_seed(0)
    initial = torch.nn.Linear(3, 4)
    assert not torch.equal(initial.weight, ranks[0]["weights"]["2.weight"])  # training did move them
