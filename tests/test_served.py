"""The shipped compressed AlexNets as the app and training.evaluate serve them (pruned Linear layers in
CSR) against the dense decode of the same files: the answers, the gradients and every inside view."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from demos.examples import example_images
from demos.inside_domain import architecture, cam_view, kernel_image
from hw3core import ALEXNET_VARIANTS
from hw3core.alexnet import preprocess_image
from hw3core.checkpoints import load_local
from hw3core.compression import COMPRESSED_FILE, load_compressed
from hw3core.explain import grad_cam, layer_table
from hw3core.sparse_linear import SparseLinear

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


@pytest.fixture(scope="module", params=list(ALEXNET_VARIANTS))
def served_and_dense(request):
    name, cls = request.param, ALEXNET_VARIANTS[request.param]
    served = load_local(cls, CHECKPOINTS / name)
    dense = cls()
    dense.load_state_dict(load_compressed(CHECKPOINTS / name / COMPRESSED_FILE), strict=True)
    return served, dense.eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.stack([preprocess_image(Image.open(path).convert("RGB")) for path in example_images()])  # (4, 3, 227, 227)


def test_the_large_linear_layers_are_served_sparse(served_and_dense):
    served, _ = served_and_dense
    linear = [name for name, layer in served.named_children() if isinstance(layer, torch.nn.Linear)]
    sparse = [name for name in linear if isinstance(served.get_submodule(name), SparseLinear)]
    assert sparse == linear[:2]  # 5% kept; the last layer (4 x 4096, all kept) stays dense
    kept = sum(served.get_submodule(name).weight.values().numel() for name in sparse)
    assert kept < 0.06 * sum(served.get_submodule(name).weight.numel() for name in sparse)


def test_probabilities_equal_the_dense_decodes(served_and_dense, images):
    served, dense = served_and_dense
    with torch.no_grad():
        torch.testing.assert_close(served(images).softmax(-1), dense(images).softmax(-1), rtol=0, atol=1e-5)


def test_grad_cam_maps_equal_the_dense_decodes_relative_to_their_peak(served_and_dense, images):
    served, dense = served_and_dense
    ours, reference = grad_cam(served, images), grad_cam(dense, images)
    peaks = reference.maps.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12)  # (N, C, 1, 1)
    assert (ours.maps - reference.maps).abs().div(peaks).max() < 1e-4
    torch.testing.assert_close(ours.probabilities, reference.probabilities, rtol=0, atol=1e-5)


def test_the_gradient_through_the_sparse_layers_reaches_the_input(served_and_dense, images):
    served, dense = served_and_dense
    inputs = [images[:2].clone().requires_grad_() for _ in range(2)]
    for model, x in zip((served, dense), inputs, strict=True):
        model(x)[:, 0].sum().backward()
    scale = inputs[1].grad.abs().max()
    assert (inputs[0].grad - inputs[1].grad).abs().max() < 1e-4 * scale


def test_the_inside_views_read_the_served_model_as_the_dense_one(served_and_dense):
    served, dense = served_and_dense
    picture = Image.open(example_images()[0]).convert("RGB")
    (pixels, maps), (dense_pixels, dense_maps) = cam_view(served, picture), cam_view(dense, picture)
    assert (pixels == dense_pixels).all()
    for (ours, label), (reference, dense_label) in zip(maps, dense_maps, strict=True):
        assert label == dense_label and abs(ours - reference).max() < 1e-4
    assert (kernel_image(served) == kernel_image(dense)).all()
    assert architecture(served, "AlexNet") == architecture(dense, "AlexNet")
    assert [row.parameters for row in layer_table(served)] == [row.parameters for row in layer_table(dense)]


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc")
def test_a_served_model_keeps_no_mapping_of_its_file():
    """Nothing of the file is held once the model is built: its mapping would stay resident (6 MB a model)."""
    model = load_local(ALEXNET_VARIANTS["alexnet"], CHECKPOINTS / "alexnet")
    with open("/proc/self/maps") as maps:
        assert not [line for line in maps if line.rstrip().endswith(COMPRESSED_FILE)]
    assert model(torch.zeros(1, 3, 227, 227)).shape == (1, 4)
