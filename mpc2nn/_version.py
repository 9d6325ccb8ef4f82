"""The version of mpc2nn (one place: the package, its metadata and the file format read it here)."""

__version__ = "0.1.0"
