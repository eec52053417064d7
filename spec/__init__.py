"""An executable specification of the exchange (see README.md)."""
