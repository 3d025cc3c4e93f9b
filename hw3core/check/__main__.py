"""The check from a shell: ``python -m hw3core.check best_model.pt`` (or ``hw3-check``)."""

import argparse
import json
import sys

from hw3core.check import CHOICES, __doc__, check
from hw3core.check.student import StudentFileError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hw3core.check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", help="a state dict (torch.save), a safetensors file, or a checkpoint folder")
    parser.add_argument("--model", choices=CHOICES, default="auto", help="the class it should be (default: auto)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        report = check(args.file, args.model).report
    except StudentFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_json(), indent=2, ensure_ascii=False) if args.json else report.text())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
