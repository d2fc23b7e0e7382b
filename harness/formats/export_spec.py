"""What an exporter gets besides the model: the named inputs and the shape profile."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExportSpec:
    inputs: tuple        # agents.cell.InputSpec, in the model's (positional) order
    profile: dict        # axis -> (min, opt, max) over what the matrix measures

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.inputs]

    @property
    def axes(self) -> tuple[str, ...]:
        """Named dynamic axes other than the batch."""
        return tuple(dict.fromkeys(a for s in self.inputs for a in s.axes))
