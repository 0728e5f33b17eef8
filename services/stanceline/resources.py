"""Files that ship beside the code: migrations and the contract's examples.

In a checkout (editable install) they live at the repository's top level;
a wheel carries them inside the package (see pyproject's force-include).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent.parent


def _find(packaged: str, top_level: str) -> Path:
    for candidate in (_PACKAGE / packaged, _CHECKOUT / top_level):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{top_level}/ is neither in the package nor in a checkout")


def migrations_dir() -> Path:
    return _find("_migrations", "migrations")


def founding_example() -> Path:
    return _find("_contracts", "contracts") / "examples" / "founding-example.jsonl"
