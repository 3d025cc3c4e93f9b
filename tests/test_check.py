"""Check your model (hw3core.check): students' models identified, compared row by row with the
assignment's tables, and, where they fit, run in our classes exactly as their own forward runs."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from student_models import (
    FunctionalAlexNet,
    LinearGatesLSTMCell,
    PerGateLSTMCell,
    StarterGRUCell,
    StarterSentenceGeneration,
    StarterSentimentClassification,
    StudentAlexNet,
    starter_ids,
    starter_vocabulary,
)
from torch import nn

from hw3core import AlexNet, AlexNetAvgPooling, AlexNetLargeKernel, ShakespeareWriter, check_model
from hw3core.check import check
from hw3core.check.student import StudentFileError
from hw3core.check.tables import CELL_PARAMETERS, TABLES, TOTALS, weighted_rows
from hw3core.explain import layer_table

REVIEWS = ["a great film , I loved it", "boring and bad , not good at all", "the film was not bad"]
SHAKESPEARE = "ROMEO:\nWill't Marcius Coriolanus and envy of smelling!\nJULIET:\nAre there incensed to my feet?\n"
EPS = torch.finfo(torch.float32).eps


def close(ours: torch.Tensor, theirs: torch.Tensor, terms: int) -> None:
    """Two float32 computations of one function, in different orders: each output is a sum of ``terms``
    products, so rounding differs by about eps * sqrt(terms) of the values' scale (bounded by 1e-5 of it)."""
    scale = float(theirs.abs().max().clamp_min(1.0))
    tolerance = min(1e-5, 8 * EPS * terms**0.5) * scale
    torch.testing.assert_close(ours, theirs, rtol=0, atol=tolerance)


def problem(report, row: str) -> str:
    found = [p for p in report.problems if p.startswith(f"{row}:")]
    assert found, f"no problem named {row}: {report.problems}"
    return found[0]


# ----- the tables are one copy, and ours match them -----


@pytest.mark.parametrize("cls", [AlexNet, AlexNetLargeKernel, AlexNetAvgPooling])
def test_our_alexnets_are_the_tables_row_for_row(cls):
    rows = layer_table(cls())
    table = TABLES[cls.__name__]
    assert [(type(r.layer).__name__, r.output_shape, r.parameters) for r in rows] == [
        (row.type, row.output_shape, row.parameters) for row in table]
    assert TOTALS[cls.__name__] == sum(r.parameters for r in rows)
    for r, row in zip(rows, table, strict=True):  # the kernel, padding and stride columns too
        if row.kernel is not None:
            size = r.layer.kernel_size if isinstance(r.layer.kernel_size, int) else r.layer.kernel_size[0]
            stride = r.layer.stride if isinstance(r.layer.stride, int) else r.layer.stride[0]
            padding = r.layer.padding if isinstance(r.layer.padding, int) else r.layer.padding[0]
            assert (size, padding, stride) == (row.kernel, row.padding, row.stride), row.name


def test_the_tables_totals_and_cells_are_the_assignments():
    assert TOTALS["AlexNet"] == 58_297_732
    assert CELL_PARAMETERS == {"GRUCell": 68_700, "LSTMCell": 91_600}
    assert [row.name for row in weighted_rows("AlexNet")] == [
        "Conv2d-1", "Conv2d-4", "Conv2d-7", "Conv2d-9", "Conv2d-11", "Linear-16", "Linear-19", "Linear-21"]


# ----- AlexNets -----


@pytest.fixture(scope="module")
def student_alexnet():
    torch.manual_seed(0)
    return StudentAlexNet().eval()


