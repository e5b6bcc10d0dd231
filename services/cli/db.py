"""`lifeline db upgrade|current`: every service's tables, migrated with Alembic."""

from typing import Annotated

import typer

from services.runtime.db import current_revisions, make_engine, migrate
from services.runtime.settings import Settings

from .common import JsonFlag, console, print_json, run

db_app = typer.Typer(help="The SQL store's schema (Alembic migrations of every service).",
                     no_args_is_help=True)


async def _upgrade(url: str, revision: str) -> set[str]:
    engine = make_engine(url)
    try:
        await migrate(engine, revision)
        return await current_revisions(engine)
    finally:
        await engine.dispose()


async def _current(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return await current_revisions(engine)
    finally:
        await engine.dispose()


@db_app.command()
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision; default every branch's head.")] = "heads",
    as_json: JsonFlag = False,
) -> None:
    """Bring the database (LIFELINE_DB_URL) up to date; services also do this at start-up."""
    revisions = sorted(run(_upgrade(Settings().db_url, revision)))
    print_json({"revisions": revisions}) if as_json else console.print(
        "at " + (", ".join(revisions) or "nothing (no migrations)"), highlight=False)


@db_app.command()
def current(as_json: JsonFlag = False) -> None:
    """The revision each service's tables are at."""
    revisions = sorted(run(_current(Settings().db_url)))
    print_json({"revisions": revisions}) if as_json else console.print(
        ", ".join(revisions) or "empty", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
