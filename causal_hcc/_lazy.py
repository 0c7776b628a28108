"""Lazy public names for a package (PEP 562): a name is imported from its module on first
use, so importing the package loads nothing heavy (pandas, matplotlib)."""

from __future__ import annotations

import importlib


def lazy_names(package: str, table: dict[str, str], namespace: dict):
    """``(__getattr__, __dir__)`` for ``package`` whose public names live in the modules
    ``table`` names (``{name: submodule}``); a resolved name is cached in ``namespace``
    (the package's globals()), so each is looked up once.

    A name not in ``table`` raises AttributeError, so ``from package import submodule``
    still imports the submodule itself.
    """
    def __getattr__(name):
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
