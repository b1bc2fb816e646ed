"""Define-XML 2.1 of a submission package, generated from the metadata home
(``metadata.DATASETS``, ``CODELIST_DEFS``) and the datasets as written: the variables a
package holds (the blinded ones only in an admin package), each text variable's length
as the transport file has it (``xpt.variable_lengths``), and only the codelists those
variables use. ``define_html`` renders the same description as plain HTML (no
stylesheet needed to read it)."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from service.core.exports.metadata import CODELIST_DEFS, Codelist, Dataset, Variable
from service.core.exports.rows import SdtmRecord
from service.core.exports.xpt import SAS_DATE_FORMAT, variable_lengths

ODM = "http://www.cdisc.org/ns/odm/v1.3"
DEF = "http://www.cdisc.org/ns/def/v2.1"
XLINK = "http://www.w3.org/1999/xlink"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
DEFINE_VERSION = "2.1.0"
STANDARDS = {
    "SDTMIG": ("STD.SDTMIG", "3.4"),
    "ADaMIG": ("STD.ADaMIG", "1.3"),
}
"""The implementation guides the datasets follow: (OID, version)."""
_TEXT_TYPES = ("text", "integer", "float")
"""Define-XML data types that carry a Length."""

ET.register_namespace("", ODM)
ET.register_namespace("def", DEF)
ET.register_namespace("xlink", XLINK)


@dataclass(frozen=True)
class WrittenDataset:
    """A dataset as the package writes it: its metadata, columns and records."""

    dataset: Dataset
    columns: Sequence[str]
    records: Sequence[SdtmRecord]

    @property
    def file_name(self) -> str:
        return f"{self.dataset.name.lower()}.xpt"

    def lengths(self) -> dict[str, int]:
        return variable_lengths(self.dataset.name, self.columns, self.records)

    def variables(self) -> list[Variable]:
        return [self.dataset.variable(name) for name in self.columns]


def _odm(tag: str) -> str:
    return f"{{{ODM}}}{tag}"


def _def(tag: str) -> str:
    return f"{{{DEF}}}{tag}"


def _description(parent: ET.Element, text: str, tag: str = "Description") -> None:
    node = ET.SubElement(parent, _odm(tag))
    ET.SubElement(node, _odm("TranslatedText"), {XML_LANG: "en"}).text = text


def item_oid(dataset: str, variable: str) -> str:
    return f"IT.{dataset}.{variable}"


def define_xml(
    study: str,
    datasets: Sequence[WrittenDataset],
    *,
    study_name: str | None = None,
    now: datetime | None = None,
    source_version: str = "",
) -> bytes:
    """The Define-XML 2.1 document describing ``datasets`` (UTF-8 bytes)."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    root = ET.Element(
        _odm("ODM"),
        {
            "FileType": "Snapshot",
            "FileOID": f"DEFINE.{study}",
            "ODMVersion": "1.3.2",
            "CreationDateTime": stamp.isoformat(),
            "Originator": "woundscope",
            "SourceSystem": "woundscope",
            "SourceSystemVersion": source_version or "unknown",
            _def("Context"): "Submission",
        },
    )
    study_node = ET.SubElement(root, _odm("Study"), {"OID": f"STUDY.{study}"})
    globals_node = ET.SubElement(study_node, _odm("GlobalVariables"))
    ET.SubElement(globals_node, _odm("StudyName")).text = study
    ET.SubElement(globals_node, _odm("StudyDescription")).text = study_name or study
    ET.SubElement(globals_node, _odm("ProtocolName")).text = study
    mdv = ET.SubElement(
        study_node,
        _odm("MetaDataVersion"),
        {
            "OID": f"MDV.{study}",
            "Name": f"{study} submission metadata",
            "Description": "SDTM tabulations and ADaM analysis datasets of woundscope",
            _def("DefineVersion"): DEFINE_VERSION,
        },
    )
    _standards(mdv, datasets)
    _describe(mdv, datasets)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _describe(mdv: ET.Element, datasets: Sequence[WrittenDataset]) -> None:
    """The MetaDataVersion's content in the schema's order: datasets, variables,
    codelists, derivations, comments."""
    lengths = {w.dataset.name: w.lengths() for w in datasets}
    for written in datasets:
        _item_group(mdv, written)
    pairs = [(w.dataset, v) for w in datasets for v in w.variables()]
    for dataset, variable in pairs:
        _item_def(mdv, dataset, variable, lengths[dataset.name])
    for codelist in _codelists_used(datasets):
        _codelist(mdv, codelist)
    for dataset, variable in pairs:
        if variable.origin == "Derived" and variable.method:
            _method(mdv, dataset, variable)
    for dataset, variable in pairs:
        if variable.comment:
            _comment(mdv, f"COM.{dataset.name}.{variable.name}", variable.comment)


