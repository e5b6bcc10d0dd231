"""`lifeline drill` and `lifeline fault` refuse what they cannot do before touching anything, and
say what would be right."""

from pathlib import Path

from typer.testing import CliRunner

from services.cli.main import app

SHIPPED = str(Path(__file__).parents[2] / "lifeline.yaml")
NOWHERE = {"NATS_URL": "nats://127.0.0.1:1", "LIFELINE_CONFIG": SHIPPED, "COLUMNS": "200"}


def lifeline(*argv: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, list(argv), env=NOWHERE)
    return done.exit_code, done.output


def test_an_unknown_scenario_lists_the_known_ones():
    code, out = lifeline("drill", "provider-outtage")
    assert code == 2
    assert "unknown scenario 'provider-outtage'" in out and "provider-outage" in out and "killswitch" in out


def test_a_bad_via_and_an_unreachable_bus_are_said_plainly():
    code, out = lifeline("drill", "provider-outage", "--via", "carrier-pigeon")
    assert code == 2 and "--via must be auto, simulator or router" in out
    code, out = lifeline("drill", "provider-outage", "--json")
    assert code == 2 and "cannot reach NATS at nats://127.0.0.1:1" in out


def test_the_fault_switch_names_only_known_providers():
    code, out = lifeline("fault", "set", "opnai", "--reason", "typo")
    assert code == 2 and "unknown provider 'opnai'" in out and "openai" in out
    code, out = lifeline("fault", "clear", "openai")
    assert code == 2 and "cannot reach NATS" in out
