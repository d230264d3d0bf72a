"""Imports and exports of contacts, companies and deals (CSV and XLSX)."""
