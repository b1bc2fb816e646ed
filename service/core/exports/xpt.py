"""SAS transport (XPORT v5), the format a submission takes. The dataset's name, label,
variables' labels and types come from the metadata home (``metadata.DATASETS``), and
the widths of its text variables from ``variable_lengths`` (which Define-XML states)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from service.core.exports.metadata import DATASETS
from service.core.exports.rows import SdtmValue
from service.core.exports.text import _cell

SAS_EPOCH = date(1960, 1, 1)
"""Day 0 of a SAS date."""
SAS_DATE_FORMAT = "DATE9."
NUMERIC_LENGTH = 8
"""Bytes of every SAS number in a transport file."""
CARD = 80
"""Bytes of one card (record) of a version 5 transport file."""


def sas_date(iso: str) -> int:
    """An ISO date as a SAS date: days since 1960-01-01."""
    return (date.fromisoformat(iso[:10]) - SAS_EPOCH).days


def sas_transport(
    domain: str, columns: Sequence[str], records: Iterable[Mapping[str, SdtmValue]]
) -> bytes:
    """One dataset as a SAS transport file, version 5 (the FDA's format), written by
    pyreadstat: the dataset named after the domain, the variables' labels and types of
    the metadata home (numeric ones as numbers, missing as SAS missing; dates as SAS
    dates with the DATE9. format; character ones as text, missing as blank), values as
    in the CSV (no formula guard)."""
    import os
    import tempfile

    import pyreadstat

    dataset = DATASETS[domain]
    frame = _frame(domain, columns, list(records))
    handle, path = tempfile.mkstemp(suffix=".xpt")
    os.close(handle)
    try:
        pyreadstat.write_xport(
            frame,
            path,
            file_label=dataset.label,
            column_labels=[dataset.variable(name).label for name in columns],
            table_name=domain,
            file_format_version=5,
            variable_format={
                name: SAS_DATE_FORMAT for name in columns if dataset.variable(name).sas_date
            },
        )
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


def variable_lengths(
    domain: str, columns: Sequence[str], records: Iterable[Mapping[str, SdtmValue]]
) -> dict[str, int]:
    """The length of each variable in the transport file ``sas_transport`` writes: 8 for
    a number, else the widest value in bytes (at least 1)."""
    frame = _frame(domain, columns, list(records))
    variables = DATASETS[domain]
    return {
        name: NUMERIC_LENGTH if variables.variable(name).numeric else _width(frame[name])
        for name in columns
    }


def _width(values: Any) -> int:
    return max([len(str(v).encode()) for v in values] + [1])


def _frame(domain: str, columns: Sequence[str], rows: Sequence[Mapping[str, SdtmValue]]) -> Any:
    """The records as the data frame pyreadstat writes."""
    import pandas as pd

    dataset = DATASETS[domain]
    data = {}
    for name in columns:
        variable = dataset.variable(name)
        if variable.sas_date:
            data[name] = pd.Series([_sas_date_value(r.get(name)) for r in rows], dtype="float64")
        elif variable.numeric:
            data[name] = pd.Series([_sas_number(r.get(name)) for r in rows], dtype="float64")
        else:
            data[name] = pd.Series([_sas_text(r.get(name)) for r in rows], dtype="object")
    frame = pd.DataFrame(data, columns=list(columns))
    _widen_short_records(frame, [n for n in columns if not dataset.variable(n).numeric])
    return frame


def _widen_short_records(frame: Any, text_columns: Sequence[str]) -> None:
    """Make an observation longer than one 80-byte card (in place).

    Version 5 stores no row count: a reader infers it from the file's length and the
    blank padding of its last card. pandas.read_sas (2.x) counts every blank 8-byte word
    of that card as padding when an observation fits in one card, and so drops the
    last subject of a short DM. Trailing blanks are no data in SAS (text is blank
    padded), so widening one text variable by blanks changes no value."""
    numeric_bytes = NUMERIC_LENGTH * (len(frame.columns) - len(text_columns))
    widths = {c: _width(frame[c]) for c in text_columns}
    short_by = CARD + 1 - (numeric_bytes + sum(widths.values()))
    if short_by > 0 and len(frame) and text_columns:
        last = text_columns[-1]
        frame.at[0, last] = str(frame.at[0, last]).ljust(widths[last] + short_by)


def _sas_number(value: SdtmValue) -> float:
    return float("nan") if value is None or value == "" else float(value)


def _sas_date_value(value: SdtmValue) -> float:
    return float("nan") if value is None or value == "" else float(sas_date(str(value)))


def _sas_text(value: SdtmValue) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else _cell(value, guard=False)
