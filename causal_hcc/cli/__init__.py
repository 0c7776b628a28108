"""Command-line interface ``causal-hcc``: options, runs, commands and the entry point."""

from causal_hcc.cli.main import build_parser, main, run

__all__ = ["build_parser", "main", "run"]
