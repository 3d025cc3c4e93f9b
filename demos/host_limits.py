"""Limits a host sets from the environment, so that a larger Space can hold more students' models or serve more
requests at once. Each has today's value as its default (declared beside the code it bounds: demos.uploads, app);
a value that is not a whole number of at least 1 stops the app at start-up with a message naming it.
docs/limits.md lists them."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace


class HostLimitError(ValueError):
    """The message names the variable, the value refused and what it must be."""


@dataclass(frozen=True)
class HostLimits:
    max_alexnets: int  # uploaded AlexNets held at a time, all sessions together
    max_text_models: int  # uploaded text models held at a time
    concurrency: int  # model requests at a time, all endpoints together
    queue_size: int  # requests waiting behind them


VARIABLES = {
    "max_alexnets": "HW3_MAX_ALEXNETS",
    "max_text_models": "HW3_MAX_TEXT_MODELS",
    "concurrency": "HW3_CONCURRENCY_LIMIT",
    "queue_size": "HW3_QUEUE_SIZE",
}


def read_host_limits(defaults: HostLimits, environ: Mapping[str, str] | None = None) -> HostLimits:
    """``defaults`` with each limit whose variable is set (and not blank) in ``environ`` (default: os.environ)
    replaced by its value; raises HostLimitError for a value that is not a whole number of at least 1."""
    environ = os.environ if environ is None else environ
    changed = {}
    for field in fields(HostLimits):
        variable = VARIABLES[field.name]
        raw = environ.get(variable, "").strip()
        if not raw:
            continue
        if not (raw.isascii() and raw.isdigit() and int(raw) >= 1):
            raise HostLimitError(f"{variable}={raw!r} is not a limit: give a whole number of at least 1 "
                                 f"(default {getattr(defaults, field.name)}), or unset it.")
        changed[field.name] = int(raw)
    return replace(defaults, **changed)
