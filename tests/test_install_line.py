"""The check tab's install line: from the Space's own repository on a Space, else from this checkout."""

from pathlib import Path

import gradio as gr

import app
from demos.install_line import install_line

REPO = Path(__file__).resolve().parents[1]


def test_on_a_space_the_line_installs_from_the_spaces_repository():
    line = install_line({"SPACE_ID": "cs1678/hw3-demos"})
    assert line == 'pip install "git+https://huggingface.co/spaces/cs1678/hw3-demos"'


def test_elsewhere_the_line_installs_from_this_checkout():
    assert install_line({}) == f"pip install {REPO}"
    assert install_line({}, Path("/home/ta/my hw3")) == "pip install '/home/ta/my hw3'"  # quoted for the shell


def test_the_check_tab_shows_the_line_and_the_docs_give_no_placeholder(checkpoints, monkeypatch):
    monkeypatch.setenv("SPACE_ID", "cs1678/hw3-demos")
    demo = app.build_app(checkpoints)
    texts = [block.value or "" for block in demo.blocks.values() if isinstance(block, gr.Markdown)]
    assert any('`pip install "git+https://huggingface.co/spaces/cs1678/hw3-demos"`' in text for text in texts)
    docs = (REPO / "docs" / "check-your-model.md").read_text()
    assert "OWNER" not in docs and "huggingface.co/spaces/" in docs
