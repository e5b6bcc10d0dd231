"""Anyone can subscribe a webhook on the public page, so the notifier must never be made to call
inside its own network: loopback, private ranges, link-local (cloud metadata), mapped forms."""

import pytest

from services.notifier.public_urls import NotPublic, PublicOnlyResolver, check_public, is_public


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1",
                                "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "fe80::1%eth0",
                                "fd00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1"])
def test_inside_addresses_are_not_public(ip: str):
    assert not is_public(ip)


@pytest.mark.parametrize("ip", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_internet_addresses_are_public(ip: str):
    assert is_public(ip)


@pytest.mark.parametrize("url, said", [
    ("http://127.0.0.1:8401/admin", "127.0.0.1 is not a public address (127.0.0.1)"),
    ("http://169.254.169.254/latest/meta-data", "(169.254.169.254)"),
    ("http://[::1]:9000/", "(::1)"),
    ("http://localhost:4222/", "localhost is not a public address"),
    ("http:///nohost", "names no host"),
])
async def test_a_url_inside_is_refused_saying_which_address(url: str, said: str):
    with pytest.raises(NotPublic) as e:
        await check_public(url)
    assert said in str(e.value)


async def test_a_public_ip_literal_passes_without_a_lookup():
    await check_public("https://8.8.8.8/hook")


async def test_the_delivering_resolver_drops_inside_addresses():
    resolver = PublicOnlyResolver()
    try:
        with pytest.raises(OSError, match="localhost resolves to no public address"):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()
