"""Where the command line keeps its results by default, relative to the working folder."""

DEFAULT_DB = "results/harness.duckdb"
DEFAULT_CACHE = "results/cache"
