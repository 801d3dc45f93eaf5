"""One problem found in a definition: where it is and what is wrong."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """``Step 'S': FIELD: MESSAGE``; ``rule`` is the family it belongs to (shape, graph, limit, security)."""

    step: str | None
    field: str
    message: str
    rule: str

    def __str__(self) -> str:
        where = f"Step '{self.step}': " if self.step else ""
        return where + (f"{self.field}: " if self.field else "") + self.message
