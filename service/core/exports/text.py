"""CSV text: cells, the spreadsheet formula guard, and the measurement CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, tzinfo

from service.core.exports.rows import MeasurementRow, capture_time, utc_instant

CSV_COLUMNS = [
    "study",
    "site",
    "subject_id",
    "subject_code",
    "arm",
    "wound_id",
    "wound_label",
    "wound_location",
    "index_leg",
    "assessment_id",
    "visit",
    "captured_at",
    "captured_local",
    "day",
    "uploaded_at",
    "epithelialized",
    "drainage",
    "accepted",
    "voided",
    "void_reason",
    "measurement_id",
    "current",
    "counted",
    "manual",
    "reason",
    "measured_by",
    "measured_at",
    "model",
    "model_sha256",
    "calibration",
    "calibrated",
    "px_per_mm",
    "area_cm2",
    "area_cm2_low",
    "area_cm2_high",
    "area_px",
    "perimeter_cm",
    "length_cm",
    "width_cm",
    "length_x_width_cm2",
    "tilt_deg",
    "components",
    "quality_flags",
    "quality_severe",
    "photo_sha256",
]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_unsafe(text: str) -> bool:
    """Text a spreadsheet would run as a formula when it opens a CSV."""
    return text.startswith(_FORMULA_START)


def _cell(value: object, *, guard: bool = True) -> str:
    """A CSV cell; with ``guard``, text that a spreadsheet would run as a formula is
    quoted with '. Aware datetimes keep their offset."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    if guard and isinstance(value, str) and spreadsheet_unsafe(value):
        return "'" + value
    return str(value)


def _csv(
    columns: Sequence[str], records: Iterable[Mapping[str, object]], *, guard: bool = True
) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record.get(c), guard=guard) for c in columns])
    return out.getvalue()


def _quality_codes(row: MeasurementRow) -> str:
    return ";".join(str(q.get("code", "")) for q in row.quality)


def measurements_csv(
    rows: Iterable[MeasurementRow], *, include_arm: bool = False, clinic_tz: tzinfo | None = None
) -> str:
    """One CSV row per measurement with its provenance; ``arm`` only for admins.

    ``captured_at`` as every export writes it (``capture_time``: a date, or the UTC
    time with its offset), like ``uploaded_at`` and ``measured_at`` (UTC, with offset);
    ``captured_local`` is the clinic's wall-clock time as uploaded, without a zone."""
    columns = [c for c in CSV_COLUMNS if include_arm or c != "arm"]
    records = []
    for row in rows:
        record = {c: getattr(row, c, None) for c in columns}
        record["captured_at"] = capture_time(row.captured_at, clinic_tz)
        for stamp in ("uploaded_at", "measured_at"):
            value = getattr(row, stamp)
            record[stamp] = utc_instant(value) if value is not None else None
        record["captured_local"] = (
            row.captured_at.isoformat(timespec="seconds")
            if isinstance(row.captured_at, datetime)
            else row.captured_at.isoformat()
        )
        record["quality_flags"] = _quality_codes(row)
        record["quality_severe"] = any(bool(q.get("severe")) for q in row.quality)
        records.append(record)
    return _csv(columns, records)
