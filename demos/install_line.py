"""The line that installs hw3core (the check) in a notebook, from where this app runs: a Space's own repository
(Spaces set SPACE_ID, "owner/name"), else this checkout's folder."""

import os
import shlex
from collections.abc import Mapping
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
SPACES = "https://huggingface.co/spaces"


def install_line(environ: Mapping[str, str] | None = None, checkout: Path = CHECKOUT) -> str:
    space = (os.environ if environ is None else environ).get("SPACE_ID", "").strip()
    if space:
        return f'pip install "git+{SPACES}/{space}"'
    return f"pip install {shlex.quote(str(checkout))}"


def install_note(environ: Mapping[str, str] | None = None) -> str:
    """One sentence for the check tab: how to get the check into a notebook."""
    return f"To install it there: `{install_line(environ)}` (in a notebook cell: `%pip` in place of `pip`)."
