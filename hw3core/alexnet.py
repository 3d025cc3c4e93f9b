"""Part A and B: AlexNet and its two variants, each declared as a table of layers.

A variant is a list of feature layers in the assignment's notation; one builder turns it
into a flat ``nn.Sequential`` whose module names carry the table's row numbers, so
``print(model)`` reads like the table (``conv1``, ``relu2``, ``maxpool3``, ...).
"""

from collections import OrderedDict
from typing import NamedTuple

import numpy as np
import torch
from huggingface_hub import PyTorchModelHubMixin
from PIL import Image
from torch import nn
from torch.nn import functional as F

DOMAINS = ("art_painting", "cartoon", "photo", "sketch")
# Per-channel statistics of PACS, from the assignment's starter code.
PACS_MEAN = (0.7659, 0.7463, 0.7173)
PACS_STD = (0.3089, 0.3181, 0.3470)
IMAGE_SIZE = 227


def decode_image(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> (3, 227, 227) uint8 tensor: the decoding half, which a training run does once per image.

    What torchvision's ``v2.PILToTensor`` and ``v2.Resize(antialias=True)`` do, in the same calls into torch:
    the app leaves torchvision out because importing it brings in torch._dynamo, SymPy and Triton (165 MB
    resident on CPU), which it never uses. tests/test_alexnet.py checks the pixels against torchvision's."""
    pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1)
    if pixels.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE):
        return pixels
    return F.interpolate(pixels[None], size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False,
                         antialias=True)[0]


def normalize_pixels(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 image tensor(s) (..., 3, H, W) -> the normalised float tensor the networks read."""
    mean = torch.tensor(PACS_MEAN).view(-1, 1, 1)
    std = torch.tensor(PACS_STD).view(-1, 1, 1)
    return pixels.to(torch.float32).mul_(1 / 255).sub_(mean).div_(std)


def preprocess_image(image: Image.Image) -> torch.Tensor:
    """PIL image -> normalised (3, 227, 227) float tensor: the same for training, evaluation and the app."""
    return normalize_pixels(decode_image(image))


class Conv(NamedTuple):
    out_channels: int
    kernel: int
    padding: int = 0
    stride: int = 1


class Pool(NamedTuple):
    kind: type[nn.Module]  # nn.MaxPool2d or nn.AvgPool2d
    kernel: int = 3
    stride: int = 2


# The feature extractors, row for row as in the assignment's tables (every Conv is followed by a ReLU).
ALEXNET_FEATURES = [
    Conv(96, 11, stride=4), Pool(nn.MaxPool2d),
    Conv(256, 5, padding=2), Pool(nn.MaxPool2d),
    Conv(384, 3, padding=1),
    Conv(384, 3, padding=1),
    Conv(256, 3, padding=1), Pool(nn.MaxPool2d),
]
LARGE_KERNEL_FEATURES = [
    Conv(96, 21, padding=1, stride=8),
    Conv(256, 7, padding=2, stride=2),
    Conv(384, 3, padding=1),
    Conv(384, 3, padding=1),
    Conv(256, 3, stride=2),
]
AVG_POOLING_FEATURES = [
    Pool(nn.AvgPool2d) if isinstance(layer, Pool) else layer for layer in ALEXNET_FEATURES
]


def make_layers(features: list, num_classes: int, dropout: float) -> OrderedDict:
    layers: list[nn.Module] = []
    in_channels = 3
    for spec in features:
        if isinstance(spec, Conv):
            layers.append(nn.Conv2d(in_channels, spec.out_channels, spec.kernel, spec.stride, spec.padding))
            layers.append(nn.ReLU(inplace=True))
            in_channels = spec.out_channels
        else:
            layers.append(spec.kind(kernel_size=spec.kernel, stride=spec.stride))
    layers += [
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(in_channels * 6 * 6, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(4096, 4096),
        nn.ReLU(inplace=True),
        nn.Linear(4096, num_classes),
    ]
    return OrderedDict((f"{_short_name(layer)}{row}", layer) for row, layer in enumerate(layers, 1))


def init_weights(model: nn.Sequential) -> None:
    """He initialisation (He et al., 2015) for every layer a ReLU follows; the last layer from N(0, 0.01²).

    PyTorch's default initialisation shrinks the signal's variance about sixfold at each ReLU layer, so an
    AlexNet without normalisation starts with near-zero activations and spends its first steps growing
    them: within the 3 to 5 epochs the assignment allows, that start is part of what it lacks.
    """
    layers = [layer for layer in model if isinstance(layer, (nn.Conv2d, nn.Linear))]
    for layer in layers:
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        nn.init.zeros_(layer.bias)
    nn.init.normal_(layers[-1].weight, std=0.01)


def _short_name(layer: nn.Module) -> str:
    return type(layer).__name__.lower().replace("2d", "")  # conv, maxpool, avgpool, relu, linear, ...


class AlexNet(
    nn.Sequential,
    PyTorchModelHubMixin,
    library_name="hw3core",
    tags=["image-classification", "pacs", "alexnet"],
    pipeline_tag="image-classification",
):
    """AlexNet for 227x227 RGB input (Krizhevsky et al., 2012), as in the Part A table."""

    features = ALEXNET_FEATURES

    def __init__(self, num_classes: int = 4, dropout: float = 0.5):
        super().__init__(make_layers(self.features, num_classes, dropout))
        self.num_classes = num_classes
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, 227, 227) -> (N, num_classes)
        return super().forward(x)


class AlexNetLargeKernel(AlexNet):
    """Part B: larger kernels and strides replace the max-pooling layers."""

    features = LARGE_KERNEL_FEATURES


class AlexNetAvgPooling(AlexNet):
    """Part B: average pooling in place of max pooling."""

    features = AVG_POOLING_FEATURES

