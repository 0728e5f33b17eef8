"""The ``stanceline`` command: thin commands over the service's parts.

Each module registers its commands on the one typer app in ``common``; this
package only gathers them.
"""

from __future__ import annotations

from stanceline.cli import contracts, dlq, operate, service, subscriptions
from stanceline.cli import export as export  # registers `stanceline export`
from stanceline.cli import network as network  # registers `stanceline network`
from stanceline.cli.common import app

__all__ = ["app", "contracts", "dlq", "main", "operate", "service", "subscriptions"]


def main() -> None:
    app()
