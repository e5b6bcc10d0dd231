"""`lifeline incident open|update|resolve|list` against a running notifier (its admin API)."""

import asyncio
import json

from typer.testing import CliRunner

from services.cli.main import app
from tests.fixtures.notifier import ADMIN_TOKEN, notifier_config


def lifeline(url: str, *args: str, token: str | None = ADMIN_TOKEN):
    env = {"LIFELINE_STATUS_URL": url, "LIFELINE_ADMIN_TOKEN": token or ""}
    return CliRunner().invoke(app, list(args), env=env)


async def test_an_operator_opens_updates_resolves_and_lists(start_notifier):
    notifier = await start_notifier(notifier_config(), env={"LIFELINE_ADMIN_TOKEN": ADMIN_TOKEN})
    url = notifier.status_url

    async def cli(*args: str, token: str | None = ADMIN_TOKEN):
        # the CLI runs its own event loop: give it a thread, as a separate process would have
        return await asyncio.to_thread(lifeline, url, *args, token=token)

    opened = await cli("incident", "open", "Checkout answers are slow", "--component",
                       "route-chat", "--impact", "major", "--actor", "erin", "--json")
    assert opened.exit_code == 0, opened.output
    incident_id = json.loads(opened.output)["incident_id"]

    updated = await cli("incident", "update", incident_id, "Cause found", "--status", "identified")
    assert updated.exit_code == 0 and "identified" in updated.output

    listed = await cli("incident", "list", "--json")
    [shown] = json.loads(listed.output)
    assert (shown["id"], shown["status"], shown["impact"]) == (incident_id, "identified", "major")
    assert [u["body"] for u in shown["incident_updates"]] == ["Cause found", "Checkout answers are slow"]

    resolved = await cli("incident", "resolve", incident_id, "--message", "Fixed")
    assert resolved.exit_code == 0 and "resolved after" in resolved.output
    assert json.loads((await cli("incident", "list", "--json")).output) == []
    every = json.loads((await cli("incident", "list", "--all", "--json")).output)
    assert [(i["id"], i["status"]) for i in every] == [(incident_id, "resolved")]
    assert incident_id in (await cli("incident", "list", "--all")).output

    refused = await cli("incident", "open", "x", token="wrong")
    assert refused.exit_code == 2 and "401" in refused.output
    missing = await cli("incident", "resolve", "nope")
    assert missing.exit_code == 2 and "no incident nope" in missing.output
    gone = await asyncio.to_thread(lifeline, "http://127.0.0.1:9", "incident", "list")
    assert gone.exit_code == 2 and "cannot reach the status page" in gone.output
