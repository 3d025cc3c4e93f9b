"""Handing freed heap memory back to the system, where the C library allows it (glibc).

Decoding a compressed AlexNet, and each image's activations and gradients, make short-lived buffers of a
few to a few tens of MB. By default glibc serves buffers up to 32 MB from a heap it keeps after they are
freed, so a long-lived server's memory grows by what its largest requests once needed (~100 MB after one
Grad-CAM request for the three AlexNets, measured by tests/test_memory.py).
"""

import contextlib
import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
# Buffers from this size up get pages of their own, unmapped when freed: an activation map of AlexNet at batch 1
# is 1.1 MB or less, so its first layers' buffers stay on the heap, where reusing them costs no page faults.
OWN_PAGES_FROM = 1024 * 1024


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def return_freed_memory() -> None:
    """Asks the C library to give freed heap back to the system now; does nothing where it cannot."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        _libc().malloc_trim(0)


def release_large_buffers_when_freed() -> None:
    """From now on, buffers of OWN_PAGES_FROM bytes or more go back to the system as soon as they are freed."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        _libc().mallopt(M_MMAP_THRESHOLD, OWN_PAGES_FROM)
