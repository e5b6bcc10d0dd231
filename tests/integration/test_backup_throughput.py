"""A small run of the throughput measurement (python -m services.backup_agent.measure measures
100,000 turns): 5,000 turns on PostgreSQL are snapshotted, verified and restored, and the figures
are reported. The bounds are far below what the machine does (2 cores shared with other test
runs): they catch a path gone pathologically slow, not a busy machine."""

from services.backup_agent.measure import measure


async def test_throughput(pg_url: str) -> None:
    figures = await measure(pg_url, 5_000)
    print(f"\n{figures}")
    assert figures["turns"] == 5_000 and figures["rows"] >= 5_000
    assert figures["snapshot_turns_per_s"] > 500
    assert figures["restore_turns_per_s"] > 500
