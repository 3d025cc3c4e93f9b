"""Floating-point settings every entry point shares: training, evaluation, the benchmark and the app."""

import torch


def flush_denormals() -> bool:
    """Rounds denormal floats (below ~1e-38) to zero; returns whether this CPU supports it (x86 with SSE3).

    A loss on the last of 200 recurrent steps sends back a gradient that shrinks, step by step, into
    denormal range, where x86 processors compute tens of times slower: one forward and backward pass of
    the sentiment model at fresh weights takes ~10x longer without this. Values that small carry no
    signal a float32 model could use, so flushing them changes no result worth having."""
    return torch.set_flush_denormal(True)
