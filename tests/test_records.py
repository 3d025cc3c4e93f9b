"""Training records name their data sets, never a folder of the machine that trained them."""

import json
import re
from pathlib import Path

from hw3core.records import read_run
from hw3core.registry import MODELS
from hw3core.render import MISSING, render_run
from training import report

REPO = Path(__file__).resolve().parent.parent
ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:home|root|work|tmp|Users|mnt|data)/")


def test_an_old_record_is_rewritten_from_its_own_fields():
    old = {
        "command": "/usr/bin/python3.11 -m training.train_sentiment --cell gru --data /srv/me/imdb/aclImdb_v1.tar.gz",
        "task": "sentiment-gru",
        "arguments": {"cell": "gru", "data": "/srv/me/imdb/aclImdb_v1.tar.gz", "epochs": 8, "out": "checkpoints/x"},
        "hardware": "x86_64 CPU, 1 threads",
        "data": "IMDB (/srv/me/imdb/aclImdb_v1.tar.gz)",
        "parameters": 5,
    }
    new = report.portable_run(old, last_epoch=8)
    assert new["command"] == "python -m training.train_sentiment --cell gru --data aclImdb_v1.tar.gz --keep last"
    # A run from before --tail-length read each review's first words: recorded as reading no tail.
    assert new["arguments"] == {**old["arguments"], "data": "aclImdb_v1.tar.gz", "keep": "last", "tail_length": 0}
    assert new["kept_epoch"] == 8
    assert new["data"] == "IMDB (aclImdb_v1.tar.gz)" and new["hardware"] == "x86_64 CPU, 1 thread"
    assert new["parameters"] == 5 and "/srv/me" not in json.dumps(new)

    pacs = report.portable_run({**old, "task": "alexnet", "command": "python -m training.train_alexnet --data-dir=/srv/pacs",
                                "arguments": {"data_dir": "/srv/pacs", "keep": "best"}, "data": "PACS (/srv/pacs)",
                                "kept_epoch": 4}, last_epoch=5)
    # --data-dir, the flag's earlier spelling, is written as today's.
    assert pacs["command"] == "python -m training.train_alexnet --data=PACS_DIR"
    assert pacs["arguments"] == {"data": "PACS_DIR", "keep": "best"} and pacs["data"] == "PACS"
    assert pacs["kept_epoch"] == 4


def test_the_shipped_records_are_written_as_the_scripts_write_them_now():
    """Every command a record shows runs as written: no earlier spelling of a module or a flag."""
    for name in MODELS:
        run = json.loads((REPO / "checkpoints" / name / "training.json").read_text())
        assert report.portable_run(run, read_run(REPO / "checkpoints" / name).history[-1].epoch) == run, name


def test_the_shipped_records_hold_no_machine_paths():
    records = [*REPO.glob("checkpoints/*/training.json"), *REPO.glob("checkpoints/*/compression.json"),
               *REPO.glob("checkpoints/*/README.md"), REPO / "checkpoints" / "README.md"]
    assert len(records) >= 15
    for record in records:
        text = record.read_text()
        assert not ABSOLUTE_PATH.search(text), f"{record} holds a path: {ABSOLUTE_PATH.search(text)[0]}"
        assert "1 threads" not in text, record


# ----- the typed run record and its one renderer -----

CONFUSION = [[8, 0, 2, 0], [0, 9, 1, 0], [3, 0, 7, 0], [0, 0, 0, 10]]
PER_DOMAIN = {"art_painting": 0.8, "cartoon": 0.9, "photo": 0.7, "sketch": 1.0}


