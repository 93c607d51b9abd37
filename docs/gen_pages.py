"""Pages generated at build time (mkdocs-gen-files): one per distribution, its API reference, benchmark charts.

Each package page is the distribution's own README; each reference page documents the leaf package's
public names from their docstrings (mkdocstrings); the benchmark charts are drawn with matplotlib from
the tables in benchmarks/RESULTS.md, the report of the last benchmark run.
"""

from __future__ import annotations

import io
import re
import sys
import textwrap
from pathlib import Path

import mkdocs_gen_files

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\[([^\]]+)\]\((?!https?://|#)([^)]+)\)")
EXTRA_MODULES = {"ephemeral-core": ["ephemeral.core.lowlevel", "ephemeral.core.sql", "ephemeral.core.testing"]}


def leaf_module(package: Path) -> str:
    """The dotted name of a distribution's leaf package (the one holding py.typed)."""
    (mark,) = sorted((package / "src").glob("ephemeral/**/py.typed"))
    return ".".join(mark.parent.relative_to(package / "src").parts)


def unlink_relative(markdown: str) -> str:
    """Links into the repository (not pages of this site) become plain text naming the file."""
    return LINK.sub(lambda m: f"{m.group(1)} (`{m.group(2)}` in the repository)", markdown)


def package_pages() -> None:
    packages = [p.parent for p in sorted(ROOT.glob("packages/*/pyproject.toml"))]
    summary = ["# Packages\n"]
    reference = ["# API reference\n"]
    for package in packages:
        name = tomllib.loads((package / "pyproject.toml").read_text())["project"]["name"]
        module = leaf_module(package)
        with mkdocs_gen_files.open(f"packages/{name}.md", "w") as page:
            page.write(unlink_relative((package / "README.md").read_text()))
        summary.append(f"* [{name}]({name}.md)")
        modules = [module, *(m for m in EXTRA_MODULES.get(name, []) if module_exists(m))]
        if name == "ephemeral-complete":
            continue  # it re-exports the other packages' names: their pages document them
        with mkdocs_gen_files.open(f"reference/{name}.md", "w") as page:
            page.write(f"# {name}\n\n")
            for dotted in modules:
                page.write(f"::: {dotted}\n    options:\n      show_submodules: false\n\n")
        reference.append(f"* [{name}]({name}.md)")
    with mkdocs_gen_files.open("packages/SUMMARY.md", "w") as page:
        page.write("\n".join(summary) + "\n")
    with mkdocs_gen_files.open("reference/SUMMARY.md", "w") as page:
        page.write("\n".join(reference) + "\n")


def module_exists(dotted: str) -> bool:
    parts = dotted.split(".")
    return any(
        (src / Path(*parts)).with_suffix(".py").is_file() or (src / Path(*parts)).is_dir()
        for src in ROOT.glob("packages/*/src")
    )


def results_tables() -> list[tuple[str, list[str], list[list[str]]]]:
    """(section title, header, rows) for every table in benchmarks/RESULTS.md."""
    found: list[tuple[str, list[str], list[list[str]]]] = []
    title = ""
    lines = (ROOT / "benchmarks/RESULTS.md").read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            title = line[3:].strip()
        if line.startswith("|") and i + 1 < len(lines) and set(lines[i + 1].replace("|", "").strip()) <= set("-: "):
            header = [c.strip() for c in line.strip("|").split("|")]
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip().strip("*") for c in lines[i].strip("|").split("|")])
                i += 1
            found.append((title, header, rows))
            continue
        i += 1
    return found


def number(cell: str) -> float | None:
    try:
        return float(cell.replace(",", "").rstrip("x"))
    except ValueError:
        return None


def chart_pages() -> None:
    """One horizontal bar chart per results table: its first numeric column, per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    page = [
        "# Benchmark charts\n",
        "Drawn at build time from `benchmarks/RESULTS.md`, the report of the last run of",
        "`python -m nox -s bench` (the numbers and the method are on the Benchmarks page).\n",
    ]
    for index, (title, header, rows) in enumerate(results_tables()):
        column = next(
            (c for c in range(1, len(header)) if all(number(r[c]) is not None for r in rows if len(r) > c)), None
        )
        if column is None or not rows:
            continue
        labels = [" / ".join(cell for cell in row[:column] if number(cell) is None)[:70] for row in rows]
        values = [number(row[column]) or 0.0 for row in rows]
        figure, axes = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.2))
        axes.barh(range(len(rows)), values, color="#3f6ec6")
        axes.set_yticks(range(len(rows)), labels, fontsize=8)
        axes.invert_yaxis()
        axes.set_xlabel(header[column])
        axes.set_title(textwrap.fill(title, 90), fontsize=10)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110)
        plt.close(figure)
        with mkdocs_gen_files.open(f"charts/chart-{index}.png", "wb") as image:
            image.write(buffer.getvalue())
        page.append(f"## {title}\n\n![{title}](chart-{index}.png)\n")
    with mkdocs_gen_files.open("charts/index.md", "w") as out:
        out.write("\n".join(page) + "\n")


def copied_pages() -> None:
    """The home page is the repository's README; the benchmark page is benchmarks/README.md."""
    with mkdocs_gen_files.open("index.md", "w") as page:
        page.write(unlink_relative((ROOT / "README.md").read_text()))
    with mkdocs_gen_files.open("benchmarks.md", "w") as page:
        page.write(unlink_relative((ROOT / "benchmarks/README.md").read_text()))


copied_pages()
package_pages()
chart_pages()