def test_a_torchvision_style_alexnet_state_dict_passes_and_runs_as_its_own_forward(student_alexnet, tmp_path):
    path = tmp_path / "best_model.pt"
    torch.save(student_alexnet.state_dict(), path)
    asked = check(path)  # AlexNet or AlexNetAvgPooling: the same weights, and an untrained model settles nothing
    assert asked.report.ok and asked.model is None and asked.readings == ["AlexNet", "AlexNetAvgPooling"]
    assert "pick AlexNet or AlexNetAvgPooling" in asked.why_not_run
    checked = check(path, "AlexNet")
    report = checked.report
    assert report.ok and report.model == "AlexNet" and report.cell is None
    assert [row.row for row in report.rows][:8] == [row.name for row in weighted_rows("AlexNet")]
    assert any("your forward was not run" in note for note in report.notes)  # a file holds no code
    images = torch.randn(2, 3, 227, 227)
    with torch.no_grad():
        close(checked.model(images), student_alexnet(images), terms=9216)


def test_a_module_is_listed_as_torchsummary_lists_it(student_alexnet):
    report = check(student_alexnet).report
    assert report.ok
    rows = {row.row: row for row in report.rows}
    assert rows["Conv2d-1"].yours == "[-1, 96, 55, 55] 34,944"
    assert rows["Flatten-14"].ok and "function" in rows["Flatten-14"].yours  # torch.flatten in forward
    assert rows["Total"].yours == "58,297,732 parameters"


def test_the_same_weights_in_a_safetensors_file_and_in_this_projects_checkpoint(student_alexnet, tmp_path):
    save_file(student_alexnet.state_dict(), tmp_path / "model.safetensors")  # names sorted: classifier.* first
    images = torch.randn(1, 3, 227, 227)
    with torch.no_grad():
        checked = check(tmp_path / "model.safetensors", "AlexNet")
        close(checked.model(images), student_alexnet(images), terms=9216)
        ours = checked.model
        ours.save_pretrained(tmp_path / "ours")
        again = check(tmp_path / "ours", "AlexNet")  # a checkpoint folder of this project
        assert again.report.ok
        close(again.model(images), student_alexnet(images), terms=9216)


def test_this_projects_compressed_checkpoint_and_text_checkpoint_folders_are_read(tmp_path, checkpoints):
    from hw3core.checkpoints import load_local
    from hw3core.compression import save_compressed

    torch.manual_seed(4)
    model = AlexNet().eval()
    state = model.state_dict()
    masks = {name: torch.rand_like(state[name]) < 0.05 for name in state if name.endswith("weight")}
    save_compressed(tmp_path / "compressed.safetensors", state, masks, {name: 5 for name in masks})
    checked = check(tmp_path / "compressed.safetensors", "AlexNet")
    assert checked.report.ok and checked.report.source == "this project's compressed checkpoint"
    model.save_pretrained(tmp_path / "folder")
    (tmp_path / "folder" / "model.safetensors").unlink()
    (tmp_path / "compressed.safetensors").rename(tmp_path / "folder" / "compressed.safetensors")
    dense = load_local(AlexNet, tmp_path / "folder")  # what the app itself loads from that folder
    images = torch.randn(1, 3, 227, 227)
    with torch.no_grad():
        close(checked.model(images), dense(images), terms=9216)
    writer = check(checkpoints / "shakespeare-lstm")  # its config.json holds the characters
    assert writer.report.ok and writer.report.model == "SentenceGeneration" and writer.report.cell == "LSTMCell"
    ours = load_local(ShakespeareWriter, checkpoints / "shakespeare-lstm")
    ids = torch.tensor([ours.encode("ROMEO: what")])
    with torch.no_grad():
        close(writer.model(ids)[0], ours(ids)[0], terms=32 * ids.shape[1])


def test_average_pooling_is_found_from_a_module_and_chosen_for_a_state_dict():
    torch.manual_seed(1)
    student = StudentAlexNet(pool=nn.AvgPool2d).eval()
    assert check(student).report.model == "AlexNetAvgPooling"
    checked = check(student.state_dict(), "AlexNetAvgPooling")
    assert checked.report.ok and isinstance(checked.model, AlexNetAvgPooling)
    with torch.no_grad():
        images = torch.randn(1, 3, 227, 227)
        close(checked.model(images), student(images), terms=9216)


def test_the_large_kernel_variant_is_identified():
    assert check(AlexNetLargeKernel().state_dict()).report.model == "AlexNetLargeKernel"


