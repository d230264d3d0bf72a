"""Global search output shapes."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

import msgspec

SearchType = Literal["contacts", "companies", "deals", "notes"]


class SearchHit(msgspec.Struct, kw_only=True):
    """One matching record; the ``*_html`` fields are HTML-escaped with ``<mark>`` on matches."""

    type: SearchType
    id: UUID
    title: str
    title_html: str
    subtitle: str
    subtitle_html: str
    url: str
    """The record's page in the app."""
    score: float
    """Higher is better: 3 the text starts with the query, 2 a word does, 1 it contains
    it, plus the trigram similarity (0–1) that lets typos match."""


class SearchGroup(msgspec.Struct, kw_only=True):
    """The hits of one record type, best first."""

    type: SearchType
    label: str
    items: list[SearchHit]


class SearchResults(msgspec.Struct, kw_only=True):
    """Hits grouped by type, in the order the types were asked for; empty groups left out."""

    query: str
    groups: list[SearchGroup]