def per_domain_checkpoint(folder: Path) -> Path:
    """A record as an AlexNet run and its compression write them now, with every per-domain figure."""
    folder.mkdir(parents=True)
    row = {"epoch": 1, "train_loss": 0.5, "train_accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.85,
           "epoch_seconds": 10.0, "examples_per_second": 5.0, "val_balanced_accuracy": 0.85, "val_balanced_loss": 0.41,
           "val_per_class": PER_DOMAIN, "val_confusion": CONFUSION}
    (folder / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    run = {"command": "python -m training.train_alexnet --variant alexnet --data PACS_DIR", "task": "alexnet",
           "arguments": {"keep": "best"}, "hardware": "here", "classes": list(PER_DOMAIN), "kept_epoch": 1,
           "split": {"val": 40}}
    (folder / "training.json").write_text(json.dumps(run))
    compressed = {"accuracy": 0.825, "loss": 0.45, "n": 40, "balanced_accuracy": 0.825, "balanced_loss": 0.46,
                  "per_class": {**PER_DOMAIN, "photo": 0.6}, "confusion": [[8, 0, 2, 0], [0, 9, 1, 0], [4, 0, 6, 0],
                                                                           [0, 0, 0, 10]]}
    dense = {"accuracy": 0.85, "loss": 0.4, "n": 40, "balanced_accuracy": 0.85, "per_class": PER_DOMAIN,
             "confusion": CONFUSION}
    (folder / "compression.json").write_text(json.dumps({
        "command": "python -m training.compress --checkpoint checkpoints/alexnet", "checkpoint": "alexnet",
        "fine_tune": {"epochs": 1}, "dense_bytes": 233_000_000, "compressed_bytes": 6_500_000, "layers": [],
        "validation": {"split": "the recorded one", "dense": dense, "pruned": dense, "fine_tuned": dense,
                       "compressed": compressed}}))
    return folder


def test_every_shipped_record_loads_and_renders_with_the_figures_it_lacks_marked():
    for folder in sorted(p for p in (REPO / "checkpoints").iterdir() if p.is_dir()):
        record = read_run(folder)
        assert record is not None and record.kept.epoch == record.kept_epoch, folder
        text = render_run(record)
        assert record.command in text and f"| {record.kept.epoch} |" in text
        assert all(command in text for command in MODELS[folder.name].commands())  # what the app names too
        if record.classes:
            compressed = record.compression.validation["compressed"]
            assert f"| compressed | {compressed.accuracy:.4f} |" in text
            if compressed.balanced_accuracy is None:  # a run that predates the per-domain figures: marked, not left out
                assert "| dense | " in text and f"| {MISSING} | {MISSING} |" in text and "predates" in text
            else:  # its figures per domain and its confusion matrices, as recorded
                assert f"| compressed | {compressed.accuracy:.4f} | {compressed.balanced_accuracy:.4f} |" in text
                assert "Confusion matrix, compressed weights" in text


def test_a_record_round_trips_through_its_types(tmp_path):
    folder = per_domain_checkpoint(tmp_path / "alexnet")
    record = read_run(folder)
    assert record.to_json() == json.loads((folder / "training.json").read_text())
    assert [row.to_json() for row in record.history] == [json.loads(line) for line in
                                                         (folder / "metrics.jsonl").read_text().splitlines()]
    assert record.compression.to_json() == json.loads((folder / "compression.json").read_text())


def test_the_model_card_and_the_report_show_per_domain_figures_and_confusion_matrices(tmp_path):
    folder = per_domain_checkpoint(tmp_path / "alexnet")
    record = read_run(folder)
    card = render_run(record)
    assert "| dense | 0.8500 | 0.8500 | 0.8000 | 0.9000 | 0.7000 | 1.0000 |" in card
    assert "| compressed | 0.8250 | 0.8250 | 0.8000 | 0.9000 | 0.6000 | 1.0000 |" in card
    assert "| photo | 3 | 0 | 7 | 0 |" in card and "| photo | 4 | 0 | 6 | 0 |" in card  # dense, then compressed
    assert "| 1 | 0.5000 | 0.8000 | 0.4000 | 0.8500 | 0.8500 | 10 | 5 |" in card  # the epoch with its balanced figure
    readme = report.build(tmp_path, seed=0)
    assert "| AlexNet compressed | 0.8250 | 0.8250 | 0.8000 | 0.9000 | 0.6000 | 1.0000 |" in readme
    assert "| photo | 4 | 0 | 6 | 0 |" in readme


def test_the_app_panel_shows_per_domain_figures_and_a_confusion_heatmap(tmp_path):
    from demos.model_store import ModelStore
    from demos.training_info import confusion_report, training_report

    per_domain_checkpoint(tmp_path / "alexnet")
    text, _ = training_report(ModelStore(tmp_path), {"alexnet": "AlexNet"})
    assert "| AlexNet compressed | 0.8250 | 0.8250 | 0.8000 | 0.9000 | 0.6000 | 1.0000 |" in text
    heatmap = confusion_report(ModelStore(tmp_path), {"alexnet": "AlexNet"})
    assert "AlexNet (compressed weights)" in heatmap and heatmap.count("<tr>") == 5  # header + a row per domain
    assert "rgba(37, 99, 235, 0.40)" in heatmap  # 4 of the 10 photos called paintings
    assert confusion_report(ModelStore(tmp_path), {"sentiment-gru": "GRU"}) == ""  # not a classifier of domains
