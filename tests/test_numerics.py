"""Denormal floats are flushed to zero wherever the project runs a model."""

from pathlib import Path

import pytest
import torch

from hw3core.numerics import flush_denormals

DENORMAL = 1e-40  # below float32's smallest normal number, ~1.18e-38


def flushed() -> bool:
    return (torch.tensor([DENORMAL]) * 1.0).item() == 0.0


@pytest.fixture
def denormals_kept():
    torch.set_flush_denormal(False)
    assert not flushed()
    yield
    torch.set_flush_denormal(False)


def test_flush_denormals_turns_flushing_on_where_supported(denormals_kept):
    supported = flush_denormals()
    assert flushed() == supported
    assert supported or not torch.backends.cpu.get_cpu_capability().startswith("AVX")  # x86 always supports it


def test_the_app_flushes_denormals_when_it_is_built(denormals_kept, checkpoints):
    import app

    app.build_app(checkpoints)
    assert flushed()


def test_evaluate_scores_with_denormals_flushed(denormals_kept, monkeypatch):
    from training import evaluate

    seen = []
    result = {"accuracy": 1.0, "loss": 0.0, "n": 1, "skipped": 0, "split": "all"}
    monkeypatch.setitem(evaluate.EVALUATORS, "domain", lambda args, run: seen.append(flushed()) or result)
    evaluate.main(["domain", "--checkpoint", "nowhere", "--data", "nowhere"])
    assert seen == [True]


def test_training_runs_with_denormals_flushed(denormals_kept, monkeypatch):
    from training import config, distributed, loop

    class Reached(Exception):
        pass

    def first_loader(*args, **kwargs):
        raise Reached(flushed())

    monkeypatch.setattr(distributed, "loader", first_loader)
    task = loop.Task("t", torch.nn.Linear(2, 2), [], [], None, None)
    settings = config.TrainingConfig(out=Path("unused"), epochs=1, batch_size=2, lr=1e-3, weight_decay=0.0,
                                     schedule="constant", warmup=0.0, device="cpu", amp=False, keep="last")
    with pytest.raises(Reached) as reached:
        loop.fit(task, settings)
    assert reached.value.args == (True,)