def _standards(mdv: ET.Element, datasets: Sequence[WrittenDataset]) -> None:
    node = ET.SubElement(mdv, _def("Standards"))
    for name in sorted({w.dataset.standard for w in datasets}):
        oid, version = STANDARDS[name]
        ET.SubElement(
            node,
            _def("Standard"),
            {"OID": oid, "Name": name, "Type": "IG", "Version": version, "Status": "Final"},
        )


def _item_group(mdv: ET.Element, written: WrittenDataset) -> None:
    dataset = written.dataset
    attributes = {
        "OID": f"IG.{dataset.name}",
        "Name": dataset.name,
        "SASDatasetName": dataset.name,
        "Repeating": "No" if dataset.keys == ("STUDYID", "USUBJID") else "Yes",
        "IsReferenceData": "No",
        "Purpose": dataset.purpose,
        _def("Structure"): dataset.structure,
        _def("ArchiveLocationID"): f"LF.{dataset.name}",
        _def("StandardOID"): STANDARDS[dataset.standard][0],
    }
    if dataset.domain:
        attributes["Domain"] = dataset.name
    group = ET.SubElement(mdv, _odm("ItemGroupDef"), attributes)
    _description(group, dataset.label)
    for order, variable in enumerate(written.variables(), start=1):
        ref = {
            "ItemOID": item_oid(dataset.name, variable.name),
            "OrderNumber": str(order),
            "Mandatory": "Yes" if variable.required else "No",
        }
        if variable.name in dataset.keys:
            ref["KeySequence"] = str(dataset.keys.index(variable.name) + 1)
        if variable.origin == "Derived" and variable.method:
            ref["MethodOID"] = f"MT.{dataset.name}.{variable.name}"
        ET.SubElement(group, _odm("ItemRef"), ref)
    klass = ET.SubElement(group, _def("Class"), {"Name": dataset.klass})
    if dataset.subclass:
        ET.SubElement(klass, _def("SubClass"), {"Name": dataset.subclass})
    leaf = ET.SubElement(
        group, _def("leaf"), {"ID": f"LF.{dataset.name}", f"{{{XLINK}}}href": written.file_name}
    )
    ET.SubElement(leaf, _def("title")).text = written.file_name


def _item_def(
    mdv: ET.Element, dataset: Dataset, variable: Variable, lengths: Mapping[str, int]
) -> None:
    attributes = {
        "OID": item_oid(dataset.name, variable.name),
        "Name": variable.name,
        "DataType": variable.data_type,
        "SASFieldName": variable.name,
    }
    if variable.data_type in _TEXT_TYPES:
        attributes["Length"] = str(lengths[variable.name])
    if variable.sas_date:
        attributes[_def("DisplayFormat")] = SAS_DATE_FORMAT
    if variable.comment:
        attributes[_def("CommentOID")] = f"COM.{dataset.name}.{variable.name}"
    item = ET.SubElement(mdv, _odm("ItemDef"), attributes)
    _description(item, variable.label)
    if variable.codelist:
        ET.SubElement(item, _odm("CodeListRef"), {"CodeListOID": f"CL.{variable.codelist}"})
    origin: dict[str, str] = {"Type": variable.origin}
    if variable.origin == "Collected":
        origin["Source"] = "Investigator"
    elif variable.origin == "Assigned":
        origin["Source"] = "Sponsor"
    ET.SubElement(item, _def("Origin"), origin)


