"""The layering contract names every module, so a new one has to be given its layer.

`lint-imports` (run by .ci/run) checks the contracts in pyproject.toml; a module they do not
name is bound by none of them. This test fails until a new top-level module (or a new part of
`rblwatch.alerts`) is put in the vocabulary, values, pure, adapter or top lists there.
"""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import rblwatch
import rblwatch.alerts

ROOT = Path(__file__).resolve().parent.parent


def named_in_contracts() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names: set[str] = set()
    for contract in data["tool"]["importlinter"]["contracts"]:
        names.update(contract.get("source_modules", []))
        names.update(contract.get("forbidden_modules", []))
    return names


def modules() -> set[str]:
    top = {f"rblwatch.{m.name}" for m in pkgutil.iter_modules(rblwatch.__path__)}
    top -= {"rblwatch.__main__", "rblwatch.alerts"}  # the entry point; alerts by its parts
    parts = {f"rblwatch.alerts.{m.name}" for m in pkgutil.iter_modules(rblwatch.alerts.__path__)}
    return top | parts


def test_every_module_has_its_place_in_the_layering_contract() -> None:
    named = named_in_contracts()
    missing = sorted(m for m in modules() if m not in named)
    assert missing == [], f"put these in a layer in pyproject.toml [tool.importlinter]: {missing}"
