"""E-invoices from the EN 16931 model: CII for Factur-X / ZUGFeRD, UBL 2.1 for Peppol BIS 3."""

from orbit.plugins.builtin.invoicing.einvoice.cii import to_cii
from orbit.plugins.builtin.invoicing.einvoice.model import (
    Address,
    AllowanceCharge,
    EInvoice,
    Line,
    Party,
    TaxRate,
    TaxSubtotal,
    Totals,
)
from orbit.plugins.builtin.invoicing.einvoice.ubl import to_ubl

__all__ = [
    "Address",
    "AllowanceCharge",
    "EInvoice",
    "Line",
    "Party",
    "TaxRate",
    "TaxSubtotal",
    "Totals",
    "to_cii",
    "to_ubl",
]
