"""The training scripts' command line and the config it becomes.

Every script has the flags of ``common_arguments`` and its own; the flag that picks a model
(``--variant``, ``--cell``) picks its recipe in hw3core.registry, which is the parser's default for
every flag it sets, so ``--help`` prints what a run would use. A flag no recipe sets has the one
default its ``add_argument`` gives. ``TrainingConfig`` is what ``training.loop.fit`` reads of them;
the record shows the command and its flags with each data path replaced by the data set's name.
"""

import argparse
import dataclasses
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hw3core.checkpoints import is_valid_repo_id
from hw3core.registry import ModelSpec, models_of, spec_of


@dataclass
class TrainingConfig:
    """How ``fit`` trains a task: the flags every training script shares (``common_arguments``), typed."""

    out: Path  # the checkpoint folder
    # What a model's recipe sets (hw3core.registry): no default here, so that there is one place for each.
    epochs: int
    batch_size: int  # per process
    lr: float
    weight_decay: float
    schedule: str  # "constant" or "cosine"
    warmup: float
    # The flags no recipe sets: these defaults are the parser's (common_arguments).
    keep: str = "best"
    seed: int = 0
    resume: bool = False
    push_to_hub: str | None = None
    device: str | None = None
    workers: int = 0
    amp: bool = True
    command: str = ""  # the command line, as the record shows it
    arguments: dict = field(default_factory=dict)  # every flag of the run, as the record shows it

    @classmethod
    def from_arguments(cls, args: argparse.Namespace, command: str, arguments: dict) -> "TrainingConfig":
        names = {f.name for f in dataclasses.fields(cls)} - {"amp", "command", "arguments"}
        return cls(**{name: getattr(args, name) for name in names}, amp=not args.no_amp, command=command,
                   arguments=arguments)


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module's docstring as written, and after each flag's help its default (for a recipe's flag,
    the recipe's value); a flag without one (None, or off) says nothing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def script_parser(description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)


def common_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of every training script. Those every recipe sets (epochs to warmup) have no default here:
    the model's recipe is theirs. The others have the defaults of ``TrainingConfig``."""
    default = {f.name: f.default for f in dataclasses.fields(TrainingConfig)}
    parser.add_argument("--epochs", type=int, help="passes over the training data")
    parser.add_argument("--batch-size", type=int, help="per process")
    parser.add_argument("--lr", type=float, help="the peak learning rate of AdamW")
    parser.add_argument("--weight-decay", type=float, help="AdamW's decoupled weight decay")
    parser.add_argument("--schedule", choices=["constant", "cosine"],
                        help="the learning rate after warm-up: constant, or a cosine decay to zero at the last step")
    parser.add_argument("--warmup", type=float, metavar="FRACTION",
                        help="share of all steps over which the learning rate rises linearly from zero")
    parser.add_argument("--keep", choices=["best", "last"], default=default["keep"],
                        help="the weights saved: the epoch of lowest validation loss, or the last epoch")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="use only N examples (smoke runs)")
    parser.add_argument("--out", type=Path, default=None, help="the checkpoint folder (default: checkpoints/NAME)")
    parser.add_argument("--seed", type=int, default=default["seed"], help="of the split, the initial weights and the draws")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", default=None)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--workers", type=int, default=default["workers"],
                        help="data-loading processes (0: in the main one)")
    parser.add_argument("--no-amp", action="store_true", help="train in float32 on GPU too")


def _choice(task: str) -> tuple[str, str]:
    """The flag that picks one of ``task``'s models (``--cell``) and the attribute argparse gives it (``cell``)."""
    (flag,) = {spec.choice[0] for spec in models_of(task).values()}
    return flag, flag.lstrip("-").replace("-", "_")


def picked_model(parser: argparse.ArgumentParser, task: str, argv=None) -> ModelSpec:
    """The model the flags pick (the flag's default where they name none), read before the parser's other
    flags (and --help) so that their defaults can be its recipe."""
    flag, dest = _choice(task)
    picker = argparse.ArgumentParser(add_help=False, allow_abbrev=parser.allow_abbrev, exit_on_error=False)
    picker.add_argument(flag, dest="cell", choices=[spec.cell for spec in models_of(task).values()],
                        default=parser.get_default(dest))
    try:
        picked, _ = picker.parse_known_args(argv)
    except argparse.ArgumentError as error:
        parser.error(str(error))  # with the script's own usage
    return spec_of(task, picked.cell)


def parse_arguments(parser: argparse.ArgumentParser, task: str, argv=None) -> argparse.Namespace:
    """The flags of a ``task``'s script, with the defaults of the model they pick taken from its recipe: the
    command a user is told, with no other flags, trains the model that ships."""
    parser.set_defaults(**picked_model(parser, task, argv).recipe)
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = Path("checkpoints") / spec_of(task, getattr(args, _choice(task)[1])).name
    check_arguments(parser, args)
    return args


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuses bad flags before any data is read."""
    if args.epochs < 1 or args.batch_size < 1 or args.lr <= 0 or (args.limit is not None and args.limit < 1):
        parser.error("--epochs, --batch-size, --lr and --limit must be positive")
    if args.weight_decay < 0 or not 0 <= args.warmup < 1:
        parser.error("--weight-decay must be at least 0 and --warmup a fraction in [0, 1)")
    if not 0 <= getattr(args, "dropout", 0) < 1:  # every training script has it, each with its own meaning
        parser.error("--dropout must be a rate in [0, 1)")
    if args.push_to_hub and not is_valid_repo_id(args.push_to_hub):
        parser.error(f"--push-to-hub {args.push_to_hub!r} is not a Hub repo id (expected 'owner/name')")


def data_name(path, placeholder: str | None) -> str:
    return placeholder or Path(str(path)).name


def without_paths(argv: list[str], data_flags: dict[str, str | None]) -> list[str]:
    """The command line with each data path replaced as ``data_flags`` says (``--data PACS_DIR``)."""
    argv = list(argv)
    for i, token in enumerate(argv):
        flag, _, value = token.partition("=")
        if flag in data_flags and value:
            argv[i] = f"{flag}={data_name(value, data_flags[flag])}"
        elif i and argv[i - 1] in data_flags:
            argv[i] = data_name(token, data_flags[argv[i - 1]])
    return argv


def portable_arguments(arguments: dict, data_flags: dict[str, str | None]) -> dict:
    """The parsed flags as JSON, each data path replaced as ``data_flags`` says."""
    dests = {flag.lstrip("-").replace("-", "_"): placeholder for flag, placeholder in data_flags.items()}
    return {key: data_name(value, dests[key]) if key in dests and value is not None
            else str(value) if isinstance(value, Path) else value
            for key, value in arguments.items()}


def recorded_command(argv: list[str] | None, data_flags: dict[str, str | None]) -> str:
    """The command that is running, as the record shows it: ``python -m MODULE`` and its flags, paths replaced."""
    given = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    return shlex.join(["python", "-m", task_module(), *without_paths(given, data_flags)])


def task_module() -> str:
    """The module that is running, as ``python -m`` names it (for the recorded command)."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return spec.name if spec else Path(sys.argv[0]).stem
