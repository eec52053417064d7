"""appchaind: validator daemon for a perpetual-futures exchange chain."""

from appchaind import native  # noqa: F401  (first: selects the compiled build or the source)

__version__ = "0.1.0"
