"""What every `lifeline` verb shares: the console, --json, and turning our errors into exit 2."""

import asyncio
import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from services.runtime.config import ConfigError

from .client import CliError

console = Console()
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def run(coro: Any) -> Any:
    """Run a coroutine; an error the operator can act on is printed plainly, exit code 2."""
    try:
        return asyncio.run(coro)
    except (CliError, ConfigError) as e:
        fail(str(e))


def fail(message: str, code: int = 2) -> None:
    console.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
