"""The version of bertless, in core so that the runtime reports it without importing the package
root (whose `__init__` is a convenience for library users, not part of an artifact's imports).

pyproject.toml reads it from here (hatch's dynamic version), so there is one place to bump.
"""

__version__ = "0.1.0"
