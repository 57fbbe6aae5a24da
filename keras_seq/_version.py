"""The package version, importable without keras (the CLI's --version, setup.cfg)."""

__version__ = "0.2.0"
