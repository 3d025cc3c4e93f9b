"""The model card and the upload of a checkpoint folder to the Hugging Face Hub."""

import sys
from pathlib import Path

from huggingface_hub import HfApi, ModelCard, ModelCardData
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

from hw3core.records import RunRecord
from hw3core.render import render_run

CARD = """---
{{ card_data }}
---

# {{ name }}

{{ description }}

Trained with the hw3 demo suite (CS 1678/2078 Homework 3) by:

{{ run }}
Load it with `hw3core.checkpoints.load_local` (it reads `config.json` and the safetensors weights, never a pickle).
"""


def write_model_card(folder: Path, description: str, record: RunRecord) -> None:
    """README.md of a checkpoint folder: its run record, rendered as everywhere else (hw3core.render)."""
    data = ModelCardData(library_name="hw3core", tags=["hw3", record.task.split("-")[0]])
    card = ModelCard.from_template(data, template_str=CARD, name=record.task, description=description,
                                   run=render_run(record))
    card.save(folder / "README.md.tmp")
    (folder / "README.md.tmp").replace(folder / "README.md")  # atomic, like every file of a checkpoint


def push(folder: Path, repo_id: str) -> bool:
    """Uploads the checkpoint folder (weights, config, metrics, plots, card; not the resume state) in place of
    what the repo held."""
    api = HfApi()
    try:
        api.create_repo(repo_id, exist_ok=True)
        # The repo becomes the folder: an earlier push's weights or compression record, absent from it now,
        # would otherwise be served and shown with this one's (the Hub keeps them in the repo's history).
        api.upload_folder(repo_id=repo_id, folder_path=folder, ignore_patterns=["resume.pt", "*.tmp", ".saving/*"],
                          delete_patterns="*", commit_message=f"Upload {folder.name} from the hw3 demo suite")
    except OfflineModeIsEnabled:
        print(f"not pushed to {repo_id}: offline mode is on (HF_HUB_OFFLINE); the checkpoint is in {folder}",
              file=sys.stderr)
        return False
    except (HfHubHTTPError, OSError) as error:
        print(f"not pushed to {repo_id}: {error}; the checkpoint is in {folder}", file=sys.stderr)
        return False
    print(f"pushed {folder} to https://huggingface.co/{repo_id}")
    return True
