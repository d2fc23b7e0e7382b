"""Model-optimization benchmarking harness (coordinator side)."""

__version__ = "0.1.0"
