"""appchaind: validator daemon for a perpetual-futures exchange chain."""

__version__ = "0.1.0"
