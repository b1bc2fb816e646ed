"""SAS transport (XPORT v5), the format a submission takes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from service.core.exports.metadata import SDTM_LABELS, SDTM_VARIABLES
from service.core.exports.rows import SdtmValue
from service.core.exports.text import _cell


def sas_transport(
    domain: str, columns: Sequence[str], records: Iterable[Mapping[str, SdtmValue]]
) -> bytes:
    """One SDTM domain as a SAS transport file, version 5 (the FDA's format), written by
    pyreadstat: the dataset named after the domain, the variables' labels and types of
    ``SDTM_VARIABLES`` (numeric ones as numbers, missing as SAS missing; character ones
    as text, missing as blank), values as in the CSV (no formula guard)."""
    import os
    import tempfile

    import pandas as pd
    import pyreadstat

    variables = {v.name: v for v in SDTM_VARIABLES[domain]}
    rows = list(records)
    frame = pd.DataFrame(
        {
            name: (
                pd.Series([_sas_number(r.get(name)) for r in rows], dtype="float64")
                if variables[name].numeric
                else pd.Series([_sas_text(r.get(name)) for r in rows], dtype="object")
            )
            for name in columns
        },
        columns=list(columns),
    )
    _widen_short_records(frame, [n for n in columns if not variables[n].numeric])
    handle, path = tempfile.mkstemp(suffix=".xpt")
    os.close(handle)
    try:
        pyreadstat.write_xport(
            frame,
            path,
            file_label=SDTM_LABELS[domain],
            column_labels=[variables[name].label for name in columns],
            table_name=domain,
            file_format_version=5,
        )
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


def _widen_short_records(frame: Any, text_columns: Sequence[str]) -> None:
    """Make an observation longer than one 80-byte card (in place).

    Version 5 stores no row count: a reader infers it from the file's length and the
    blank padding of its last card. pandas.read_sas (2.x) counts every blank 8-byte word
    of that card as padding when an observation fits in one card, and so drops the
    last subject of a short DM. Trailing blanks are no data in SAS (text is blank
    padded), so widening one text variable by blanks changes no value."""
    numeric_bytes = 8 * (len(frame.columns) - len(text_columns))
    widths = {c: max([len(str(v).encode()) for v in frame[c]] + [1]) for c in text_columns}
    short_by = 81 - (numeric_bytes + sum(widths.values()))
    if short_by > 0 and len(frame) and text_columns:
        last = text_columns[-1]
        frame.at[0, last] = str(frame.at[0, last]).ljust(widths[last] + short_by)


def _sas_number(value: SdtmValue) -> float:
    return float("nan") if value is None or value == "" else float(value)


def _sas_text(value: SdtmValue) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else _cell(value, guard=False)
