"""The package version, in a module that imports nothing, so that modules anywhere in the package (the run
context records it with every run) can read it without importing the package's public API."""

__version__ = "0.1.0"