def test_a_wrong_choice_of_class_says_which_fits():
    report = check(AlexNetLargeKernel().state_dict(), "AlexNet").report
    assert not report.ok and "It matches AlexNetLargeKernel's table: pick AlexNetLargeKernel (or auto)." in report.notes
    text = check(StarterSentimentClassification(40, 8, StarterGRUCell, 6).state_dict(), "AlexNet").report
    assert text.problems == ["Not an AlexNet: it has no convolution weights (it has an embedding: a text model? Pick auto)."]


def test_seven_outputs_are_named_by_their_row_with_the_cause():
    report = check(StudentAlexNet(num_classes=7).state_dict()).report
    assert not report.ok and report.model == "AlexNet"
    assert problem(report, "Linear-21") == ("Linear-21: 4,096 → 7; the table has 4 outputs, one per domain "
                                            "(7 is the number of PACS categories).")
    assert len(report.problems) == 1 and report.problems == report.as_json()["problems"]


def test_a_missing_pooling_layer_is_named_by_its_row():
    module = StudentAlexNet(skip_first_pool=True)
    report = check(module).report
    assert "MaxPool2d-3: missing" in problem(report, "MaxPool2d-3")
    assert problem(report, "Forward").startswith("Forward: fails")  # 43,264 features reach a 9,216-input layer
    rows = {row.row: row for row in report.rows}
    assert not rows["MaxPool2d-3"].ok and rows["MaxPool2d-3"].yours == "missing"
    # Its state dict, with Linear-16 widened until it runs: the weights say what the shapes imply.
    widened = check(StudentAlexNet(skip_first_pool=True, linear16_inputs=256 * 13 * 13).state_dict()).report
    assert "13×13" in problem(widened, "Linear-16") and "pooling layer" in problem(widened, "Linear-16")


def test_layers_called_as_functions_in_forward_pass_where_the_shapes_show_them():
    torch.manual_seed(5)
    student = FunctionalAlexNet().eval()
    report = check(student).report  # F.relu, F.max_pool2d, torch.flatten, F.dropout: no modules to list
    assert report.ok, report.problems
    rows = {row.row: row for row in report.rows}
    assert rows["MaxPool2d-3"].ok and "function" in rows["MaxPool2d-3"].yours
    # max or average: no pooling module to see, so the forward is run both ways
    assert any(note.startswith("Read as AlexNet (not AlexNetAvgPooling") for note in report.notes)
    # A pooling layer left out of the forward is still missing: the next layer's shape shows it.
    missing = check(FunctionalAlexNet(skip_first_pool=True)).report
    assert "MaxPool2d-3: missing" in problem(missing, "MaxPool2d-3")
    assert not {row.row: row for row in missing.rows}["MaxPool2d-3"].ok


def test_a_file_of_many_extra_layers_gets_a_report_of_bounded_size():
    state = dict(StudentAlexNet().state_dict())
    state.update({f"extra.{i}.weight": torch.zeros(1, 1) for i in range(5_000)})
    report = check(state).report
    assert not report.ok and len(report.rows) < 40 and len(report.problems) < 20
    assert "4,990 more layers that the table does not have." in report.problems


def test_a_3x3_conv2d_4_is_named_with_the_tables_kernel():
    expected = "Conv2d-4: a 3×3 kernel; the table's is 5×5 (padding 2)."
    assert problem(check(StudentAlexNet(conv4_kernel=3).state_dict()).report, "Conv2d-4") == expected
    assert problem(check(StudentAlexNet(conv4_kernel=3)).report, "Conv2d-4") == expected


def test_a_layer_without_bias_is_named():
    report = check(StudentAlexNet(linear19_bias=False).state_dict()).report
    assert problem(report, "Linear-19").startswith("Linear-19: no bias")
    assert [p.split(":")[0] for p in report.problems] == ["Linear-19"]
    assert check(StudentAlexNet(linear19_bias=False).state_dict()).model is None  # not run


def test_check_model_prints_the_report_with_a_mark_per_row_problems_first(capsys):
    report = check_model(StudentAlexNet(num_classes=7).state_dict(), "AlexNet")
    printed = capsys.readouterr().out
    assert printed.index("✘ Linear-21") < printed.index("Layer (type)")
    assert printed.count("✔") == 7 and printed.count("✘ ") >= 2  # 7 good rows; the bad row and its problem
    assert not report.ok


