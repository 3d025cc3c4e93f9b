"""The library installs as a package (pyproject.toml), and a notebook's check works from the install alone."""

import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).parents[1]


def test_pip_install_gives_check_model_and_the_command(tmp_path):
    target = tmp_path / "site"
    # Offline and with the build tools already here: what `pip install .` does, into a folder of its own.
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(ROOT)], check=True, timeout=300,
                   capture_output=True)
    assert (target / "hw3core" / "check" / "tables.py").is_file() and (target / "bin" / "hw3-check").is_file()
    from student_models import StudentAlexNet

    torch.save(StudentAlexNet(num_classes=7).state_dict(), tmp_path / "best_model.pt")
    env = {**os.environ, "PYTHONPATH": str(target)}  # not the checkout: run from elsewhere
    notebook = ("import torch; from hw3core import check_model; import hw3core; "
                "assert 'site' in hw3core.__file__; "
                "check_model(torch.load('best_model.pt', weights_only=True), 'AlexNet')")
    run = subprocess.run([sys.executable, "-c", notebook], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert "✘ Linear-21: 4,096 → 7" in run.stdout
    shell = subprocess.run([sys.executable, "-m", "hw3core.check", "best_model.pt"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert shell.returncode == 1 and "Linear-21" in shell.stdout and "RuntimeWarning" not in shell.stderr
