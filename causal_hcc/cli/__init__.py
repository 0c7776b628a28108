"""Command-line interface ``causal-hcc``: options, runs, commands and the entry point."""

from causal_hcc.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