# ----- text models -----


def _text_file(tmp_path, model, vocabulary=None, name="model.pt"):
    path = tmp_path / name
    torch.save(model.state_dict() if vocabulary is None else {"model": model.state_dict(), "vocabulary": vocabulary},
               path)
    return path


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_starter_sentiment_classifier_runs_as_its_own_forward(tmp_path, cell):
    torch.manual_seed(2)
    vocabulary = starter_vocabulary(REVIEWS)
    rnn = StarterGRUCell if cell == "gru" else PerGateLSTMCell
    student = StarterSentimentClassification(len(vocabulary), 16, rnn, 12).eval()
    path = _text_file(tmp_path, student, vocabulary)
    if cell == "lstm":  # an untrained LSTM's file cannot say whether its gates read [h, x] or [x, h]: it asks
        asked = check(path)
        assert asked.model is None and asked.readings == ["gates over [h, x]", "gates over [x, h]"]
    checked = check(path, reading="gates over [h, x]") if cell == "lstm" else check(path)
    report = checked.report
    assert report.ok and report.model == "SentimentClassification"
    assert report.cell == ("GRUCell" if cell == "gru" else "LSTMCell")
    review = REVIEWS[1] + " unknownword"
    ids = torch.tensor([starter_ids(review, vocabulary)])
    with torch.no_grad():
        theirs = torch.softmax(student(ids, torch.tensor([ids.shape[1]])), dim=-1)[0]
    close(checked.model.predict([review])[0], theirs, terms=28 * ids.shape[1])


@pytest.mark.parametrize("candidate", ["c", "g", "linear gates named in words"])
def test_a_per_gate_lstm_writer_runs_as_its_own_forward(tmp_path, candidate):
    torch.manual_seed(3)
    characters = sorted(set(SHAKESPEARE))
    cell = LinearGatesLSTMCell if len(candidate) > 1 else lambda i, h, b: PerGateLSTMCell(i, h, b, candidate)
    student = StarterSentenceGeneration(len(characters), 16, cell, 20).eval()
    checked = check(_text_file(tmp_path, student, characters), reading="gates over [h, x]")
    assert checked.report.ok and checked.report.model == "SentenceGeneration"
    assert checked.report.cell == "LSTMCell"
    text = "ROMEO:\nWill"
    ids = torch.tensor([[characters.index(char) for char in text]])
    with torch.no_grad():
        theirs = student(ids)[0]
        ours = checked.model(torch.tensor([checked.model.encode(text)]))[0][0]
    close(ours, theirs, terms=36 * len(text))


class IgnoresBias(StarterGRUCell):
    """A GRU that never makes its biases, whatever bias says."""

    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__(input_size, hidden_size, bias=False)


def test_the_cells_are_counted_at_the_assignments_sizes():
    for rnn, cell in ((StarterGRUCell, "GRUCell"), (PerGateLSTMCell, "LSTMCell")):
        report = check(StarterSentimentClassification(50, 8, rnn, 6).state_dict()).report
        row = next(r for r in report.rows if r.row == f"{cell}(128, 100, bias=True)")
        assert row.ok and row.yours == f"{CELL_PARAMETERS[cell]:,} parameters"
    # The starter's default is no biases: the count is the class's at bias=True, not the trained model's.
    assert check(StarterSentimentClassification(50, 8, StarterGRUCell, 6, bias=False).state_dict()).report.ok
    no_bias = check(StarterSentimentClassification(50, 8, IgnoresBias, 6)).report
    assert "68,400" in problem(no_bias, "GRUCell(128, 100, bias=True)")
    step = next(r for r in check(StarterSentimentClassification(50, 8, PerGateLSTMCell, 6)).report.rows
                if r.row == "State a step returns")
    assert step.ok and step.yours == "a tuple of 2: (2, 6), (2, 6)"


