"""The assignment's tables, as data: the one copy that the check, the tests and the app read.

Each AlexNet table is the torchsummary listing of the assignment (Parts A and B) for one
(1, 3, 227, 227) image: the row's name (``Conv2d-1``: the layer's type and its position), its
kernel, padding and stride where the table gives them, the output shape without the batch, and
the parameter count. Part C's figures are ``count_parameters`` at input_size=128, hidden_size=100,
bias=True.
"""

from typing import NamedTuple


class Row(NamedTuple):
    name: str  # "Conv2d-1": the type, then the position in the table (1-based)
    kernel: int | None
    padding: int
    stride: int | None
    output_shape: tuple[int, ...]  # without the batch
    parameters: int

    @property
    def type(self) -> str:
        return self.name.rsplit("-", 1)[0]


def _rows(*rows: tuple) -> tuple[Row, ...]:
    """Rows written as (type, kernel, padding, stride, shape, parameters); the names are numbered here."""
    return tuple(Row(f"{kind}-{i}", kernel, padding, stride, tuple(shape), parameters)
                 for i, (kind, kernel, padding, stride, shape, parameters) in enumerate(rows, 1))


def _classifier(parameters_16: int = 37_752_832) -> list[tuple]:
    return [
        ("Flatten", None, 0, None, (9216,), 0),
        ("Dropout", None, 0, None, (9216,), 0),
        ("Linear", None, 0, None, (4096,), parameters_16),
        ("ReLU", None, 0, None, (4096,), 0),
        ("Dropout", None, 0, None, (4096,), 0),
        ("Linear", None, 0, None, (4096,), 16_781_312),
        ("ReLU", None, 0, None, (4096,), 0),
        ("Linear", None, 0, None, (4,), 16_388),
    ]


def _pooled(pool: str) -> tuple[Row, ...]:
    return _rows(
        ("Conv2d", 11, 0, 4, (96, 55, 55), 34_944),
        ("ReLU", None, 0, None, (96, 55, 55), 0),
        (pool, 3, 0, 2, (96, 27, 27), 0),
        ("Conv2d", 5, 2, 1, (256, 27, 27), 614_656),
        ("ReLU", None, 0, None, (256, 27, 27), 0),
        (pool, 3, 0, 2, (256, 13, 13), 0),
        ("Conv2d", 3, 1, 1, (384, 13, 13), 885_120),
        ("ReLU", None, 0, None, (384, 13, 13), 0),
        ("Conv2d", 3, 1, 1, (384, 13, 13), 1_327_488),
        ("ReLU", None, 0, None, (384, 13, 13), 0),
        ("Conv2d", 3, 1, 1, (256, 13, 13), 884_992),
        ("ReLU", None, 0, None, (256, 13, 13), 0),
        (pool, 3, 0, 2, (256, 6, 6), 0),
        *_classifier(),
    )


TABLES: dict[str, tuple[Row, ...]] = {
    "AlexNet": _pooled("MaxPool2d"),
    "AlexNetLargeKernel": _rows(
        ("Conv2d", 21, 1, 8, (96, 27, 27), 127_104),
        ("ReLU", None, 0, None, (96, 27, 27), 0),
        ("Conv2d", 7, 2, 2, (256, 13, 13), 1_204_480),
        ("ReLU", None, 0, None, (256, 13, 13), 0),
        ("Conv2d", 3, 1, 1, (384, 13, 13), 885_120),
        ("ReLU", None, 0, None, (384, 13, 13), 0),
        ("Conv2d", 3, 1, 1, (384, 13, 13), 1_327_488),
        ("ReLU", None, 0, None, (384, 13, 13), 0),
        ("Conv2d", 3, 0, 2, (256, 6, 6), 884_992),
        ("ReLU", None, 0, None, (256, 6, 6), 0),
        *_classifier(),
    ),
    "AlexNetAvgPooling": _pooled("AvgPool2d"),
}
# The totals the assignment's tables add up to.
TOTALS = {name: sum(row.parameters for row in rows) for name, rows in TABLES.items()}
# Part C: count_parameters() of each cell at input_size=128, hidden_size=100, bias=True.
CELL_SIZES = {"input_size": 128, "hidden_size": 100, "bias": True}
CELL_PARAMETERS = {"GRUCell": 68_700, "LSTMCell": 91_600}
CELL_GATES = {"GRUCell": 3, "LSTMCell": 4}
# PACS has 4 domains (the task) and 7 object categories (the other task it is known for).
PACS_CATEGORIES = 7


def weighted_rows(model: str) -> list[Row]:
    """The rows that have weights (Conv2d and Linear), in order: what a state dict can be compared with."""
    return [row for row in TABLES[model] if row.parameters]
