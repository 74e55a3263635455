"""Reading an export file and preparing it for analysis (missing codes, derived variables)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.scales import build_scales
from analysis.variables import StudyVariables

# Columns kept as text; everything else that looks numeric is converted to numbers.
TEXT_COLUMNS = frozenset({
    "screenout_reason", "screenout_detail",  # a detail may be a fed code: "35078", never 35078.0
    "participant_id", "state", "arm", "stratum", "province_code", "fsa", "fed_code",
    "district_method", "rep_order", "consent_version", "instrument_version", "assigned_at",
    "completed_at", "stimulus_id", "generator_backend", "model_version", "quality_flags",
})


class ExportError(ValueError):
    """The export cannot be read or lacks what the analysis needs."""


DATABASE_PREFIX = "db:"


def read_export(path: str | Path) -> pd.DataFrame:
    """Read a CSV, XLSX, DTA or Parquet export (one row per participant), or ``db:SLUG``.

    ``db:SLUG`` builds the same export from the study's database with the platform's
    ``export_responses`` command (``DJANGO_SETTINGS_MODULE``/``DATABASE_URL`` as for
    ``manage.py``); it never includes personal data.
    """
    if isinstance(path, str) and path.startswith(DATABASE_PREFIX):
        return read_database_export(path[len(DATABASE_PREFIX):])
    path = Path(path)
    if not path.exists():
        raise ExportError(f"no such file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype={c: "string" for c in TEXT_COLUMNS})
        elif suffix in (".xlsx", ".xls"):
            frame = pd.read_excel(path)
        elif suffix == ".dta":
            # Value labels stay as numeric codes: the analysis works on codes.
            frame = pd.read_stata(path, convert_categoricals=False)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            raise ExportError(f"unsupported export format {suffix!r} (csv, xlsx, dta, parquet)")
    except ExportError:
        raise
    except Exception as error:  # the readers raise many types; report them uniformly
        raise ExportError(f"could not read {path}: {error}") from error
    return frame


def read_database_export(study_slug: str) -> pd.DataFrame:
    """The export of study ``study_slug`` built from the database (personal data excluded).

    Through the platform's command line (``django-admin export_responses``, logged like any
    export), not its code: the analysis library imports nothing of studyserver or Django.
    """
    env = {**os.environ}
    env.setdefault("DJANGO_SETTINGS_MODULE", "studyserver.settings")
    with tempfile.TemporaryDirectory(prefix="floodlight-analysis-") as scratch:
        out = Path(scratch) / "export.parquet"
        command = [sys.executable, "-m", "django", "export_responses", "--study", study_slug,
                   "--format", "parquet", "--out", str(out)]
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        except OSError as error:
            raise ExportError(f"reading db:{study_slug}: could not run export_responses ({error})") from error
        if done.returncode != 0 or not out.exists():
            reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise ExportError(f"reading db:{study_slug} needs the studyserver package and its database: {reason}")
        return read_export(out)


def _coerce_numeric(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in frame.columns:
        if column in TEXT_COLUMNS:
            values = frame[column].astype("string").str.strip()
            frame[column] = values.mask(values == "")
            continue
        if pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(
            frame[column]
        ):
            frame[column] = frame[column].astype(float)
            continue
        converted = pd.to_numeric(frame[column], errors="coerce")
        non_empty = frame[column].notna() & (frame[column].astype("string").str.strip() != "")
        # Convert only when every non-empty value is a number: free text stays text.
        if converted[non_empty].notna().all():
            frame[column] = converted.astype(float)
    return frame


def _survey_year(frame: pd.DataFrame) -> pd.Series:
    for column in ("completed_at", "assigned_at"):
        if column in frame:
            stamps = pd.to_datetime(frame[column], errors="coerce", utc=True, format="mixed")
            years = stamps.dt.year.astype(float)
            if years.notna().any():
                return years.fillna(years.median())
    return pd.Series(float(pd.Timestamp.now().year), index=frame.index)


def prepare(frame: pd.DataFrame, variables: StudyVariables) -> pd.DataFrame:
    """Numeric codes to numbers, missing codes to NaN, derived variables (age, scales)."""
    frame = _coerce_numeric(frame)
    for column, codes in variables.missing_codes.items():
        if column in frame and pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].where(~frame[column].isin(codes))
    if "birth_year" in frame and "age" not in frame:
        frame["age"] = _survey_year(frame) - frame["birth_year"]
        frame.loc[(frame["age"] < 0) | (frame["age"] > 120), "age"] = np.nan
    if variables.arm in frame:
        frame[variables.arm] = frame[variables.arm].astype("string")
    return build_scales(frame, variables.scales)


def load_export(path: str | Path, variables: StudyVariables) -> pd.DataFrame:
    return prepare(read_export(path), variables)
