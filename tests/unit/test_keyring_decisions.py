"""Which caller a key is, or why it is refused; and a revocation that nothing can undo."""

from datetime import UTC, datetime

from services.gateway.errors import ApiError
from services.gateway.keys import Keyring, hash_key, new_key, presented

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_new_key_is_random_and_only_its_hash_is_kept():
    secret, record = new_key(user_id="u", team_id="t", name=None, now=NOW)
    other, _ = new_key(user_id="u", team_id="t", name=None, now=NOW)
    assert secret != other and len(secret) >= 40
    assert record.key_hash == hash_key(secret) and secret not in record.model_dump_json()


def test_authentication_in_both_modes():
    ring = Keyring()
    secret, record = new_key(user_id="alice", team_id="t", name=None, now=NOW)
    ring.apply_all([record])
    who = ring.authenticate(secret, require_keys=True)
    assert (who.key_id, who.user_id, who.team_id) == (record.key_id, "alice", "t")
    assert ring.authenticate(None, require_keys=True).status == 401
    assert ring.authenticate("sk-anything", require_keys=True).status == 401
    assert ring.authenticate(None, require_keys=False).key_id is None
    assert ring.authenticate("sk-anything", require_keys=False).key_id is None


def test_revoked_stays_revoked_even_if_a_stale_copy_arrives_later():
    ring = Keyring()
    secret, record = new_key(user_id="alice", team_id=None, name=None, now=NOW)
    ring.apply(record.model_copy(update={"revoked_at": NOW}))
    ring.apply(record)  # a table reread that started before the revoke
    for required in (True, False):
        refused = ring.authenticate(secret, require_keys=required)
        assert isinstance(refused, ApiError) and refused.code == "revoked_api_key"


def test_keys_are_read_from_either_sdks_header():
    assert presented({"Authorization": "Bearer llk-1"}) == "llk-1"
    assert presented({"x-api-key": "llk-2"}) == "llk-2"
    assert presented({"Authorization": "Basic abc"}) is None
