"""Developer tools the Makefile runs (not installed with the package)."""