class HardCodedLSTMCell(PerGateLSTMCell):
    """A cell 100 wide whatever hidden_size it is given: what students' solutions in public repositories do."""

    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__(input_size, 100, bias)


def test_a_hard_coded_hidden_size_is_named_with_its_cause():
    student = StarterSentimentClassification(30, 8, HardCodedLSTMCell, 64)
    student.classifier = nn.Linear(64, 2)  # the model's hidden_size, which the cell ignored
    for report in (check(student).report, check(student.state_dict()).report):
        assert "hard-coded" in problem(report, "Linear (classifier)")
    # A module is built once more with another hidden size: even 100 everywhere shows the cell ignores it.
    consistent = check(StarterSentimentClassification(30, 8, HardCodedLSTMCell, 100)).report
    assert "hard-coded" in problem(consistent, "LSTMCell(8, hidden_size=37)")
    assert check(StarterSentimentClassification(30, 8, PerGateLSTMCell, 100)).report.ok


def test_without_a_vocabulary_the_check_passes_but_says_how_to_save_one(tmp_path):
    checked = check(_text_file(tmp_path, StarterSentimentClassification(40, 8, StarterGRUCell, 6)))
    assert checked.report.ok and checked.model is None
    assert "'vocabulary': vocabulary" in checked.why_not_run
    assert any("'vocabulary': vocabulary" in note for note in checked.report.notes)


def test_a_model_without_a_vocabulary_is_told_how_to_pass_one_and_that_way_runs():
    student = StarterSentenceGeneration(30, 8, StarterGRUCell, 6).eval()
    checked = check(student)
    assert checked.report.ok and checked.model is None
    assert checked.why_not_run.startswith("the model has no vocabulary") and "file" not in checked.why_not_run
    advice = "check_model({'model': model.state_dict(), 'vocabulary': vocabulary}, 'SentenceGeneration')"
    assert advice in checked.why_not_run
    assert check({"model": student.state_dict(), "vocabulary": list("abcdefghijklmnopqrstuvwxyz :.\n")},
                 "SentenceGeneration").model is not None  # the advice, followed


def test_a_vocabulary_that_does_not_fit_the_embedding_is_a_problem(tmp_path):
    student = StarterSentenceGeneration(30, 8, StarterGRUCell, 6)
    report = check(_text_file(tmp_path, student, list("abc"))).report
    assert "30 rows" in problem(report, "Embedding")


def test_a_cell_whose_gates_cannot_be_told_apart_is_checked_for_shapes_only():
    state = StarterSentimentClassification(40, 8, StarterGRUCell, 6).state_dict()
    renamed = {key.replace("W_z", "U1").replace("W_r", "U2").replace("rnn_model.W", "rnn_model.U3"): value
               for key, value in state.items()}
    checked = check(renamed)
    assert checked.model is None and not checked.report.ok
    assert "shapes only, and not run" in checked.report.problems[0]
    assert "W_z, W_r and W" in checked.report.problems[0]  # what the names should be


def test_a_peephole_lstm_is_named_as_one():
    hidden, embedding = 6, 8
    state = {"embedding.weight": torch.zeros(20, embedding)}
    for gate in "fioc":  # each gate over [c, h, x]
        state[f"rnn_model.W_{gate}"] = torch.zeros(hidden, 2 * hidden + embedding)
        state[f"rnn_model.b_{gate}"] = torch.zeros(hidden)
    state.update({"classifier.weight": torch.zeros(2, hidden), "classifier.bias": torch.zeros(2)})
    checked = check(state)
    assert checked.model is None and "peephole" in problem(checked.report, "LSTMCell")


def test_a_built_in_rnn_module_is_named_as_one():
    student = nn.ModuleDict({"embedding": nn.Embedding(40, 8), "rnn": nn.LSTM(8, 6), "classifier": nn.Linear(6, 2)})
    checked = check(student.state_dict())
    assert checked.model is None and "not a built-in RNN module" in problem(checked.report, "cell")


def test_a_classifier_with_the_wrong_width_is_named():
    student = StarterSentimentClassification(40, 8, StarterGRUCell, 6)
    student.classifier = nn.Linear(6, 3)
    assert "3 outputs" in problem(check(student.state_dict(), "SentimentClassification").report,
                                  "Linear (classifier)")


