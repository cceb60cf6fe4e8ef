"""Builders for test documents: real PDFs and HTML pages made on the fly."""

from __future__ import annotations

import io
from pathlib import Path


def make_pdf(
    path: Path, pages: list[str], title: str | None = None, password: str | None = None
) -> Path:
    """Write a real PDF with one text page per entry (Danish letters included)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    if title:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    data = bytes(pdf.output())
    if password:
        from pypdf import PdfReader, PdfWriter

        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
        writer.encrypt(user_password=password, owner_password=password)
        buffer = io.BytesIO()
        writer.write(buffer)
        data = buffer.getvalue()
    path.write_bytes(data)
    return path


def make_html(path: Path, title: str, body: str, date: str | None = None) -> Path:
    """Write an HTML page with navigation chrome around a main article."""
    meta = f'<meta property="article:published_time" content="{date}">' if date else ""
    path.write_text(
        f"""<!doctype html><html lang="da"><head><meta charset="utf-8"><title>{title}</title>{meta}
</head><body><nav><a href="/">Forside</a> | <a href="/politik">Politik</a></nav>
<main><article><h1>{title}</h1>{body}</article></main>
<footer>Aarhus Kommune · Rådhuspladsen 2 · Cookies og privatliv</footer></body></html>""",
        encoding="utf-8",
    )
    return path
