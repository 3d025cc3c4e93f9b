"""Training records name their data sets, never a folder of the machine that trained them."""

import json
import re
from pathlib import Path

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
    assert pacs["command"] == "python -m training.train_alexnet --data-dir=PACS_DIR"
    assert pacs["arguments"] == {"data_dir": "PACS_DIR", "keep": "best"} and pacs["data"] == "PACS"
    assert pacs["kept_epoch"] == 4


def test_the_shipped_records_hold_no_machine_paths():
    records = [*REPO.glob("checkpoints/*/training.json"), *REPO.glob("checkpoints/*/compression.json"),
               *REPO.glob("checkpoints/*/README.md"), REPO / "checkpoints" / "README.md"]
    assert len(records) >= 15
    for record in records:
        text = record.read_text()
        assert not ABSOLUTE_PATH.search(text), f"{record} holds a path: {ABSOLUTE_PATH.search(text)[0]}"
        assert "1 threads" not in text, record
