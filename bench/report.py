"""docs/performance.md: each benchmark owns one section, from its `## ` heading to the next."""

from __future__ import annotations

import re
from pathlib import Path

REPORT = Path(__file__).resolve().parents[1] / "docs" / "performance.md"


def section_write(heading: str, lines: list[str]) -> Path:
    """Replace the section under `heading` with `lines` (the heading first), or add it at the end."""
    section = "\n".join(lines)
    text = (
        REPORT.read_text()
        if REPORT.exists()
        else "# Performance\n\nFigures from the benchmarks in `bench/`.\n\n"
    )
    # The heading as a whole line: another section's heading may start with this one's words.
    pattern = re.compile(r"^" + re.escape(heading) + r"$.*?(?=\n## |\Z)", re.S | re.M)
    if pattern.search(text):
        # A function: the section's backslashes stay as written. Once: a heading names one section.
        text = pattern.sub(lambda _: section, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    REPORT.write_text(text.rstrip("\n") + "\n")
    return REPORT
