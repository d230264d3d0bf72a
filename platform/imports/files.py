"""Uploaded files: where they live, what they are (CSV or XLSX, which encoding), their rows.

Uploads are streamed to ``ORBIT_HOME/imports/<tenant>/<id>`` (never held in memory).
A file is read row by row: CSV through the ``csv`` module over a decoding text
stream, XLSX through openpyxl's read-only (streaming) mode. Line numbers are the
file's own: the heading is line 1, so the first data row is line 2 (a CSV record
spanning several physical lines is numbered by its first).
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from orbit.platform.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from uuid import UUID

MAX_UPLOAD_BYTES = 2 * 1024 * 1024 * 1024
"""The largest import file Orbit accepts (the plan's storage quota may allow less)."""
MAX_COLUMNS = 200
MAX_CELL = 10_000
SAMPLE_BYTES = 256 * 1024
"""How much of a file encoding detection looks at."""
ENCODINGS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "utf-8-sig": "utf-8-sig",
    "utf-16": "utf-16",
    "utf-16le": "utf-16-le",
    "utf-16-le": "utf-16-le",
    "utf-16be": "utf-16-be",
    "utf-16-be": "utf-16-be",
    "cp1251": "cp1251",
    "windows-1251": "cp1251",
    "cp1253": "cp1253",
    "windows-1253": "cp1253",
    "gb18030": "gb18030",
    "gbk": "gb18030",
    "gb2312": "gb18030",
    "latin-1": "latin-1",
    "iso-8859-1": "latin-1",
    "cp1252": "cp1252",
    "windows-1252": "cp1252",
    "iso-8859-7": "iso-8859-7",
    "koi8-r": "koi8-r",
    "big5": "big5",
    "shift_jis": "shift_jis",
}
"""Encodings an import may name (``encoding=``), by the names people use for them."""
_DETECTABLE = ("cp1251", "cp1253", "gb18030", "cp1252", "koi8-r", "big5", "shift_jis")
_ASK = "utf-8, utf-16, cp1251, cp1253 or gb18030"
csv.field_size_limit(MAX_CELL * 10)


