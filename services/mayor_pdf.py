"""The printable PDF of the mayor's weekly call list (R5.4), for Özel Kalem.

Presentation only: takes the rows of :func:`services.mayor_calls.entry_rows` and returns
PDF bytes (fpdf2, A4 landscape). Turkish letters need a Unicode TrueType font: DejaVu Sans
from Debian's ``fonts-dejavu-core`` (installed by ``scripts/setup``), or the folder named by
``font_dir``. No Flask here, so the console and any job may use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.fonts import FontFace

from models import MayorCallResult
from services.mayor_calls import RESULT_TEXT, EntryRow

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"),)
LOCAL_TZ = ZoneInfo("Europe/Istanbul")

_LABELS: dict[str, dict[str, str]] = {
    "tr": {
        "title": "Başkanlık Haftalık Arama Listesi",
        "week": "{week} haftası",
        "drawn": "Çekiliş: {drawn} · tohum {seed} · havuz {pool} başvuru",
        "empty": "Bu hafta için aranacak başvuru yok.",
        "footer": "Sonuçlar konsolda «Başkanlık arama listesi» ekranına kaydedilir. Sayfa {page}",
    },
    "en": {
        "title": "The Mayor's Weekly Call List",
        "week": "week of {week}",
        "drawn": "Drawn: {drawn} · seed {seed} · pool of {pool} applications",
        "empty": "No application to call this week.",
        "footer": "Record the results on the «Mayor's call list» screen. Page {page}",
    },
}
_COLUMNS = {
    "tr": ("#", "Başvuru", "Vatandaş", "Telefon", "Mahalle", "Birim", "Konu", "Sonuç"),
    "en": ("#", "Application", "Citizen", "Phone", "Neighbourhood", "Unit", "Subject", "Result"),
}
_WIDTHS = (8, 26, 38, 30, 32, 42, 70, 31)  # mm, 277 mm = A4 landscape minus margins


class FontMissing(RuntimeError):
    """No Unicode TrueType font to write Turkish letters with."""


def _font_dir(font_dir: Path | None) -> Path:
    for folder in (font_dir, *FONT_DIRS):
        if folder is not None and (folder / "DejaVuSans.ttf").is_file():
            return folder
    raise FontMissing(
        "DejaVuSans.ttf not found: install fonts-dejavu-core (scripts/setup does) "
        "or give the folder holding it"
    )


class _ListPdf(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("dejavu", size=8)
        self.cell(0, 6, self.footer_text.format(page=self.page_no()), align="C")


def render_list_pdf(
    *,
    municipality: str,
    week_start: date,
    seed: int,
    drawn_at: datetime,
    pool_size: int,
    rows: Sequence[EntryRow],
    language: str = "tr",
    font_dir: Path | None = None,
) -> bytes:
    """The list as a printable PDF in ``language`` (Turkish unless ``"en"``): a header with
    the week, the draw's seed and pool, and one table row per entry with the number to
    call and an empty result column when the call is not recorded yet."""
    labels = _LABELS["en" if language == "en" else "tr"]
    english = language == "en"
    folder = _font_dir(font_dir)
    pdf = _ListPdf(orientation="L", unit="mm", format="A4")
    pdf.add_font("dejavu", "", str(folder / "DejaVuSans.ttf"))
    pdf.add_font("dejavu", "B", str(folder / "DejaVuSans-Bold.ttf"))
    pdf.footer_text = labels["footer"]
    pdf.set_title(f"{labels['title']} {week_start.isoformat()}")
    pdf.set_author(municipality)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("dejavu", "B", 15)
    pdf.cell(0, 9, municipality, new_x="LMARGIN", new_y="NEXT")
    week = labels["week"].format(week=week_start.strftime("%d.%m.%Y"))
    pdf.cell(0, 9, f"{labels['title']} — {week}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("dejavu", size=9)
    drawn = drawn_at.astimezone(LOCAL_TZ).strftime("%d.%m.%Y %H:%M")
    pdf.cell(
        0,
        7,
        labels["drawn"].format(drawn=drawn, seed=seed, pool=pool_size),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(3)
    if not rows:
        pdf.set_font("dejavu", size=11)
        pdf.cell(0, 10, labels["empty"], new_x="LMARGIN", new_y="NEXT")
        return bytes(pdf.output())
    pdf.set_font("dejavu", size=9)
    heading = FontFace(emphasis="BOLD", fill_color=(230, 230, 230))
    with pdf.table(col_widths=_WIDTHS, headings_style=heading, line_height=6) as table:
        table.row(_COLUMNS["en" if english else "tr"])
        for r in rows:
            result = "" if r.result is MayorCallResult.PENDING else RESULT_TEXT[r.result][english]
            if r.follow_up_code:
                result += f" → {r.follow_up_code}"
            table.row(
                (
                    str(r.position),
                    r.reference_code,
                    r.citizen_name,
                    r.phone_e164,
                    r.neighbourhood,
                    r.department_en if english else r.department_tr,
                    f"{r.ticket_type_en if english else r.ticket_type_tr}: {r.summary}",
                    result,
                )
            )
    return bytes(pdf.output())
