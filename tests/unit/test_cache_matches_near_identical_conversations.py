"""The response cache's index: normalized keys, near-identical matches, numbers, expiry, bounds."""

from schemas.completion import Message
from services.router.cache import CacheEntry, CacheIndex, cache_key, normalize


def entry(text: str, route: str = "chat", expires_at: float = 100.0) -> CacheEntry:
    return CacheEntry(route=route, text=text, content=f"answer to {text}", stored_at=0.0,
                      expires_at=expires_at)


def conv(*contents: str) -> str:
    return normalize([Message(role="user", content=c) for c in contents])


def put(index: CacheIndex, text: str, **kw) -> None:
    e = entry(text, **kw)
    index.put(cache_key(e.route, text), e)


def test_whitespace_and_case_fold_to_the_same_key_and_roles_do_not():
    assert conv("Where is  my\n order?") == conv("where is my order?")
    assert normalize([Message(role="system", content="x")]) != normalize([Message(role="user", content="x")])
    assert cache_key("chat", "a").startswith("chat.")
    assert cache_key("weird route/ä", "a").startswith("r")  # still a valid KV key


def test_a_near_identical_conversation_finds_the_entry_and_a_different_one_does_not():
    index = CacheIndex()
    put(index, conv("Can you recommend a good book about sailing?"))
    hit = index.lookup("chat", conv("can you recommend a good book about sailing"), similarity=95, now=0)
    assert hit is not None
    assert index.lookup("chat", conv("Can you recommend a good film about sailing?"), similarity=95, now=0) is None
    assert index.lookup("summarize", conv("Can you recommend a good book about sailing?"), similarity=95, now=0) is None


def test_numbers_must_match_exactly_however_close_the_text():
    index = CacheIndex()
    put(index, conv("Has order 12345 shipped yet?"))
    assert index.lookup("chat", conv("Has order 12346 shipped yet?"), similarity=50, now=0) is None
    assert index.lookup("chat", conv("has order 12345 shipped yet"), similarity=95, now=0) is not None


def test_similarity_100_means_exact_only_and_expired_entries_are_forgotten():
    index = CacheIndex()
    put(index, conv("what is new"), expires_at=10.0)
    assert index.lookup("chat", conv("what is new?"), similarity=100, now=0) is None
    assert index.lookup("chat", conv("What is new"), similarity=100, now=0) is not None
    assert index.lookup("chat", conv("what is new?"), similarity=90, now=11.0) is None
    assert len(index) == 0


def test_the_index_keeps_at_most_max_per_route_forgetting_the_oldest():
    index = CacheIndex(max_per_route=3)
    for i in ("one", "two", "three", "four"):
        put(index, conv(f"question {i}"))
    assert len(index) == 3
    assert index.lookup("chat", conv("question one"), similarity=100, now=0) is None
    assert index.lookup("chat", conv("question four"), similarity=100, now=0) is not None
