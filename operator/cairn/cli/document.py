"""A small document model (sections of paragraphs, key-value lists and tables) and its two
renderings: Markdown, and one self-contained HTML page that reads well printed. Pure; every piece
of text is escaped here, once, for the format it goes into."""

import dataclasses
import html
import re
from collections.abc import Sequence

Cell = str | None


@dataclasses.dataclass(frozen=True)
class Paragraph:
    text: str
    note: bool = False  # a remark about the card itself (what is missing and how to add it)


@dataclasses.dataclass(frozen=True)
class Fields:
    """Key: value lines; a None value shows as a dash."""

    pairs: Sequence[tuple[str, Cell]]


@dataclasses.dataclass(frozen=True)
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    caption: str | None = None


Block = Paragraph | Fields | Table


@dataclasses.dataclass(frozen=True)
class Section:
    title: str
    blocks: Sequence[Block]


@dataclasses.dataclass(frozen=True)
class Document:
    title: str
    subtitle: str
    sections: Sequence[Section]


NONE = "—"

# --- Markdown -------------------------------------------------------------------------------

# Characters Markdown (and the HTML it may carry) would interpret in text.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#!])")


def md(text: Cell) -> str:
    if text is None or text == "":
        return NONE
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    # A table cell or a list item is one line.
    return " ".join(escaped.split("\n")) if "\n" in escaped else escaped


def _md_paragraph(text: str) -> str:
    return "\n".join(md(line) if line else "" for line in text.split("\n"))


def _md_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        text = _md_paragraph(block.text)
        return "\n".join(f"> {line}" for line in text.split("\n")) if block.note else text
    if isinstance(block, Fields):
        return "\n".join(f"- **{md(key)}:** {md(value)}" for key, value in block.pairs)
    lines = [
        "| " + " | ".join(md(h) for h in block.headers) + " |",
        "|" + "|".join("---" for _ in block.headers) + "|",
        *("| " + " | ".join(md(cell) for cell in row) + " |" for row in block.rows),
    ]
    caption = f"*{md(block.caption)}*\n\n" if block.caption else ""
    return caption + "\n".join(lines)


def markdown(document: Document) -> str:
    parts = [f"# {md(document.title)}", f"*{md(document.subtitle)}*"]
    for section in document.sections:
        parts.append(f"## {md(section.title)}")
        parts.extend(_md_block(block) for block in section.blocks)
    return "\n\n".join(parts) + "\n"


# --- HTML -----------------------------------------------------------------------------------

STYLE = """
body { font: 11pt/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1d2330;
       max-width: 60em; margin: 2em auto; padding: 0 1.5em; }
h1 { font-size: 1.7em; margin-bottom: .1em; }
h2 { font-size: 1.2em; border-bottom: 2px solid #2f5d8a; padding-bottom: .15em; margin-top: 1.6em;
     color: #2f5d8a; }
.subtitle { color: #5b6475; margin-top: 0; }
table { border-collapse: collapse; margin: .6em 0 1em; width: 100%; font-size: .95em; }
th, td { border: 1px solid #c9ced8; padding: .3em .55em; text-align: left; vertical-align: top; }
th { background: #eef2f7; }
caption { text-align: left; font-weight: 600; padding-bottom: .3em; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1.2em; margin: .6em 0; }
dt { font-weight: 600; color: #394255; }
dd { margin: 0; overflow-wrap: anywhere; }
.note { background: #fff7e0; border-left: 4px solid #e0a800; padding: .4em .7em; }
section { break-inside: avoid-page; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  h2 { break-after: avoid-page; }
  table, dl { break-inside: avoid-page; }
  a { color: inherit; text-decoration: none; }
}
"""


def esc(text: Cell) -> str:
    return html.escape(NONE if text is None or text == "" else text, quote=True)


def _html_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        body = "<br>".join(esc(line) for line in block.text.split("\n"))
        return f'<p class="note">{body}</p>' if block.note else f"<p>{body}</p>"
    if isinstance(block, Fields):
        items = "".join(f"<dt>{esc(key)}</dt><dd>{esc(value)}</dd>" for key, value in block.pairs)
        return f"<dl>{items}</dl>"
    caption = f"<caption>{esc(block.caption)}</caption>" if block.caption else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in block.headers)
    rows = "".join(
        "<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in block.rows
    )
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def html_page(document: Document) -> str:
    sections = "\n".join(
        f"<section><h2>{esc(s.title)}</h2>\n"
        + "\n".join(_html_block(b) for b in s.blocks)
        + "</section>"
        for s in document.sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(document.title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f'<h1>{esc(document.title)}</h1>\n<p class="subtitle">{esc(document.subtitle)}</p>\n'
        f"{sections}\n</body>\n</html>\n"
    )
