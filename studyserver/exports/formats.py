"""Writing the export frame as CSV, XLSX (with a codebook sheet), Stata .dta (value and variable
labels embedded), Parquet or JSON, always to a temporary file renamed into place at the end, so a
failure never leaves a half-written file under the requested name."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from generator.files import replacing
from studyserver.instrument.definition import Instrument, get_instrument

from .codebook import CODEBOOK_COLUMNS, build_codebook, variable_labels
from .export import TIMESTAMP_COLUMNS, instruments_for, stata_value_labels

FILE_FORMATS: tuple[str, ...] = ("csv", "xlsx", "dta", "parquet")
API_FORMATS: tuple[str, ...] = ("csv", "json")
CONTENT_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "dta": "application/x-stata-dta",
    "parquet": "application/vnd.apache.parquet",
}
ISO_UTC = "%Y-%m-%dT%H:%M:%S.%fZ"


class ExportFormatError(ValueError):
    """An unknown format name."""


def check_format(name: str, allowed: tuple[str, ...] = FILE_FORMATS) -> str:
    normalized = (name or "").strip().lower().lstrip(".")
    if normalized not in allowed:
        raise ExportFormatError(
            f"Unknown export format {name!r}: use one of {', '.join(allowed)}."
        )
    return normalized


def _naive_utc(frame: pd.DataFrame) -> pd.DataFrame:
    """Excel and Stata have no time zones: timestamps are written as UTC wall time."""
    frame = frame.copy()
    for column in TIMESTAMP_COLUMNS:
        if column in frame and isinstance(frame[column].dtype, pd.DatetimeTZDtype):
            frame[column] = frame[column].dt.tz_convert("UTC").dt.tz_localize(None)
    return frame


Versions = Sequence[Instrument]


def _versions(frame: pd.DataFrame, instrument: Instrument | None) -> Versions:
    """The questionnaire versions the frame's rows answered (``build_export`` keeps their hashes)."""
    if instrument is not None:
        return [instrument]
    hashes = frame.attrs.get("questionnaire_versions")
    return instruments_for(hashes) if hashes else [get_instrument()]


def _codebook_frame(frame: pd.DataFrame, instruments: Versions) -> pd.DataFrame:
    rows = [asdict(row) for row in build_codebook(instruments=instruments, include_personal=True)
            if row.variable in frame.columns]
    return pd.DataFrame(rows, columns=list(CODEBOOK_COLUMNS))


# A spreadsheet opening a CSV evaluates a cell that starts with one of these (CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralize_formula(value: object) -> object:
    """A text value a spreadsheet would run as a formula gets a leading apostrophe (shown as text)."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def _text_neutralized(frame: pd.DataFrame) -> pd.DataFrame:
    """Only text columns: negative numbers in numeric columns stay numbers."""
    text_columns = [column for column in frame.columns
                    if pd.api.types.is_object_dtype(frame[column].dtype)
                    or pd.api.types.is_string_dtype(frame[column].dtype)]
    if not text_columns:
        return frame
    frame = frame.copy()
    for column in text_columns:
        frame[column] = frame[column].map(neutralize_formula, na_action="ignore")
    return frame


def _write_csv(frame: pd.DataFrame, target: io.BufferedWriter, instruments: Versions) -> None:
    target.write(_text_neutralized(frame).to_csv(index=False, date_format=ISO_UTC).encode("utf-8"))


def _write_json(frame: pd.DataFrame, target: io.BufferedWriter, instruments: Versions) -> None:
    target.write(frame.to_json(orient="records", date_format="iso", date_unit="ms").encode())


def _text_cell(sheet, value: str):
    """openpyxl stores a text starting with "=" as a formula; this keeps it a text cell."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"
    return cell


def _append_frame(sheet, frame: pd.DataFrame) -> None:
    sheet.append(list(frame.columns))
    cells = frame.astype(object).where(frame.notna(), None)
    for row in cells.itertuples(index=False, name=None):
        sheet.append([_text_cell(sheet, v) if isinstance(v, str) and v.startswith("=") else v for v in row])


def _write_xlsx(frame: pd.DataFrame, target: io.BufferedWriter, instruments: Versions) -> None:
    # openpyxl's write-only mode streams rows: about twice as fast as pandas' to_excel and a
    # fraction of the memory, which matters for 100,000-row studies.
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    _append_frame(workbook.create_sheet("data"), _naive_utc(frame))
    _append_frame(workbook.create_sheet("codebook"), _codebook_frame(frame, instruments))
    workbook.save(target)


def _write_dta(frame: pd.DataFrame, target: io.BufferedWriter, instruments: Versions) -> None:
    data = _naive_utc(frame)
    for column in data.columns:
        dtype = data[column].dtype
        if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
            # Stata has no missing string: blank, as Stata itself writes it.
            data[column] = data[column].astype("string").fillna("").astype(object)
    value_labels = {
        column: labels for column, labels in stata_value_labels(instruments=instruments).items()
        if column in data.columns
    }
    labels = {
        column: label for column, label in variable_labels(
            build_codebook(instruments=instruments, include_personal=True)
        ).items() if column in data.columns
    }
    data.to_stata(
        target, write_index=False, version=118, value_labels=value_labels,
        variable_labels=labels,
        convert_dates={c: "tc" for c in TIMESTAMP_COLUMNS if c in data.columns},
        data_label=f"Floodlight export, instrument {', '.join(i.version for i in instruments)}"[:80],
    )


def _write_parquet(frame: pd.DataFrame, target: io.BufferedWriter, instruments: Versions) -> None:
    frame.to_parquet(target, index=False)


_WRITERS: dict[str, Callable[[pd.DataFrame, io.BufferedWriter, Versions], None]] = {
    "csv": _write_csv, "json": _write_json, "xlsx": _write_xlsx, "dta": _write_dta,
    "parquet": _write_parquet,
}


def export_bytes(frame: pd.DataFrame, fmt: str, instrument: Instrument | None = None) -> bytes:
    """The file's content in memory (for downloads)."""
    buffer = io.BytesIO()
    _WRITERS[check_format(fmt, tuple(_WRITERS))](frame, buffer, _versions(frame, instrument))
    return buffer.getvalue()


def check_writable(path: str | os.PathLike[str]) -> Path:
    """The resolved output path, or OSError saying why it cannot be written."""
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        raise OSError(f"{path} is a directory; give a file name.")
    if not path.parent.is_dir():
        raise OSError(f"the folder {path.parent} does not exist.")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OSError(f"no permission to write {path}.")
    return path


def atomic_write(path: str | os.PathLike[str], write: Callable[[io.BufferedWriter], None]) -> Path:
    """Call ``write`` on a temporary file beside ``path``, then rename it over ``path``; on any
    failure the temporary file is removed and ``path`` is left as it was."""
    target = check_writable(path)
    # research data: not world-readable
    with replacing(target, mode=0o640) as temporary, temporary.open("wb") as handle:
        write(handle)
    return target


def write_export_file(frame: pd.DataFrame, fmt: str, path: str | os.PathLike[str],
                      instrument: Instrument | None = None) -> Path:
    """Write the export atomically (see :func:`atomic_write`)."""
    writer = _WRITERS[check_format(fmt, tuple(_WRITERS))]
    instruments = _versions(frame, instrument)
    return atomic_write(path, lambda handle: writer(frame, handle, instruments))
