"""Parts A and B: each AlexNet variant against its table in the assignment, row by row."""

import platform
import re

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import assert_numerically_close
from hw3core import ALEXNET_VARIANTS, AlexNet, AlexNetAvgPooling, AlexNetLargeKernel
from hw3core.alexnet import IMAGE_SIZE, PACS_MEAN, PACS_STD, decode_image, normalize_pixels, preprocess_image
from hw3core.check.tables import TABLES as ASSIGNMENT_TABLES

# (layer type, output shape without the batch dimension, number of parameters): the assignment's tables, kept
# once in hw3core.check.tables (the check of a student's model reads the same rows).
ALEXNET_TABLE, LARGE_KERNEL_TABLE, AVG_POOLING_TABLE = (
    [(row.type, row.output_shape, row.parameters) for row in ASSIGNMENT_TABLES[name]]
    for name in ("AlexNet", "AlexNetLargeKernel", "AlexNetAvgPooling"))

TABLES = {AlexNet: ALEXNET_TABLE, AlexNetLargeKernel: LARGE_KERNEL_TABLE, AlexNetAvgPooling: AVG_POOLING_TABLE}
# The module names print(model) should show: the table's layer, lower-cased, then its row number.
SHORT_NAMES = {
    "Conv2d": "conv",
    "ReLU": "relu",
    "MaxPool2d": "maxpool",
    "AvgPool2d": "avgpool",
    "Flatten": "flatten",
    "Dropout": "dropout",
    "Linear": "linear",
}
VARIANTS = pytest.mark.parametrize("cls", list(ALEXNET_VARIANTS.values()), ids=list(ALEXNET_VARIANTS))


def table_total(table) -> int:
    return sum(params for _, _, params in table)


def test_registry_holds_the_three_variants():
    assert set(ALEXNET_VARIANTS.values()) == set(TABLES)


def test_tables_are_transcribed_consistently():
    assert table_total(ALEXNET_TABLE) == 58_297_732  # the total the assignment states for Part A
    assert table_total(AVG_POOLING_TABLE) == 58_297_732  # pooling has no parameters
    assert table_total(LARGE_KERNEL_TABLE) == 58_979_716


@pytest.fixture(scope="module")
def models():
    """One default instance per variant, built once: they are large."""
    torch.manual_seed(0)
    return {cls: cls().eval() for cls in TABLES}


@pytest.fixture(scope="module")
def seven_class_models():
    torch.manual_seed(1)
    return {cls: cls(num_classes=7, dropout=0.25).eval() for cls in TABLES}


@VARIANTS
def test_layers_match_the_table_row_by_row(cls, models):
    model = models[cls]
    table = TABLES[cls]
    layers = list(model.children())
    assert len(layers) == len(table)
    x = torch.randn(2, 3, 227, 227)
    with torch.no_grad():
        for row, (layer, (type_name, shape, params)) in enumerate(zip(layers, table, strict=True), 1):
            x = layer(x)
            assert type(layer).__name__ == type_name, f"row {row}"
            assert tuple(x.shape) == (2, *shape), f"row {row} ({type_name})"
            assert sum(p.numel() for p in layer.parameters()) == params, f"row {row} ({type_name})"
    assert sum(p.numel() for p in model.parameters()) == table_total(table)


@VARIANTS
def test_the_features_end_on_the_grid_the_classifier_reads(cls, models):
    """Every table must bring a 227x227 image down to 256 maps of 6x6, the input of the first linear layer."""
    model = models[cls]
    first_linear = next(i for i, layer in enumerate(model.children()) if isinstance(layer, nn.Linear))
    features = nn.Sequential(*list(model.children())[:first_linear])
    with torch.no_grad():
        assert features(torch.randn(1, 3, 227, 227)).shape == (1, 256 * 6 * 6) == (1, model[first_linear].in_features)


@VARIANTS
def test_module_names_follow_the_table(cls, models):
    expected = [f"{SHORT_NAMES[type_name]}{row}" for row, (type_name, _, _) in enumerate(TABLES[cls], 1)]
    assert [name for name, _ in models[cls].named_children()] == expected
    printed = str(models[cls])
    position = 0
    for name in expected:
        match = re.compile(rf"\({name}\): ").search(printed, position)
        assert match, f"{name} missing (or out of order) in print(model)"
        position = match.end()


@VARIANTS
def test_default_is_four_classes_and_num_classes_is_honoured(cls, models, seven_class_models):
    assert models[cls].num_classes == 4
    assert list(models[cls].children())[-1].out_features == 4
    model = seven_class_models[cls]
    assert model.num_classes == 7
    last = list(model.children())[-1]
    assert last.out_features == 7
    with torch.no_grad():
        assert model(torch.randn(2, 3, 227, 227)).shape == (2, 7)


@VARIANTS
def test_save_and_load_round_trip(cls, seven_class_models, tmp_path):
    model = seven_class_models[cls]
    model.save_pretrained(tmp_path)
    loaded = cls.from_pretrained(tmp_path, strict=True)
    assert type(loaded) is cls
    assert loaded.num_classes == 7
    assert all(m.p == 0.25 for m in loaded.modules() if isinstance(m, torch.nn.Dropout))
    assert not loaded.training  # the mixin returns the model in eval mode
    x = torch.randn(2, 3, 227, 227)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        assert_numerically_close(loaded(x), model(x))


@VARIANTS
def test_a_fresh_model_keeps_the_signal_alive_to_its_last_hidden_layer(cls, models):
    """He initialisation: unit-variance input still reaches the classifier at its scale. PyTorch's default would
    shrink it about sixfold in variance at every ReLU layer, to a few thousandths by the last hidden one."""
    model = models[cls]
    with torch.no_grad():
        hidden = torch.randn(4, 3, 227, 227)
        for layer in list(model.children())[:-1]:
            hidden = layer(hidden)
    assert 0.1 < hidden.pow(2).mean().sqrt() < 10


@pytest.mark.parametrize("size", [(640, 480), (31, 300), (227, 227), (100, 100)])
def test_the_preprocessing_is_torchvisions_resize_and_normalisation(size):
    """The networks were trained, and students train theirs, on torchvision's transforms; the app computes the
    same pixels without importing torchvision. torch resizes uint8 natively where torchvision lets it (x86 with
    AVX2, ARM); elsewhere torchvision rounds a float resize, which can differ by one level."""
    v2 = pytest.importorskip("torchvision.transforms.v2")
    image = Image.fromarray(np.random.default_rng(sum(size)).integers(0, 256, (*size[::-1], 3), dtype=np.uint8))
    reference = v2.Compose([v2.PILToTensor(), v2.Resize((IMAGE_SIZE, IMAGE_SIZE), antialias=True)])(image)
    pixels = decode_image(image)
    assert pixels.dtype == torch.uint8 and pixels.shape == (3, IMAGE_SIZE, IMAGE_SIZE)
    native = torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512") or platform.machine() in ("aarch64",
                                                                                                      "arm64")
    assert (pixels.int() - reference.int()).abs().max() <= (0 if native else 1)
    normalize = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(PACS_MEAN, PACS_STD)])
    assert torch.equal(normalize_pixels(pixels), normalize(pixels))
    assert torch.equal(preprocess_image(image), normalize_pixels(pixels))

