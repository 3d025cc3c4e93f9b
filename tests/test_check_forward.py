"""The check runs a student's code: cells, AlexNets and text models written as students write them, each right
or with one mistake, against the assignment's equations; each mistake named by its cause, every right one
passed, and the student's model left as it was found."""

import csv
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from student_models import (
    FunctionalAlexNet,
    LinearGatesLSTMCell,
    PerGateLSTMCell,
    StarterGRUCell,
    StarterSentenceGeneration,
    StarterSentimentClassification,
    StudentAlexNet,
    starter_vocabulary,
)
from torch import Tensor, nn
from torch.nn import functional as F

from hw3core import GRUCell, LSTMCell, check_model
from hw3core.check import CHOICES, check
from hw3core.check.text_forward import REVIEWS

ROOT = Path(__file__).parents[1]


def forward_problem(report) -> str:
    found = [p for p in report.problems if "orward" in p.split(":")[0] or "radients" in p.split(":")[0]]
    assert found, f"no forward or gradient problem: {report.problems}"
    return " ".join(found)


# ----- cells: the right ones pass -----


class StackedLinearLSTMCell(nn.Module):
    """One nn.Linear over [h, x] for all four gates, chunked in the order f, i, o, g."""

    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__()
        self.hidden_size = hidden_size
        self.gates = nn.Linear(hidden_size + input_size, 4 * hidden_size, bias=bias)

    def forward(self, x, prev_state=None):
        if prev_state is None:  # on the input's device and dtype
            prev_state = (x.new_zeros(x.shape[0], self.hidden_size), x.new_zeros(x.shape[0], self.hidden_size))
        h, c = prev_state
        f, i, o, g = self.gates(torch.cat([h, x], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class TwoLinearLSTMCell(nn.Module):
    """x2h and h2h, each with its bias, gates chunked i, f, g, o (a common tutorial's layout)."""

    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__()
        self.x2h = nn.Linear(input_size, 4 * hidden_size, bias=bias)
        self.h2h = nn.Linear(hidden_size, 4 * hidden_size, bias=bias)
        self.hidden_size = hidden_size

    def forward(self, x, prev_state=None):
        h, c = prev_state if prev_state is not None else (torch.zeros(x.shape[0], self.hidden_size, dtype=x.dtype),) * 2
        i, f, g, o = (self.x2h(x) + self.h2h(h)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class XFirstLSTMCell(PerGateLSTMCell):
    """Gates over [x, h]: the same shapes as [h, x], another function of the same weights, and a right one."""

    def forward(self, x, prev_state=None):
        if prev_state is None:
            prev_state = (x.new_zeros(x.shape[0], self.hidden_size), x.new_zeros(x.shape[0], self.hidden_size))
        h, c = prev_state
        xh = torch.cat([x, h], dim=1)
        f, i, o = (torch.sigmoid(xh @ getattr(self, f"W_{g}").t() + getattr(self, f"b_{g}")) for g in "fio")
        c = f * c + i * torch.tanh(xh @ self.W_c.t() + self.b_c)
        return o * torch.tanh(c), c


@pytest.mark.parametrize("cell", [PerGateLSTMCell, LinearGatesLSTMCell, StackedLinearLSTMCell, XFirstLSTMCell, LSTMCell])
def test_a_right_lstm_cell_passes_as_a_class_and_as_an_instance(cell):
    for given in (cell, cell(6, 5, True)):
        report = check(given, "LSTMCell").report
        assert report.ok, report.problems
        rows = {row.row.split(":")[0]: row for row in report.rows}
        assert rows["Forward"].ok and rows["Gradients"].ok
    assert any(row.row == "count_parameters: LSTMCell(128, 100, bias=True)" and row.yours == "91,600"
               for row in check(cell, "LSTMCell").report.rows)


def test_the_readings_a_forward_settles_are_named():
    assert "Read as one matrix over [h, x], gates in the order f, i, o, g (the forward settles it)." in \
        check(StackedLinearLSTMCell(4, 3), "LSTMCell").report.notes
    assert any("[x, h]" in note for note in check(XFirstLSTMCell(4, 3), "LSTMCell").report.notes)
    # Two biases added into one: the function is ours; count_parameters says it is not the assignment's 91,600.
    two = check(TwoLinearLSTMCell, "LSTMCell").report
    assert "Forward" not in " ".join(two.problems) and "92,000" in " ".join(two.problems)


@pytest.mark.parametrize("cell", [StarterGRUCell, GRUCell])
def test_the_starters_gru_and_ours_pass(cell):
    report = check_model(cell, "GRUCell")
    assert report.ok and any(row.row.startswith("Gradients") and row.ok for row in report.rows)


def test_a_cell_in_float64_builds_its_state_on_the_inputs_dtype_and_passes():
    assert check(PerGateLSTMCell(4, 3).double(), "LSTMCell").report.ok


# ----- cells: each mistake named by its cause -----


def _gate(cell, name, hx):
    return hx @ getattr(cell, f"W_{name}").t() + getattr(cell, f"b_{name}")


class MistakeLSTMCell(PerGateLSTMCell):
    """A per-gate LSTM with one mistake, chosen by name."""

    mistake = ""

    def forward(self, x, prev_state=None):
        zeros = (x.new_zeros(x.shape[0], self.hidden_size), x.new_zeros(x.shape[0], self.hidden_size))
        h, c_prev = zeros if prev_state is None or self.mistake == "ignores state" else prev_state
        hx = torch.cat([h, x], dim=1)
        act = {"f": torch.sigmoid, "i": torch.sigmoid, "o": torch.sigmoid, "c": torch.tanh}
        if self.mistake == "sigmoid candidate":
            act["c"] = torch.sigmoid
        if self.mistake == "tanh forget":
            act["f"] = torch.tanh
        names = {"f": "i", "i": "f"} if self.mistake == "swapped" else {}
        f, i, o, g = (act[k](_gate(self, names.get(k, k), hx)) for k in "fioc")
        c = (c_prev if self.mistake == "no forget" else f * c_prev) + (g if self.mistake == "no input" else i * g)
        if self.mistake == "old c":
            h = o * torch.tanh(c_prev)
        elif self.mistake == "no tanh":
            h = o * c
        elif self.mistake == "no output":
            h = torch.tanh(c)
        else:
            h = o * torch.tanh(c)
        if self.mistake == "detach":
            h = h.detach()
        if self.mistake == "numpy":
            h = torch.from_numpy(np.tanh(np.arctanh(h.numpy())))
        return (c, h) if self.mistake == "c first" else (h, c)


def _mistaken(name: str) -> type:
    return type(f"LSTM_{name.replace(' ', '_')}", (MistakeLSTMCell,), {"mistake": name})


@pytest.mark.parametrize(("mistake", "named"), [
    ("no tanh", "h = o ⊙ c, without the tanh"),
    ("sigmoid candidate", "the candidate (g) goes through sigmoid"),
    ("tanh forget", "the forget gate goes through tanh"),
    ("no input", "no input gate"),
    ("no forget", "no forget gate"),
    ("no output", "no output gate"),
    ("old c", "h is made from the old cell state"),
    ("c first", "the step returns (c, h)"),
    ("ignores state", "the incoming state is ignored"),
    ("swapped", "the input gate and the forget gate use each other's weights"),
    ("detach", "do not reach W_o, b_o, though the forward is right"),
    ("numpy", ".numpy()"),
])
def test_each_lstm_mistake_is_named_by_its_cause(mistake, named):
    report = check(_mistaken(mistake), "LSTMCell").report
    assert not report.ok and named in forward_problem(report)
    if mistake not in ("detach", "numpy"):
        assert "Fix:" in forward_problem(report)


def test_a_hard_coded_hidden_size_shows_when_the_class_is_built_at_another_size():
    class HardCoded(PerGateLSTMCell):
        def __init__(self, input_size, hidden_size, bias=True):
            super().__init__(input_size, 100, bias)

    assert "hard-coded" in " ".join(check(HardCoded, "LSTMCell").report.problems)


def test_a_mistake_no_rule_knows_is_a_difference_and_the_mistakes_tried():
    class Doubled(PerGateLSTMCell):
        def forward(self, x, prev_state=None):
            h, c = super().forward(x, prev_state)
            return 2 * h, c

    text = forward_problem(check(Doubled, "LSTMCell").report)
    assert "none of the" in text and "common mistakes tried" in text


def test_a_cells_state_dict_is_checked_for_its_layout_and_count_only():
    report = check(PerGateLSTMCell(128, 100).state_dict(), "LSTMCell").report
    assert report.ok and "Forward" not in [row.row for row in report.rows]
    assert any("your forward was not run" in note for note in report.notes)
    auto = check(PerGateLSTMCell(8, 6).state_dict()).report  # a cell's weights alone, on auto
    assert auto.model == "LSTMCell"
    assert "GRUCell" in CHOICES and "LSTMCell" in CHOICES


def test_a_class_that_is_not_a_cell_is_refused_with_a_message():
    from hw3core.check.student import StudentFileError

    with pytest.raises(StudentFileError, match="checked as a cell only"):
        check(StudentAlexNet, "AlexNet")


# ----- the check leaves the model as it found it -----


@pytest.mark.parametrize("make", [lambda: _mistaken("numpy")(5, 4), lambda: StudentAlexNet(),
                                  lambda: StarterSentimentClassification(30, 6, PerGateLSTMCell, 5)])
def test_the_check_leaves_weights_gradients_mode_and_random_state_as_it_found_them(make):
    torch.manual_seed(0)
    model = make()
    model.train()
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    random.seed(3)
    torch.manual_seed(3)
    expected_torch, expected_python = torch.rand(3), random.random()
    random.seed(3)
    torch.manual_seed(3)
    check(model, "LSTMCell" if isinstance(model, PerGateLSTMCell) else "auto")
    assert torch.equal(torch.rand(3), expected_torch) and random.random() == expected_python
    assert all(m.training for m in model.modules())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(torch.equal(p.grad, torch.full_like(p, 0.5)) for p in model.parameters())


# ----- AlexNets -----


class ModuleMistakes(StudentAlexNet):
    def __init__(self, mistake):
        super().__init__(pool=(lambda kernel_size, stride: nn.MaxPool2d(2, 2)) if mistake == "pool modules" else
                         nn.MaxPool2d)
        self.mistake = mistake
        if mistake == "no relu 17":
            self.classifier[2] = nn.Identity()
        if mistake == "no padding":
            self.features[3].padding = (0, 0)

    def forward(self, x):
        x = self.features(x)
        x = x.permute(0, 2, 3, 1).flatten(1) if self.mistake == "flatten" else nn.Flatten()(x)
        x = self.classifier(x)
        return {"softmax": torch.softmax, "log softmax": torch.log_softmax}.get(self.mistake, lambda x, _: x)(x, 1)


class FunctionMistakes(FunctionalAlexNet):
    def __init__(self, mistake):
        super().__init__()
        self.mistake = mistake

    def forward(self, x):
        pool = F.avg_pool2d if self.mistake == "average" else F.max_pool2d
        relu2 = (lambda t: t) if self.mistake == "no relu 2" else F.relu
        x = pool(relu2(self.conv1(x)), 2 if self.mistake == "pool 2" else 3, 2)
        x = pool(F.relu(self.conv2(x)), 3, 2)
        x = pool(F.relu(self.conv5(F.relu(self.conv4(F.relu(self.conv3(x)))))), 3, 2)
        training = True if self.mistake == "dropout on" else self.training
        x = F.relu(self.fc1(F.dropout(torch.flatten(x, 1), 0.5, training)))
        second = True if self.mistake == "second dropout on" else self.training
        logits = self.fc3(F.relu(self.fc2(F.dropout(x, 0.5, second))))
        return (logits,) if self.mistake == "tuple" else logits


@pytest.mark.parametrize(("model", "named"), [
    (lambda: ModuleMistakes("no relu 17"), "between Linear-16 and Linear-19: yours has no ReLU-17"),
    (lambda: FunctionMistakes("no relu 2"), "between Conv2d-1 and Conv2d-4: yours has no ReLU-2"),
    (lambda: ModuleMistakes("softmax"), "ends in softmax"),
    (lambda: ModuleMistakes("log softmax"), "ends in log-softmax"),
    (lambda: ModuleMistakes("flatten"), "Flatten-14 flattens the (256, 6, 6) map in another order"),
    (lambda: ModuleMistakes("pool modules"), "MaxPool2d-3: kernel 2; the table's is 3."),
    (lambda: FunctionMistakes("pool 2"), "MaxPool2d-3 pools with kernel 2 and stride 2"),
    (lambda: FunctionMistakes("dropout on"), "dropout stays on (Dropout-15, before Linear-16)"),
    (lambda: FunctionMistakes("second dropout on"), "dropout stays on (Dropout-18, before Linear-19)"),
    (lambda: FunctionMistakes("tuple"), "Forward: returns a tuple"),
    (lambda: ModuleMistakes("no padding"), "Conv2d-4: padding 0; the table's is 2."),
])
def test_each_alexnet_mistake_is_named_by_its_row_and_cause(model, named):
    torch.manual_seed(0)
    checked = check(model())
    assert not checked.report.ok and checked.model is None
    assert named in " ".join(checked.report.problems)


def test_a_missing_padding_is_named_in_the_shape_error():
    problems = " ".join(check(ModuleMistakes("no padding")).report.problems)
    assert "mat1 and mat2" in problems and "256 × 5 × 5" in problems and "a padding left out" in problems


@pytest.mark.parametrize("model", [lambda: StudentAlexNet(), lambda: FunctionalAlexNet(),
                                   lambda: ModuleMistakes("none")])  # nn.Flatten and ReLU(inplace=True)
def test_right_alexnets_pass_their_forward(model):
    torch.manual_seed(0)
    checked = check(model())
    assert checked.report.ok, checked.report.problems
    assert any(row.row == "Forward" and row.ok for row in checked.report.rows)


def test_average_pooling_in_forward_is_read_as_alexnet_avg_pooling():
    torch.manual_seed(0)
    checked = check(FunctionMistakes("average"))
    assert checked.report.ok and checked.report.model == "AlexNetAvgPooling"
    assert any("your forward settles it" in note for note in checked.report.notes)


# ----- text models -----


def _trained_classifier(cell: type) -> tuple[nn.Module, list[str]]:
    """A small classifier fitted to the check's own reviews, as a trained student model would read them."""
    from hw3core.check.starter import starter_encode
    from hw3core.text import pad_reviews

    torch.manual_seed(0)
    vocabulary = starter_vocabulary([text for text, _ in REVIEWS])
    model = StarterSentimentClassification(len(vocabulary), 8, cell, 6)
    ids = {word: i for i, word in enumerate(vocabulary)}
    batch, lengths = pad_reviews([starter_encode(text, ids) for text, _ in REVIEWS])
    labels = torch.tensor([label for _, label in REVIEWS])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        optimizer.zero_grad()
        F.cross_entropy(model(batch, lengths), labels).backward()
        optimizer.step()
    return model.eval(), vocabulary


def test_an_lstm_classifier_over_x_h_runs_as_its_own_forward_and_its_file_is_read_from_reviews(tmp_path):
    model, vocabulary = _trained_classifier(XFirstLSTMCell)
    checked = check(model)
    assert checked.report.ok and checked.report.reading == "gates over [x, h]"
    path = tmp_path / "x_first.pt"
    torch.save({"model": model.state_dict(), "vocabulary": vocabulary}, path)
    from_file = check(path)
    assert from_file.report.reading == "gates over [x, h]" and from_file.model is not None
    assert any("reviews written for this check" in note for note in from_file.report.notes)
    review = REVIEWS[0][0]
    from student_models import starter_ids

    ids = torch.tensor([starter_ids(review, vocabulary)])
    with torch.no_grad():
        theirs = torch.softmax(model(ids, torch.tensor([ids.shape[1]])), -1)[0]
    torch.testing.assert_close(from_file.model.predict([review])[0], theirs, rtol=0, atol=1e-5)


def test_a_classifier_that_reads_the_padding_is_named():
    class ReadsPadding(StarterSentimentClassification):
        def forward(self, batch_reviews, batch_lengths):
            return super().forward(batch_reviews, torch.full_like(batch_lengths, batch_reviews.shape[1]))

    report = check(ReadsPadding(30, 6, StarterGRUCell, 5)).report
    assert "reads the state after the padding" in forward_problem(report)


def test_a_text_model_that_cuts_the_graph_is_named():
    class Detached(StarterSentenceGeneration):
        def forward(self, history: Tensor) -> Tensor:
            self.embedding.weight.requires_grad_(True)
            return super().forward(history).detach() + 0 * self.classifier.bias

    report = check(Detached(20, 6, StarterGRUCell, 5)).report
    assert "Gradients (the model): do not reach" in " ".join(report.problems)
    assert "embedding.weight" in " ".join(report.problems)


def test_a_writer_with_a_broken_cell_names_the_cells_mistake():
    report = check(StarterSentenceGeneration(20, 6, _mistaken("no tanh"), 5)).report
    assert "LSTMCell forward" in " ".join(report.problems) and "without the tanh" in " ".join(report.problems)


# ----- for TAs: many files, one CSV -----


def test_many_files_give_a_row_each_and_each_problems_count(tmp_path):
    folder = tmp_path / "submissions"
    (folder / "alice").mkdir(parents=True)
    (folder / "bob").mkdir()
    good = StarterSentimentClassification(30, 6, StarterGRUCell, 5).state_dict()
    wrong = StarterSentimentClassification(30, 6, StarterGRUCell, 5)
    wrong.classifier = nn.Linear(5, 3)
    torch.save(good, folder / "alice" / "best_model.pt")
    torch.save(wrong.state_dict(), folder / "bob" / "best_model.pt")
    (folder / "bob" / "broken.pt").write_bytes(b"not a model")
    run = subprocess.run([sys.executable, "-m", "hw3core.check", str(folder), "--csv", str(tmp_path / "r.csv")],
                         capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert run.returncode == 1, run.stderr
    rows = list(csv.reader((tmp_path / "r.csv").open(encoding="utf-8")))
    assert rows[0] == ["file", "model", "cell", "ok", "problems"]
    by_file = {Path(row[0]).relative_to(folder).as_posix(): row for row in rows[1:4]}
    assert by_file["alice/best_model.pt"][3] == "True" and by_file["bob/best_model.pt"][3] == "False"
    assert "not a PyTorch checkpoint" in by_file["bob/broken.pt"][4]
    assert rows[4] == [] and rows[5] == ["problem", "files"] and len(rows) == 8
    assert "1 of 3 files match the assignment" in run.stdout


@pytest.mark.parametrize(("end", "named"), [(torch.relu, "ends in a ReLU"), (F.log_softmax, "ends in log-softmax")])
def test_a_text_model_that_changes_its_logits_is_named(end, named):
    class Ends(StarterSentimentClassification):
        def forward(self, batch_reviews, batch_lengths):
            logits = super().forward(batch_reviews, batch_lengths)
            return end(logits, -1) if end is F.log_softmax else end(logits)

    assert named in forward_problem(check(Ends(30, 6, StarterGRUCell, 5)).report)


def test_a_classifier_that_reads_the_first_state_is_named():
    class ReadsFirst(StarterSentimentClassification):
        def forward(self, batch_reviews, batch_lengths):
            return super().forward(batch_reviews, torch.ones_like(batch_lengths))

    assert "after the first token" in forward_problem(check(ReadsFirst(30, 6, PerGateLSTMCell, 5)).report)