# ----- files that are not weights -----


class RunsCode:
    """A pickle that, when loaded, writes a file: what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class WritesFile:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "ran"))


@pytest.mark.parametrize("payload", [RunsCode, WritesFile])
def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path, payload):
    marker = tmp_path / "ran.txt"
    path = tmp_path / "best_model.pt"
    torch.save({"model": payload(marker)}, path)
    with pytest.raises(StudentFileError) as raised:
        check(path)
    message = str(raised.value)
    assert "state_dict()" in message and "weights_only" not in message
    assert not marker.exists()


def test_a_whole_pickled_model_is_refused_with_how_to_save_its_state_dict(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(StarterSentimentClassification(20, 4, StarterGRUCell, 3), path)
    with pytest.raises(StudentFileError, match=r"torch\.save\(model\.state_dict\(\), 'best_model\.pt'\)"):
        check(path)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda path, good: path.write_bytes(good[: len(good) // 2]), "incomplete or damaged"),
        (lambda path, good: path.write_bytes(os.urandom(4096)), "is not a PyTorch checkpoint"),
        (lambda path, good: path.write_bytes(b""), "is empty"),
        (lambda path, good: torch.save(torch.zeros(3), path), "a single tensor"),
        (lambda path, good: torch.save({"epoch": 3, "lr": 0.1}, path), "not a state dict"),
        (lambda path, good: path.write_bytes((100).to_bytes(8, "little") + b'{"a": [' + os.urandom(120)),
         "damaged safetensors"),
        (lambda path, good: path.write_bytes(pickle.dumps({"a": 1})[:5]), "cannot be read as a PyTorch checkpoint"),
    ],
)
def test_files_that_are_not_weights_get_a_clear_message(tmp_path, make, words):
    good_path = tmp_path / "good.pt"
    torch.save(StarterSentimentClassification(20, 4, StarterGRUCell, 3).state_dict(), good_path)
    path = tmp_path / "upload.pt"
    make(path, good_path.read_bytes())
    with pytest.raises(StudentFileError, match=words):
        check(path)


def test_a_compressed_file_that_would_decode_into_gigabytes_is_refused_before_anything_is_allocated(tmp_path):
    from hw3core.compression import FORMAT

    path = tmp_path / "compressed.safetensors"  # 328 bytes declaring 10 billion weights (40 GB), none kept
    layout = {"w": {"shape": [100_000, 100_000], "bits": 1, "kept": 0}}
    save_file({"w.codebook": torch.zeros(2), "w.codes": torch.zeros(0, dtype=torch.uint8)}, path,
              metadata={"format": FORMAT, "compressed": json.dumps(layout)})
    with pytest.raises(StudentFileError, match="would decode into 10,000,000,000 weights"):
        check(path)
    layout["w"] = {"shape": [4], "bits": 10**12, "kept": 0}  # 2**bits would never finish
    save_file({"w.codebook": torch.zeros(2), "w.codes": torch.zeros(0, dtype=torch.uint8)}, path,
              metadata={"format": FORMAT, "compressed": json.dumps(layout)})
    with pytest.raises(StudentFileError, match="compressed checkpoint"):
        check(path)


# ----- the command -----


def test_the_command_prints_the_report_and_exits_by_the_verdict(tmp_path):
    torch.save(StudentAlexNet(num_classes=7).state_dict(), tmp_path / "best_model.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    run = subprocess.run([sys.executable, "-m", "hw3core.check", str(tmp_path / "best_model.pt"), "--json"],
                         capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    assert run.returncode == 1
    report = json.loads(run.stdout)
    assert report["model"] == "AlexNet" and report["ok"] is False and report["problems"][0].startswith("Linear-21")
    junk = subprocess.run([sys.executable, "-m", "hw3core.check", str(tmp_path / "junk.pt")], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    assert junk.returncode == 2 and "not a PyTorch checkpoint" in junk.stderr and "Traceback" not in junk.stderr
