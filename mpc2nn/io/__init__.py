"""Persistence: the ``.mpc2nn`` file format and TOML problem files."""

from ..exceptions import FileFormatError
from ._format import FORMAT_VERSION, load, problem_hash, save
from ._toml import TOML_KEYS, problem_from_toml, problem_to_toml, toml_table

__all__ = ["save", "load", "problem_hash", "FileFormatError", "FORMAT_VERSION", "problem_from_toml", "problem_to_toml",
           "TOML_KEYS", "toml_table"]
