"""Inside the AlexNets: where each variant looked (Grad-CAM, every domain at once) and its first layer."""

from collections.abc import Callable

import gradio as gr
import numpy as np
import torch
from PIL import Image
from torch import nn

from demos.errors import shown_to_user
from demos.model_store import CONCURRENCY_ID, ModelStore
from hw3core import DOMAINS
from hw3core.alexnet import IMAGE_SIZE, decode_image, normalize_pixels
from hw3core.explain import grad_cam, kernel_grid, last_conv_index, layer_table

# One colour per domain (in DOMAINS order), the same in every variant's map; the legend names them.
DOMAIN_COLOURS = {domain.replace("_", " "): colour
                  for domain, colour in zip(DOMAINS, ("#e6194b", "#f58231", "#3cb44b", "#4363d8"), strict=True)}
# A map's strongest point is this opaque, so the image still shows through where all four overlap.
MAP_OPACITY = 0.7
# Kernels are drawn about this many pixels wide: 11x11 kernels at 4x, 21x21 at 2x.
KERNEL_PIXELS = 44
# The layer tables share a third of the page each: tighter cells, and shapes and counts kept on one line.
TABLE_CSS = """
.inside-layers th, .inside-layers td { padding: 3px 6px !important; font-size: var(--text-sm); }
.inside-layers td:not(:first-child) { white-space: nowrap; overflow-wrap: normal; }
"""
HOW_TO_READ = """\
**Where each AlexNet looked** (Grad-CAM): for each domain, the last convolutional layer's channels are weighted
by how much raising them would raise that domain's score, and summed; what remains after a ReLU is drawn over the
image in that domain's colour, each map scaled to its own peak. Hover a domain in a map's legend to see it alone.
The networks see the image squashed to 227×227, as here.

How to read them: a domain is a matter of *style* (brush strokes, flat colours, pencil lines, photographic
texture), which is everywhere in an image, so the maps are often diffuse; a tight spot means the variant decided
on a few regions. A domain with no colour anywhere: nothing in the last layer spoke for it. The grids are coarse
and not the same: AlexNet and AlexNetAvgPooling end their convolutions on a **13×13** grid, AlexNetLargeKernel
(strides in place of pooling) on **6×6**, so its maps are blockier by construction, not by choice.
"""


def cam_view(model: nn.Module, image: Image.Image) -> tuple[np.ndarray, list[tuple[np.ndarray, str]]]:
    """(the 227x227 image the network saw, one (map, domain) per domain) for gr.AnnotatedImage."""
    pixels = decode_image(image)  # (3, 227, 227) uint8
    cam = grad_cam(model, normalize_pixels(pixels)[None])
    maps = nn.functional.interpolate(cam.maps, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear")[0]  # (4, 227, 227)
    peaks = maps.amax(dim=(1, 2), keepdim=True)
    maps = torch.where(peaks > 0, maps / peaks.clamp_min(1e-12), 0.0) * MAP_OPACITY
    return pixels.permute(1, 2, 0).numpy(), [(m.numpy(), label) for m, label in zip(maps, DOMAIN_COLOURS, strict=True)]


def kernel_image(model: nn.Module) -> np.ndarray:
    """The first convolution's kernels, each scaled symmetrically around zero (grey), enlarged."""
    conv1 = next(layer for layer in model.children() if isinstance(layer, nn.Conv2d))
    grid = kernel_grid(conv1.weight.detach().float().cpu())
    scale = max(1, round(KERNEL_PIXELS / conv1.kernel_size[0]))
    return np.asarray(Image.fromarray(grid.numpy()).resize((grid.shape[1] * scale, grid.shape[0] * scale),
                                                           Image.Resampling.NEAREST))


def describe(layer: nn.Module) -> str:
    """A layer in the assignment's table's terms: 'conv 11×11, 96, stride 4', 'max pool 3×3, stride 2'."""
    if isinstance(layer, nn.Conv2d):
        (k, _), (s, _), (p, _) = layer.kernel_size, layer.stride, layer.padding
        return f"conv {k}×{k}, {layer.out_channels}, stride {s}" + (f", pad {p}" if p else "")
    if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
        kind = "max" if isinstance(layer, nn.MaxPool2d) else "average"
        return f"{kind} pool {layer.kernel_size}×{layer.kernel_size}, stride {layer.stride}"
    if isinstance(layer, nn.Linear):
        return f"linear {layer.in_features:,} → {layer.out_features:,}"
    if isinstance(layer, nn.Dropout):
        return f"dropout {layer.p}"
    return type(layer).__name__


def architecture(model: nn.Module, title: str) -> str:
    """A Markdown table: each layer, its output shape for one 227×227 image and its parameters."""
    rows = layer_table(model)
    cam_layer = rows[last_conv_index(model) - 1].name
    lines = [f"**{title}**: {sum(r.parameters for r in rows):,} parameters; Grad-CAM reads `{cam_layer}`", "",
             "| layer | output | weights |", "|---|---|---:|"]
    for row in rows:
        shape = "×".join(str(size) for size in row.output_shape)
        lines.append(f"| `{row.name}` {describe(row.layer)} | {shape} | {row.parameters:,} |")
    return "\n".join(lines)


def build_inside_views(models: ModelStore, variants: dict[str, str], image: gr.Image,
                       read_image: Callable[[object], Image.Image]) -> None:
    """The views, under the tab's image input. ``variants``: checkpoint -> title, in the API's order;
    ``read_image``: the tab's way of turning the image input's value into an RGB image (or InvalidInput)."""

    @shown_to_user
    def explain_domain(upload):
        picture = read_image(upload)
        models.require(variants)
        return tuple(cam_view(models.get(name), picture) for name in variants)

    @shown_to_user
    def first_layers():
        loaded = [models.get(name) for name in variants]
        return (*[kernel_image(model) for model in loaded],
                *[architecture(model, title) for model, title in zip(loaded, variants.values(), strict=True)])

    with gr.Accordion("Inside the models", open=False):
        with gr.Column(elem_classes="inside-gradcam"):  # the browser test's screenshot of this view
            gr.Markdown(HOW_TO_READ)
            explain = gr.Button("Where did each AlexNet look?")
            with gr.Row():
                maps = [gr.AnnotatedImage(label=f"{title}: where it looked, per domain", color_map=DOMAIN_COLOURS,
                                          height=300, min_width=220) for title in variants.values()]
        with gr.Column(elem_classes="inside-layers"):
            gr.HTML(f"<style>{TABLE_CSS}</style>")
            gr.Markdown("**The first layer.** Each conv1 kernel as a small RGB image, scaled around zero: grey is 0, "
                        "a bright channel a positive weight, a dark one a negative weight. AlexNet and "
                        "AlexNetAvgPooling learn 11×11 kernels, AlexNetLargeKernel 21×21. Below each: the layers, "
                        "with the shape of what each one hands on for one 227×227 image "
                        "(channels × height × width).")
            show_layers = gr.Button("Show the first layers and the architectures")
            with gr.Row(equal_height=False):
                kernels, tables = [], []
                for title in variants.values():
                    with gr.Column(min_width=220):
                        kernels.append(gr.Image(label=f"{title}: conv1 kernels", interactive=False, format="png",
                                                height=300))
                        tables.append(gr.Markdown(label=f"{title} layers"))
    explain.click(explain_domain, inputs=image, outputs=maps, api_name="explain_domain", preprocess=False,
                  concurrency_id=CONCURRENCY_ID)
    show_layers.click(first_layers, outputs=kernels + tables, api_name="first_layers", concurrency_id=CONCURRENCY_ID)
