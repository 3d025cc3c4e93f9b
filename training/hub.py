"""The model card and the upload of a checkpoint folder to the Hugging Face Hub."""

import sys
from pathlib import Path

from huggingface_hub import HfApi, ModelCard, ModelCardData
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

CARD = """{% macro number(value) %}{{ "–" if value is none else "%.4f"|format(value) }}{% endmacro %}---
{{ card_data }}
---

# {{ name }}

{{ description }}

Trained with the hw3 demo suite (CS 1678/2078 Homework 3) by:

```
{{ command }}
```

on {{ hardware }}, {{ epochs }} epochs in {{ wall_minutes }} minutes.{% if kept_epoch %} The weights are those of
epoch {{ kept_epoch }}, {{ "the one of lowest validation loss" if keep == "best" else "the last" }} (`--keep {{ keep }}`).{% endif %}{% if dropout %}
The training loss and accuracy are those of the training passes, with dropout ({{ dropout }}) on; validation
runs without it, as the model is used, which is why it can score above training.{% if probe %} "Train loss
(eval mode)" is the model without dropout on the first tenth of the text it trains on, scored as validation is.{% endif %}{% endif %}{% if history[0].val_loss is none %}
This run trained on all of the data, so it has no validation figures; its settings were chosen by a run
on the validation split (below).{% endif %}

| epoch | train loss |{% if probe %} train loss (eval mode) |{% endif %} train accuracy | val loss | val accuracy |
|---|---|{% if probe %}---|{% endif %}---|---|---|
{% for row in history %}| {{ row.epoch }} | {{ number(row.train_loss) }} |{% if probe %} {{ number(row.train_eval_loss) }} |{% endif %} {{ number(row.train_accuracy) }} | {{ number(row.val_loss) }} | {{ number(row.val_accuracy) }} |
{% endfor %}{% if selection %}
## The run that chose the settings

```
{{ selection.command }}
```

Trained on {{ "{:,}".format(selection.split.train_characters) }} characters, validated on the last
{{ "{:,}".format(selection.split.val_characters) }}; its validation loss was lowest at epoch {{ selection.kept_epoch }}.

| epoch | train loss | train loss (eval mode) | val loss | val accuracy |
|---|---|---|---|---|
{% for row in selection.history %}| {{ row.epoch }} | {{ number(row.train_loss) }} | {{ number(row.train_eval_loss) }} | {{ number(row.val_loss) }} | {{ number(row.val_accuracy) }} |
{% endfor %}{% endif %}
{% if compression %}
## Compressed

Deep Compression (Han, Mao & Dally, 2016): magnitude pruning, fine-tuning with the masks held
({{ compression.fine_tune.epochs }} epoch{{ '' if compression.fine_tune.epochs == 1 else 's' }}), a k-means codebook per layer. The weights ship as
`compressed.safetensors`, {{ "%.2f"|format(compression.compressed_bytes / 1e6) }} MB instead of
{{ "%.1f"|format(compression.dense_bytes / 1e6) }} MB, made by:

```
{{ compression.command }}
```

| stage | val accuracy | val loss |
|---|---|---|
{% for stage in ["dense", "pruned", "fine_tuned", "compressed"] %}| {{ stage.replace("_", "-") }} | {{ "%.4f"|format(compression.validation[stage].accuracy) }} | {{ "%.4f"|format(compression.validation[stage].loss) }} |
{% endfor %}
| layer | shape | weights kept | bits | positions | bytes |
|---|---|---|---|---|---|
{% for layer in compression.layers %}| {{ layer.name }} | {{ layer.shape|join("×") }} | {{ "%.1f"|format(100 * layer.density) }}% | {{ layer.bits }} | {{ layer.positions }} | {{ "{:,}".format(layer.bytes) }} |
{% endfor %}
{% endif %}
Load it with `hw3core.checkpoints.load_local` (it reads `config.json` and the safetensors weights, never a pickle).
"""


def write_model_card(folder: Path, name: str, description: str, run: dict, history: list[dict],
                     compression: dict | None = None) -> None:
    data = ModelCardData(library_name="hw3core", tags=["hw3", name.split("-")[0]])
    card = ModelCard.from_template(
        data,
        template_str=CARD,
        name=name,
        description=description,
        command=run["command"],
        hardware=run.get("hardware", "?"),
        epochs=len(history),
        wall_minutes=f"{run.get('wall_seconds', 0) / 60:.1f}",
        history=history,
        compression=compression,
        kept_epoch=run.get("kept_epoch"),
        keep=run.get("arguments", {}).get("keep", "last"),
        dropout=run.get("arguments", {}).get("dropout"),
        probe=any("train_eval_loss" in row for row in history),
        selection=run.get("selection_run"),
    )
    card.save(folder / "README.md.tmp")
    (folder / "README.md.tmp").replace(folder / "README.md")  # atomic, like every file of a checkpoint


def push(folder: Path, repo_id: str) -> bool:
    """Uploads the checkpoint folder (weights, config, metrics, plots, card; not the resume state)."""
    api = HfApi()
    try:
        api.create_repo(repo_id, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=folder, ignore_patterns=["resume.pt", "*.tmp", ".saving/*"],
                          commit_message=f"Upload {folder.name} from the hw3 demo suite")
    except OfflineModeIsEnabled:
        print(f"not pushed to {repo_id}: offline mode is on (HF_HUB_OFFLINE); the checkpoint is in {folder}",
              file=sys.stderr)
        return False
    except (HfHubHTTPError, OSError) as error:
        print(f"not pushed to {repo_id}: {error}; the checkpoint is in {folder}", file=sys.stderr)
        return False
    print(f"pushed {folder} to https://huggingface.co/{repo_id}")
    return True
