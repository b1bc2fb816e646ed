"""The submission package: every SDTM and ADaM dataset of a study built from one set of
rows (``StudyData``), each as CSV or SAS transport, Define-XML 2.1 and its HTML
rendering, and the zip that holds the transport files and the define together.

Blinding: with ``include_arm`` false (monitor keys) no dataset has a blinded column
(``metadata.Dataset.columns``), so neither the files nor the define name an arm.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from service.core import adtte, healing
from service.core.exports.adsl import adsl_records, index_sides, photo_dates
from service.core.exports.define import WrittenDataset, define_html, define_xml
from service.core.exports.metadata import DATASETS
from service.core.exports.rows import MeasurementRow, SdtmRecord, SubjectRow
from service.core.exports.sdtm import cdisc_supptu_records, cdisc_tr_records, cdisc_tu_records
from service.core.exports.subject_domains import (
    cdisc_dm_records,
    cdisc_ds_records,
    cdisc_pr_records,
    cdisc_supppr_records,
)
from service.core.exports.text import _csv
from service.core.exports.xpt import sas_transport


@dataclass(frozen=True)
class StudyData:
    """Everything a study's submission datasets are written from: its subject rows (DM,
    DS, PR, ADSL), measurement rows (TU, TR, ADSL) and the engine's inputs (ADTTE),
    all of what one caller may see."""

    study: str
    subjects: Sequence[SubjectRow]
    measurements: Sequence[MeasurementRow]
    engine_subjects: Sequence[healing.Subject]
    include_arm: bool = False
    clinic_tz: tzinfo | None = None
    study_name: str | None = None
    closure_requires_drainage_recorded: bool = True
    engine_options: dict[str, Any] = field(default_factory=dict)


def _tte(data: StudyData) -> adtte.TimeToEvent:
    return adtte.time_to_event(
        data.study,
        data.engine_subjects,
        include_arm=data.include_arm,
        closure_requires_drainage_recorded=data.closure_requires_drainage_recorded,
        **data.engine_options,
    )


_BUILDERS: dict[str, Callable[[StudyData], list[SdtmRecord]]] = {
    "DM": lambda d: cdisc_dm_records(d.subjects, include_arm=d.include_arm),
    "DS": lambda d: cdisc_ds_records(d.subjects, photo_dates(d.measurements)),
    "PR": lambda d: cdisc_pr_records(d.subjects),
    "TU": lambda d: cdisc_tu_records(
        d.measurements, clinic_tz=d.clinic_tz, index_sides=index_sides(d.subjects)
    ),
    "SUPPTU": lambda d: cdisc_supptu_records(d.measurements, clinic_tz=d.clinic_tz),
    "TR": lambda d: cdisc_tr_records(
        d.measurements,
        clinic_tz=d.clinic_tz,
        closure_requires_drainage_recorded=d.closure_requires_drainage_recorded,
    ),
    "SUPPPR": lambda d: cdisc_supppr_records(d.subjects),
    "ADSL": lambda d: adsl_records(d.subjects, d.measurements, include_arm=d.include_arm),
    "ADTTE": lambda d: _tte(d).adtte,
    "ADTTEL": lambda d: _tte(d).adttel,
}
"""Each dataset's records from the study's rows (``metadata.DATASETS`` names them)."""
assert set(_BUILDERS) == set(DATASETS), "a dataset without a builder (or the reverse)"


def written_dataset(name: str, data: StudyData) -> WrittenDataset:
    """One dataset of the package, as its files are written (the caller's columns)."""
    dataset = DATASETS[name]
    return WrittenDataset(
        dataset, dataset.columns(include_arm=data.include_arm), _BUILDERS[name](data)
    )


def dataset_csv(name: str, data: StudyData) -> str:
    """One dataset as CSV (values as written, no formula guard: a dataset, not a sheet)."""
    written = written_dataset(name, data)
    return _csv(written.columns, written.records, guard=False)


def dataset_xpt(name: str, data: StudyData) -> bytes:
    """One dataset as a SAS transport file, version 5."""
    written = written_dataset(name, data)
    return sas_transport(name, written.columns, written.records)


def all_datasets(data: StudyData) -> list[WrittenDataset]:
    """Every dataset of the package, in the package's order (ADTTE's engine run once)."""
    tte = _tte(data)
    cached = {"ADTTE": tte.adtte, "ADTTEL": tte.adttel}
    out = []
    for name, dataset in DATASETS.items():
        records = cached[name] if name in cached else _BUILDERS[name](data)
        out.append(WrittenDataset(dataset, dataset.columns(include_arm=data.include_arm), records))
    return out


def package_define(data: StudyData, *, source_version: str = "") -> bytes:
    """Define-XML 2.1 of every dataset of the package."""
    return define_xml(
        data.study,
        all_datasets(data),
        study_name=data.study_name,
        source_version=source_version,
    )


def package_zip(data: StudyData, *, source_version: str = "", now: datetime | None = None) -> bytes:
    """The submission package: ``<dataset>.xpt`` for every dataset, ``define.xml`` and
    ``define.html`` (the same metadata as a plain page), in one zip."""
    datasets = all_datasets(data)
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for written in datasets:
            archive.writestr(
                _entry(written.file_name, stamp),
                sas_transport(written.dataset.name, written.columns, written.records),
            )
        archive.writestr(
            _entry("define.xml", stamp),
            define_xml(
                data.study,
                datasets,
                study_name=data.study_name,
                now=stamp,
                source_version=source_version,
            ),
        )
        archive.writestr(_entry("define.html", stamp), define_html(data.study, datasets))
    return buffer.getvalue()


def _entry(name: str, stamp: datetime) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=stamp.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info
