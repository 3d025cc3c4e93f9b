"""The check from a shell: ``python -m hw3core.check best_model.pt`` (or ``hw3-check``).

One file prints its report; several (or a folder of students' files, searched for .pt, .pth, .bin, .ckpt and
.safetensors) print a line each, and ``--csv results.csv`` writes a row per file (file, model, cell, ok, the
problems), then how many files had each problem: for a TA grading a class.
"""

import argparse
import csv
import json
import sys
from collections import Counter
from pathlib import Path

from hw3core.check import CHOICES, check
from hw3core.check.student import StudentFileError

SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")
CHECKPOINT_FOLDER_FILES = ("model.safetensors", "compressed.safetensors")  # this project's, checked as one


def student_files(sources: list[str]) -> list[Path]:
    """Each source as given; a folder that is not a checkpoint folder of this project, as the files in it."""
    found: list[Path] = []
    for source in map(Path, sources):
        if source.is_dir() and not any((source / name).is_file() for name in CHECKPOINT_FOLDER_FILES):
            found += sorted(path for path in source.rglob("*") if path.is_file() and path.suffix.lower() in SUFFIXES)
        else:
            found.append(source)
    return found


def check_many(files: list[Path], model: str) -> list[dict]:
    """A row per file: file, model, cell, ok, problems (a file that cannot be read: its reason)."""
    rows = []
    for path in files:
        try:
            report = check(path, model).report
            rows.append({"file": str(path), "model": report.model or "", "cell": report.cell or "", "ok": report.ok,
                         "problems": list(report.problems)})
        except StudentFileError as error:
            rows.append({"file": str(path), "model": "", "cell": "", "ok": False,
                         "problems": [f"Cannot be read: {error}"]})
        except (RuntimeError, ValueError, TypeError, IndexError, KeyError) as error:  # a layout no rule foresaw
            rows.append({"file": str(path), "model": "", "cell": "", "ok": False,
                         "problems": [f"Could not be checked ({type(error).__name__}): please report it."]})
    return rows


def causes(rows: list[dict]) -> Counter:
    """How many files had each problem (a problem counted once per file)."""
    return Counter(problem for row in rows for problem in dict.fromkeys(row["problems"]))


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["file", "model", "cell", "ok", "problems"])
        writer.writerows([row["file"], row["model"], row["cell"], row["ok"], " | ".join(row["problems"])]
                         for row in rows)
        writer.writerow([])
        writer.writerow(["problem", "files"])
        writer.writerows(causes(rows).most_common())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hw3core.check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", metavar="FILE_OR_FOLDER",
                        help="a state dict (torch.save), a safetensors file, a checkpoint folder, or a folder of them")
    parser.add_argument("--model", choices=CHOICES, default="auto", help="the class it should be (default: auto)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON (one file)")
    parser.add_argument("--csv", type=Path, metavar="RESULTS_CSV", help="write a row per file, then each problem's count")
    args = parser.parse_args(argv)
    files = student_files(args.files)
    if not files:
        print(f"error: no model files ({', '.join(SUFFIXES)}) in {', '.join(args.files)}", file=sys.stderr)
        return 2
    if len(files) == 1 and not args.csv:
        try:
            report = check(files[0], args.model).report
        except StudentFileError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(json.dumps(report.as_json(), indent=2, ensure_ascii=False) if args.json else report.text())
        return 0 if report.ok else 1
    rows = check_many(files, args.model)
    for row in rows:
        what = " ".join(filter(None, (row["model"], f"({row['cell']})" if row["cell"] else "")))
        print(f"{'✔' if row['ok'] else '✘'} {row['file']}: {what or 'not checked'}"
              + "".join(f"\n    ✘ {problem}" for problem in row["problems"]))
    print(f"\n{sum(row['ok'] for row in rows)} of {len(rows)} files match the assignment.")
    for problem, count in causes(rows).most_common():
        print(f"  {count:>4}  {problem}")
    if args.csv:
        write_csv(rows, args.csv)
        print(f"Wrote {args.csv}")
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
