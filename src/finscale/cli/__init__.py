"""The `finscale` command line (`finscale.cli:main` is the script's entry point)."""

from finscale.cli.app import app, main

__all__ = ["app", "main"]
