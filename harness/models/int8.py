"""int8 weight ranges the quantizers use (a scheme's reduce_range: harness.build.reduce_range
says when it resolves to true)."""

from __future__ import annotations


def weight_range(reduce_range) -> tuple[int, int]:
    """Symmetric int8 weights: the full range, or 7 bits when reducing (so u8 x s8 pair sums
    fit the 16 bits of x86 CPUs without VNNI)."""
    return (-64, 63) if reduce_range is True else (-128, 127)