def _codelists_used(datasets: Sequence[WrittenDataset]) -> list[Codelist]:
    names = sorted({v.codelist for w in datasets for v in w.variables() if v.codelist})
    return [CODELIST_DEFS[name] for name in names]


def _codelist(mdv: ET.Element, codelist: Codelist) -> None:
    node = ET.SubElement(
        mdv,
        _odm("CodeList"),
        {"OID": f"CL.{codelist.name}", "Name": codelist.label, "DataType": "text"},
    )
    if codelist.external is not None:
        dictionary, version = codelist.external
        ET.SubElement(
            node, _odm("ExternalCodeList"), {"Dictionary": dictionary, "Version": version}
        )
    for value in codelist.values:
        if codelist.decodes:
            item = ET.SubElement(node, _odm("CodeListItem"), {"CodedValue": value})
            _description(item, codelist.decodes.get(value, value), tag="Decode")
        else:
            ET.SubElement(node, _odm("EnumeratedItem"), {"CodedValue": value})
    if codelist.nci:
        ET.SubElement(node, _odm("Alias"), {"Context": "nci:ExtCodeID", "Name": codelist.nci})


def _method(mdv: ET.Element, dataset: Dataset, variable: Variable) -> None:
    node = ET.SubElement(
        mdv,
        _odm("MethodDef"),
        {
            "OID": f"MT.{dataset.name}.{variable.name}",
            "Name": f"Derivation of {dataset.name}.{variable.name}",
            "Type": "Computation",
        },
    )
    _description(node, variable.method or "")


def _comment(mdv: ET.Element, oid: str, text: str) -> None:
    node = ET.SubElement(mdv, _def("CommentDef"), {"OID": oid})
    _description(node, text)


# --- a plain HTML rendering -------------------------------------------------------------


def define_html(study: str, datasets: Sequence[WrittenDataset]) -> str:
    """The define's datasets, variables and codelists as a plain HTML page (readable in
    any browser without the CDISC stylesheet)."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>Define-XML {esc(study)}</title>'
        "</head><body>",
        f"<h1>Define-XML {DEFINE_VERSION}: {esc(study)}</h1>",
        "<table><tr><th>dataset</th><th>label</th><th>class</th><th>structure</th>"
        "<th>keys</th><th>file</th></tr>",
    ]
    for w in datasets:
        d = w.dataset
        parts.append(
            f"<tr><td>{esc(d.name)}</td><td>{esc(d.label)}</td><td>{esc(d.klass)}</td>"
            f"<td>{esc(d.structure)}</td><td>{esc(', '.join(d.keys))}</td>"
            f'<td><a href="{esc(w.file_name)}">{esc(w.file_name)}</a></td></tr>'
        )
    parts.append("</table>")
    for w in datasets:
        lengths = w.lengths()
        parts += [
            f"<h2>{esc(w.dataset.name)}: {esc(w.dataset.label)}</h2>",
            "<table><tr><th>variable</th><th>label</th><th>type</th><th>length</th>"
            "<th>codelist</th><th>origin</th><th>derivation or comment</th></tr>",
        ]
        for v in w.variables():
            note = v.method if v.origin == "Derived" and v.method else v.comment or ""
            parts.append(
                f"<tr><td>{esc(v.name)}</td><td>{esc(v.label)}</td><td>{esc(v.data_type)}</td>"
                f"<td>{lengths[v.name]}</td><td>{esc(v.codelist or '')}</td>"
                f"<td>{esc(v.origin)}</td><td>{esc(note)}</td></tr>"
            )
        parts.append("</table>")
    parts.append("<h2>Codelists</h2><table><tr><th>codelist</th><th>values</th></tr>")
    for c in _codelists_used(datasets):
        values = ", ".join(c.values) if c.values else (c.external or ("", ""))[0]
        parts.append(f"<tr><td>{esc(c.name)}</td><td>{esc(values)}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts) + "\n"
