"""Models built on the meta device for their shapes or for stored weights: nothing allocated, nothing drawn,
and torch's compiler stack never imported."""

import subprocess
import sys
import threading
from pathlib import Path

import torch
from torch import nn

from hw3core.meta_device import on_meta_device

REPO = Path(__file__).resolve().parent.parent


def test_the_alexnets_build_on_the_meta_device_without_importing_torch_dynamo():
    """torch's random initialisers on the meta device import torch._dynamo (and Triton, SymPy) on first use."""
    script = ("import sys, torch\n"
              "from hw3core.meta_device import on_meta_device\n"
              "from hw3core.registry import ALEXNET_VARIANTS\n"
              "with on_meta_device():\n"
              "    models = [cls() for cls in ALEXNET_VARIANTS.values()]\n"
              "print(all(p.is_meta for m in models for p in m.parameters()), 'torch._dynamo' in sys.modules)\n")
    built = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    assert built.stdout.split() == ["True", "False"]


def test_a_layer_built_on_another_device_inside_is_initialised():
    with on_meta_device():
        layer = nn.Linear(64, 64, device="cpu")
    assert layer.weight.device.type == "cpu" and layer.weight.std() > 0.01


def test_another_thread_builds_as_usual_meanwhile():
    built = {}
    with on_meta_device():
        thread = threading.Thread(target=lambda: built.update(layer=nn.Linear(64, 64)))
        thread.start()
        thread.join()
        here = nn.Linear(64, 64)
    assert here.weight.is_meta
    assert built["layer"].weight.device.type == "cpu" and built["layer"].weight.std() > 0.01
    assert not torch.empty(1).is_meta
