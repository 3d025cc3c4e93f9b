"""A check's report: one row per layer of the assignment's table, as torchsummary lists it, a ✔ or ✘ each,
problems first with their likely cause; and the student's weights in our class where they fit."""

from dataclasses import dataclass, field

from torch import nn


def forward_not_run(name: str) -> str:
    """The note of a file's report: what it cannot check, and the notebook line that does."""
    return (f"A file holds weights, not code: your forward was not run. In a notebook, from hw3core import "
            f"check_model; check_model(model, \"{name}\") runs it beside ours and names the mistake where they "
            "differ.")


@dataclass
class RowResult:
    row: str
    expected: str
    yours: str
    ok: bool


@dataclass
class Report:
    model: str | None
    cell: str | None
    rows: list[RowResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    source: str = ""
    reading: str | None = None  # how weights that can be read several ways were read, where they can

    @property
    def ok(self) -> bool:
        return self.model is not None and not self.problems

    def as_json(self) -> dict:
        return {"model": self.model, "cell": self.cell, "ok": self.ok,
                "rows": [vars(row) for row in self.rows], "problems": list(self.problems), "notes": list(self.notes),
                "reading": self.reading}

    def text(self) -> str:
        """torchsummary's format: one line per row, a ✔ or ✘ each, problems first."""
        title = self.model or "not one of the assignment's models"
        verdict = "✔ matches the assignment" if self.ok else f"✘ {len(self.problems)} problem(s)"
        lines = [f"Your model: {title}" + (f" ({self.cell})" if self.cell else "")
                 + (f" [{self.source}]" if self.source else "") + f": {verdict}"]
        lines += [f"  ✘ {problem}" for problem in self.problems]
        lines += [f"  · {note}" for note in self.notes]
        if self.rows:
            names = max(22, *(len(row.row) + 2 for row in self.rows))
            width = max(len(row.expected) for row in self.rows) + 2
            rule = 4 + names + 2 * width
            lines += ["=" * rule, f"   {'Layer (type)':<{names}}{'Expected':<{width}}{'Yours':<{width}}", "-" * rule]
            lines += [f"{'✔' if row.ok else '✘'}  {row.row:<{names}}{row.expected:<{width}}{row.yours}"
                      for row in self.rows]
            lines.append("=" * rule)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:  # a notebook shows the printed report; this is the line after it
        return f"<Report {self.model}: {'ok' if self.ok else f'{len(self.problems)} problem(s)'}>"


@dataclass
class Checked:
    """The report, and the student's weights in our class where they fit it exactly (else None)."""

    report: Report
    model: nn.Module | None = None
    why_not_run: str | None = None
    readings: list[str] = field(default_factory=list)  # the choices, when the report asks which reading is meant
