"""A tiny static HTML report: sections of text, tables and images in one folder."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from cfx.files import write_atomic


@dataclass(frozen=True)
class Section:
    title: str
    body_html: str


@dataclass
class Report:
    """Collects sections and writes ``folder/index.html`` (figures live beside it)."""

    title: str
    folder: Path
    sections: list[Section] = field(default_factory=list)
    about: str = ""  # after "Generated ... by cfx X.Y": how the page was made (text, or Html)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)  # a str folder failed at write() as str.mkdir

    def add(self, title: str, *parts: str) -> None:
        self.sections.append(Section(title, "\n".join(parts)))

    def write(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        toc = "".join(
            f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>'
            for i, s in enumerate(self.sections)
        )
        body = "".join(
            f'<section id="s{i}"><h2>{html.escape(s.title)}</h2>{s.body_html}</section>'
            for i, s in enumerate(self.sections)
        )
        from cfx import __version__

        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        about = f" {_cell(self.about)}" if self.about else ""
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(self.title)}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}}
.scroll{{max-width:100%;overflow-x:auto}}
th,td{{border:1px solid #ccc;padding:3px 6px;text-align:left}} th{{background:#f3f3f3}}
img{{max-width:100%;border:1px solid #ddd}} code{{background:#f5f5f5;padding:0 3px}}
.note{{color:#555;font-size:0.9em}} figure{{margin:0.8em 0}}
</style></head><body>
<h1>{html.escape(self.title)}</h1><p class="note">Generated {stamp} by cfx {__version__}.{about}</p>
<ul>{toc}</ul>{body}</body></html>
"""
        return write_atomic(self.folder / "index.html", page)  # never half a page


def _url(name: str) -> str:
    """A file name beside the report as an attribute's URL: percent-encoded (``case #3.png``
    fetched ``case `` with a fragment, ``50%20off.png`` the file ``50 off.png``), then
    escaped."""
    return html.escape(quote(name))


def paragraph(text: str) -> str:
    """A paragraph of plain text (escaped); spans in `backticks` become ``<code>``."""
    escaped = html.escape(text)
    return "<p>" + re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped) + "</p>"


class Html(str):
    """Markup this module made (a :func:`link`): a :func:`table` cell that is not escaped
    again. Any other cell is text."""


def link(href: str, text: str) -> Html:
    """A link to a file beside the report (``href`` relative to it); a table cell too."""
    return Html(f'<a href="{_url(href)}">{html.escape(text)}</a>')


def image(src: str, caption: str) -> str:
    """A figure beside the report with its explanation as a visible caption (in alt text
    alone a sighted reader never saw it). The picture's alt text is empty, as for a picture
    the text beside it describes: a screen reader read the same text twice, as alt and as
    caption."""
    return (
        f'<figure><img src="{_url(src)}" alt="">'
        f'<figcaption class="note">{html.escape(caption)}</figcaption></figure>'
    )


def _cell(value: object) -> str:
    return value if isinstance(value, Html) else html.escape(str(value))


def table(header: list[str], rows: Sequence[Sequence[object]]) -> str:
    """A table of escaped cells, in a box that scrolls sideways when the table is wider than
    the page (the box scrolls, not the table, so screen readers still read a table)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )
