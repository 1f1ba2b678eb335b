"""Settings of the report stage (`[report]` in a recipe)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import setting


@dataclass
class ReportSettings:
    title: str = setting("mbert run", help="report title")
