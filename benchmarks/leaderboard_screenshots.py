"""One PNG per paper of one leaderboard table showing the paper's numbers beside ours
(issue 13, "Show": headless Chromium screenshots).

    python benchmarks/leaderboard_screenshots.py --results DIR [--results DIR2 ...] --out OUT
        [--pick big_arts=celebdf_generalization-synthetic-mini-video] [--width 1700]

Reads the runs under every ``--results`` directory (read only; a run, i.e. protocol /
detector / backbone / preset / seed, stored under several of them is taken from the first
one named and the others are listed as dropped), renders the leaderboard
(``build_leaderboard``) into ``OUT/board``, and for each paper that has a table with its
numbers in it writes ``OUT/<paper>.html``: the leaderboard's own stylesheet with that one
table, its heading, notes and paper legend (no script), and ``OUT/<paper>.png``: the page
as headless Chromium draws it (``--screenshot`` at ``--window-size``), trimmed to the drawn
area. ``OUT/<paper>.txt`` lists, cell by cell, our value and the paper values the cell
shows with the paper row each comes from (read from the HTML), to check the numbers.

A paper's table is the one holding the most of its numbers, unless ``--pick paper=table-id``
names one (the ids are the leaderboard's ``<table id>``: protocol-data kind-level). A paper
with no number in any table (no run of a protocol that maps to it) is reported as such;
nothing is drawn for it.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
from PIL import Image, ImageChops

from dfbench.benchmark.errors import DfbenchError
from dfbench.benchmark.leaderboard import build_leaderboard, load_reference
from dfbench.benchmark.results import ResultsStore, empty_results

PAPERS = ("two_gen_bat", "pbnet", "pim", "big_arts", "qad")
RUN_KEYS = ["protocol", "detector", "backbone", "preset", "seed"]


def read_results(roots: list[Path]) -> tuple[pd.DataFrame, list[str]]:
    """Every stored row under ``roots``; a run present under several roots is taken from the
    first. Returns the rows and one line per dropped run."""
    frames: list[pd.DataFrame] = []
    seen: dict[tuple[str, ...], Path] = {}
    dropped: list[str] = []
    for root in roots:
        if not root.is_dir():
            raise DfbenchError(f"Results directory {root} does not exist.")
        rows = ResultsStore(root).read_all()
        if rows.empty:
            continue
        keep = []
        for key, group in rows.groupby(RUN_KEYS, sort=False):
            run = tuple(str(k) for k in key)
            if run in seen:
                dropped.append(f"{'/'.join(run)} under {root} (taken from {seen[run]})")
                continue
            seen[run] = root
            keep.append(group)
        frames.extend(keep)
    if not frames:
        return empty_results(), dropped
    return pd.concat(frames, ignore_index=True), dropped


@dataclass
class Block:
    """One leaderboard table with what the page shows around it."""

    table_id: str
    html: str  # from its <h3> to the end of its legend
    paper_counts: dict[str, int] = field(default_factory=dict)


def table_blocks(page: str) -> list[Block]:
    """The leaderboard's tables (by id) with heading, notes and legend, and how many paper
    numbers of each paper each holds (the ``title`` of a cell's paper span names the paper)."""
    blocks: list[Block] = []
    for match in re.finditer(r'<table class="grid[^"]*" id="([^"]+)"', page):
        start = page.rfind("<h3>", 0, match.start())
        close = page.index("</table>", match.start())
        ends = [i for i in (page.find("<h3>", close), page.find("</section>", close)) if i != -1]
        end = min(ends) if ends else len(page)
        body = page[start:end]
        table = page[match.start() : close]
        counts = {p: len(re.findall(rf'<span class="p"[^>]* title="{p} ', table)) for p in PAPERS}
        blocks.append(Block(match.group(1), body, {p: n for p, n in counts.items() if n}))
    return blocks


def page_for(board: str, block: Block, title: str) -> str:
    """A stand-alone page: the leaderboard's <head> (styles, content policy) and one table."""
    head = board[: board.index("</head>")]
    head = re.sub(r"<title>.*?</title>", f"<title>{html.escape(title)}</title>", head, flags=re.S)
    return f'{head}</head>\n<body>\n<h2>{html.escape(title)}</h2>\n{block.html}\n</body>\n</html>\n'


def screenshot(chromium: str, page: Path, png: Path, width: int, height: int) -> None:
    """Draw ``page`` with headless Chromium into ``png``, then trim the blank margin."""
    with tempfile.TemporaryDirectory(prefix="dfbench-chromium-") as profile:
        command = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
            f"--window-size={width},{height}", f"--screenshot={png}", page.resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0 or not png.is_file():
        raise DfbenchError(f"chromium failed on {page}: {done.stderr.strip()[-500:]}")
    with Image.open(png) as image:
        rgb = image.convert("RGB")
    box = ImageChops.difference(rgb, Image.new("RGB", rgb.size, (255, 255, 255))).getbbox()
    if box is None:
        raise DfbenchError(f"chromium drew a blank page for {page}")
    pad = 12
    rgb.crop((0, 0, min(rgb.width, box[2] + pad), min(rgb.height, box[3] + pad))).save(png)
    if box[3] + pad >= height:
        print(f"warning: {png.name}: the table may be cut at the bottom; raise --height", file=sys.stderr)


class _Cells(HTMLParser):
    """Per cell of one table: its row labels, column header, our value and paper values."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[tuple[str, int]] = []  # test column and how many value columns it spans
        self.rows: list[dict[str, object]] = []
        self._in: str | None = None
        self._row: dict[str, object] | None = None
        self._cell: dict[str, object] | None = None
        self._span: dict[str, str] | None = None
        self._text = ""
        self._span_n = 1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "th" and "colspan" in a:
            self._in, self._text, self._span_n = "group", "", int(a["colspan"] or "1")
        elif tag == "th" and self._row is not None:
            self._in, self._text = "train", ""
        elif tag == "tr" and "data-training" in a:
            self._row = {"labels": [], "cells": []}
            self.rows.append(self._row)
        elif tag == "td" and self._row is not None and "label" in a.get("class", ""):
            self._in, self._text = "label", ""
        elif tag == "td" and self._row is not None and "v" in a.get("class", "").split():
            self._cell = {"col": int(a.get("data-col", "0")), "ours": "", "paper": []}
            self._row["cells"].append(self._cell)  # type: ignore[union-attr]
        elif tag == "span" and self._cell is not None:
            self._span, self._text = {"class": a.get("class", ""), "title": a.get("title", "")}, ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "th" and self._in == "group":
            self.headers.append((self._text.strip(), self._span_n))
        elif (tag, self._in) in (("th", "train"), ("td", "label")) and self._row is not None:
            self._row["labels"].append(self._text.strip())  # type: ignore[union-attr]
        elif tag == "span" and self._span is not None and self._cell is not None:
            if self._span["class"] == "m":
                self._cell["ours"] = self._text.strip()
            elif self._span["class"] == "p":
                self._cell["paper"].append((self._text.strip(), self._span["title"]))  # type: ignore[union-attr]
            self._span = None
        elif tag == "td":
            self._cell = None
        if tag in ("th", "td"):
            self._in = None

    def handle_data(self, data: str) -> None:
        self._text += data


def cell_report(block: Block) -> str:
    """Text: per row and cell, our value and each paper value shown with its source row."""
    parser = _Cells()
    parser.feed(block.html[block.html.index("<table") :])
    value_headers = re.findall(r'<th data-col="(\d+)" data-kind="value">([^<]*)</th>', block.html)
    metric_of = {int(c): m for c, m in value_headers}
    # the test columns span the value columns in order (colspan each)
    group_of: dict[int, str] = {}
    columns = iter(sorted(metric_of))
    for name, span in parser.headers:
        for _ in range(span):
            col = next(columns, None)
            if col is not None:
                group_of[col] = name
    lines = [f"table {block.table_id}"]
    for row in parser.rows:
        labels = " | ".join(str(x) for x in row["labels"] if x)  # type: ignore[union-attr]
        for cell in row["cells"]:  # type: ignore[union-attr]
            col = int(cell["col"])
            group = group_of.get(col, "")
            ours = cell["ours"] or "—"
            papers = "; ".join(f"{v} ({t})" for v, t in cell["paper"]) or "no paper number"
            lines.append(f"{labels} :: {group} {metric_of.get(col, '')}: ours {ours}; {papers}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", action="append", required=True, type=Path, help="results directory (repeatable)")
    parser.add_argument("--out", required=True, type=Path, help="folder for the board, pages and PNGs")
    parser.add_argument("--pick", action="append", default=[], help="paper=table-id: the table to draw for a paper")
    parser.add_argument("--width", type=int, default=1700)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser") or "")
    args = parser.parse_args(argv)
    if not args.chromium:
        raise DfbenchError("no chromium on PATH (pass --chromium)")
    picks = dict(p.split("=", 1) for p in args.pick)
    unknown = set(picks) - set(PAPERS)
    if unknown:
        raise DfbenchError(f"--pick names unknown paper(s) {sorted(unknown)}; papers: {list(PAPERS)}")
    rows, dropped = read_results(args.results)
    if rows.empty:
        raise DfbenchError(f"No results under {[str(r) for r in args.results]}.")
    for line in dropped:
        print(f"dropped run (already read): {line}")
    args.out.mkdir(parents=True, exist_ok=True)
    paths = build_leaderboard(rows, args.out / "board", reference=load_reference())
    board = paths["html"].read_text(encoding="utf-8")
    blocks = {b.table_id: b for b in table_blocks(board)}
    for paper in PAPERS:
        if paper in picks:
            if picks[paper] not in blocks:
                raise DfbenchError(f"--pick {paper}: no table {picks[paper]!r}; tables: {sorted(blocks)}")
            block = blocks[picks[paper]]
        else:
            candidates = [b for b in blocks.values() if b.paper_counts.get(paper)]
            if not candidates:
                print(f"{paper}: no table of these results shows a {paper} number; nothing drawn")
                continue
            block = max(candidates, key=lambda b: b.paper_counts[paper])
        page = args.out / f"{paper}.html"
        page.write_text(page_for(board, block, f"{paper}: {block.table_id}"), encoding="utf-8")
        png = args.out / f"{paper}.png"
        screenshot(args.chromium, page, png, args.width, args.height)
        (args.out / f"{paper}.txt").write_text(cell_report(block), encoding="utf-8")
        print(f"{paper}: {png} ({block.table_id}; {block.paper_counts.get(paper, 0)} {paper} numbers)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DfbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