def upload_dir(home: Path, tenant_id: UUID) -> Path:
    """Where one workspace's import (and export) files live."""
    path = home / "imports" / str(tenant_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What an uploaded file is: its format and (for CSV) its text encoding."""

    file_format: str
    encoding: str | None


def _bad_file(reason: str, field: str = "file") -> InvalidInputError:
    return InvalidInputError(reason, fields={field: reason})


def checked_encoding(name: str | None) -> str | None:
    """An ``encoding`` parameter as Python's codec name; a 400 naming it when unknown."""
    if not name or not name.strip():
        return None
    codec = ENCODINGS.get(name.strip().lower().replace("_", "-"))
    if codec is None:
        known = ", ".join(sorted(set(ENCODINGS)))
        raise _bad_file(f"unknown encoding {name[:40]!r}; use one of {known}", "encoding")
    return codec


def identify(path: Path, file_name: str, encoding: str | None = None) -> FileInfo:
    """The file's format and encoding, or a 400 saying why it is not a usable CSV or XLSX."""
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
        more = bool(handle.read(1))
    if not sample:
        raise _bad_file("the file is empty")
    if sample.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile:
            names = set()
        if "xl/workbook.xml" not in names:
            raise _bad_file(f"{file_name} is a zip archive but not an XLSX workbook")
        return FileInfo("xlsx", None)
    if sample.startswith((b"\xd0\xcf\x11\xe0", b"%PDF", b"\x89PNG", b"\x1f\x8b", b"GIF8")):
        raise _bad_file(f"{file_name} is not a CSV or XLSX file (old .xls: save it as .xlsx)")
    codec = encoding or detect_encoding(sample, complete=not more)
    text = _decoded_sample(sample, codec, complete=not more)
    if "\x00" in text:
        raise _bad_file(f"{file_name} is not a text (CSV) file; upload a CSV or XLSX file")
    return FileInfo("csv", codec)


def detect_encoding(sample: bytes, *, complete: bool) -> str:
    """The sample's encoding: a byte-order mark, valid UTF-8, or the best legacy guess."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=complete)
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    # UTF-16 without a mark: every other byte of Latin text is NUL.
    if sample[1::2].count(0) > len(sample) // 4:
        return "utf-16-le"
    if sample[0::2].count(0) > len(sample) // 4:
        return "utf-16-be"
    from charset_normalizer import from_bytes  # noqa: PLC0415 - only for legacy encodings

    best = from_bytes(sample, cp_isolation=list(_DETECTABLE)).best()
    if best is None:
        raise _bad_file(f"could not tell the file's text encoding; pass encoding= ({_ASK})")
    return checked_encoding(best.encoding) or "utf-8"


def _decoded_sample(sample: bytes, codec: str, *, complete: bool) -> str:
    try:
        return codecs.getincrementaldecoder(codec)().decode(sample, final=complete)
    except UnicodeDecodeError as exc:
        raise _bad_file(
            f"the file is not valid {codec} (byte {exc.start}); pass the right encoding= ({_ASK})",
            "encoding",
        ) from None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return (
            value.isoformat() if value.time() != datetime.min.time() else value.date().isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def rows(path: Path, info: FileInfo) -> Iterator[tuple[int, list[str]]]:
    """Every record as ``(line, cells)``, the heading first (line 1).

    A CSV byte sequence that is not valid in the file's encoding raises a 400
    naming the line (the whole file is checked when it is uploaded).
    """
    if info.file_format == "xlsx":
        yield from _xlsx_rows(path)
        return
    with path.open(encoding=info.encoding or "utf-8", newline="", errors="strict") as handle:
        first = handle.read(SAMPLE_BYTES // 4)
        try:
            dialect: Any = csv.Sniffer().sniff(first, delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
        handle.seek(0)
        # A sniffed dialect may guess quoting wrong; keep only its delimiter.
        reader = csv.reader(handle, delimiter=dialect.delimiter, doublequote=True)
        line = 1
        try:
            for record in reader:
                start = line
                line = reader.line_num + 1
                if record:
                    yield start, record
        except UnicodeDecodeError:
            raise _bad_file(
                f"line {line}: the file is not valid {info.encoding}; pass the right "
                f"encoding= ({_ASK})",
                "encoding",
            ) from None


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    from openpyxl import load_workbook  # noqa: PLC0415 - only XLSX imports need it

    handle = path.open("rb")  # a file object: openpyxl would insist on the name's extension
    try:
        workbook = load_workbook(handle, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a broken file
        handle.close()
        raise _bad_file(f"the XLSX file cannot be read: {exc}") from None
    try:
        sheet = workbook.worksheets[0]
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_cell(value) for value in values]
            while cells and cells[-1] == "":
                cells.pop()
            if cells:
                yield number, cells
    finally:
        workbook.close()
        handle.close()


def count_rows(path: Path, info: FileInfo) -> tuple[list[str], int]:
    """The heading and how many data rows follow it; a 400 when unusable."""
    records = rows(path, info)
    heading = next(records, None)
    if heading is None:
        raise _bad_file("the file has no heading row")
    columns = [cell.strip() for cell in heading[1]]
    if not any(columns):
        raise _bad_file("the first row must name the columns")
    if len(columns) > MAX_COLUMNS:
        raise _bad_file(f"the file has {len(columns)} columns; at most {MAX_COLUMNS}")
    total = sum(1 for _ in records)
    return columns, total


def preview(path: Path, info: FileInfo, limit: int = 10) -> list[list[str]]:
    """The first ``limit`` data rows (cells shortened for display)."""
    found: list[list[str]] = []
    records = rows(path, info)
    next(records, None)
    for _, cells in records:
        found.append([cell[:200] for cell in cells])
        if len(found) >= limit:
            break
    return found


def error_csv(errors: list[tuple[int, str]]) -> bytes:
    """``line,reason`` rows as CSV (UTF-8 with a mark, so spreadsheets read it right)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["line", "reason"])
    writer.writerows(errors)
    return codecs.BOM_UTF8 + out.getvalue().encode()
