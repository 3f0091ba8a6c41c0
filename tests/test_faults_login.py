"""Locked-out users and loopback by spelling (issue 33): real HTTP logins and API keys against a
served page, from two loopback source addresses. A guesser at 127.0.0.2 is throttled with
back-off, and the real user at 127.0.0.3 gets in at once; ``127.1`` is loopback because it
resolves there; ``ui.require_login: true`` asks for the login on loopback too, and without one
``serve`` refuses to start. The model is SmolLM2; nothing here reads what it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import FAST_MODEL, ROOT, free_port, make_settings, serving
from ui.api import names_loopback
from ui.app import ACCOUNT_FACTOR, LoginThrottle
from ui.keys import BACKOFF_CAP, Throttle, client_key
from ui.server import access, is_loopback

USER, PASSWORD = "ann", "a long password here"
LOGIN = {"QA_BOT_USER": USER, "QA_BOT_PASSWORD": PASSWORD}
KEY = "ann-key-0123456789abcdef"
GUESSER, OWNER = "127.0.0.2", "127.0.0.3"
KEY_WINDOW = 3.0  # api.failure_window of the served server: short, so its back-off is seen in seconds


def from_address(address: str) -> httpx.Client:
    """An HTTP client whose connections leave from ``address`` (Linux routes all of 127/8 to lo)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=60)


def login(client: httpx.Client, url: str, password: str) -> int:
    return client.post(f"{url}login", data={"username": USER, "password": password}).status_code


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``qa-bot serve`` on 127.0.0.1 with ``ui.require_login: true``, a login and an API key."""
    folder = tmp_path_factory.mktemp("guarded")
    with serving(
        folder,
        env={**LOGIN, "QA_BOT_API_KEYS": f"ann={KEY}"},
        ui={"require_login": True},
        api={"max_failures": 3, "failure_window": KEY_WINDOW},
    ) as (url, _):
        yield url


# ---------------------------------------------------------------- the page's login, served


def test_a_guesser_is_throttled_and_the_owner_gets_in_from_another_address(guarded: str) -> None:
    with from_address(GUESSER) as guesser, from_address(OWNER) as owner:
        assert [login(guesser, guarded, f"guess {i}") for i in range(5)] == [400] * 5
        assert login(guesser, guarded, PASSWORD) == 400  # the guesser's address waits, right or not
        assert login(owner, guarded, PASSWORD) == 200  # the real user, at once
        assert owner.get(f"{guarded}config").status_code == 200  # and the login's cookie opens the page
        assert login(guesser, guarded, PASSWORD) == 400  # still waiting


def test_require_login_on_loopback_demands_the_login(guarded: str) -> None:
    with from_address("127.0.0.1") as anyone:
        assert anyone.get(f"{guarded}config").status_code == 401  # the page's config: not without the login
        assert anyone.get(f"{guarded}v1/models").status_code == 401  # the API: not without a key
        assert anyone.get(f"{guarded}v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


# ---------------------------------------------------------------- API keys, served


def test_wrong_keys_are_throttled_per_address_with_back_off(guarded: str) -> None:
    wrong = {"Authorization": "Bearer wrong-key-0123456789"}
    right = {"Authorization": f"Bearer {KEY}"}
    with from_address(GUESSER) as guesser, from_address(OWNER) as owner:
        assert [guesser.get(f"{guarded}v1/models", headers=wrong).status_code for _ in range(3)] == [401] * 3
        first = guesser.get(f"{guarded}api/articles", headers=right)
        assert first.status_code == 429 and first.json()["error"]["code"] == "too_many_failures"
        assert 1 <= int(first.headers["Retry-After"]) <= KEY_WINDOW
        assert owner.get(f"{guarded}v1/models", headers=right).status_code == 200  # the owner, at once
        assert owner.get(f"{guarded}api/articles", headers=right).status_code == 200
        wait_out(guesser, f"{guarded}v1/models", right)
        # Past the threshold one more wrong key locks again, for twice the window.
        assert guesser.get(f"{guarded}v1/models", headers=wrong).status_code == 401
        second = guesser.get(f"{guarded}v1/models", headers=right)
        assert second.status_code == 429 and int(second.headers["Retry-After"]) > KEY_WINDOW
        assert "127.0.0.2" in second.json()["error"]["message"]


def wait_out(client: httpx.Client, url: str, headers: dict[str, str]) -> None:
    """Sleep through the lock the server names, then check the right key is let in."""
    response = client.get(url, headers=headers)
    if response.status_code == 429:
        time.sleep(int(response.headers["Retry-After"]) + 0.2)
        response = client.get(url, headers=headers)
    assert response.status_code == 200, response.text


# ---------------------------------------------------------------- the throttles, by the clock


def test_the_throttle_backs_off_doubling_up_to_its_cap_and_then_forgets() -> None:
    now = [0.0]
    throttle = Throttle(max_failures=2, window=10, clock=lambda: now[0])
    throttle.failed("a")
    assert throttle.wait("a") == 0  # below the threshold
    throttle.failed("a")
    assert throttle.wait("a") == 10 and throttle.wait("b") == 0
    waits = []
    for _ in range(9):  # each further wrong try, once the last lock is over, locks twice as long
        now[0] += throttle.wait("a")
        throttle.failed("a")
        waits.append(throttle.wait("a"))
    assert waits == [20, 40, 80, 160, 320, 640, 640, 640, 640]  # capped at BACKOFF_CAP windows
    assert BACKOFF_CAP * 10 == 640
    now[0] += 640 + 639
    assert throttle.wait("a") == 0
    throttle.failed("a")
    assert throttle.wait("a") == 640  # remembered: a cap of quiet has not passed since the lock ended
    now[0] += 640 + 640
    throttle.failed("a")
    assert throttle.wait("a") == 0  # forgotten: one wrong try is just one again


def test_a_right_login_forgives_its_address_and_wrong_ones_slow_only_theirs() -> None:
    now = [0.0]
    check = LoginThrottle(USER, PASSWORD, max_failures=3, window=60, clock=lambda: now[0])
    assert not any(check(USER, f"guess {i}", client="10.0.0.1") for i in range(3))
    assert not check(USER, PASSWORD, client="10.0.0.1")  # that address waits
    assert check(USER, PASSWORD, client="10.0.0.2")  # another does not
    assert not check(USER, "typo", client="10.0.0.2") and check(USER, PASSWORD, client="10.0.0.2")
    assert not any(check(USER, "typo", client="10.0.0.2") for _ in range(2))
    assert check(USER, PASSWORD, client="10.0.0.2")  # its two typos were forgiven by the last right login


def test_the_account_locks_only_at_ten_times_from_many_addresses() -> None:
    now = [0.0]
    check = LoginThrottle(USER, PASSWORD, max_failures=3, window=60, clock=lambda: now[0])
    guesses = 3 * ACCOUNT_FACTOR
    for n in range(guesses - 1):  # a guesser with many addresses, three wrong tries each
        assert not check(USER, f"guess {n}", client=f"10.0.{n // 3}.1")
    assert check(USER, PASSWORD, client="10.9.9.9")  # one short of the account's threshold
    assert not check("someone", "guess", client="10.8.8.8")
    assert not check(USER, PASSWORD, client="10.9.9.9")  # the account waits now, for everyone
    now[0] = 61.0
    assert check(USER, PASSWORD, client="10.9.9.9")


def test_ipv6_clients_are_throttled_by_their_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::7") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:10.0.0.7") == client_key("10.0.0.7") == "10.0.0.7"
    assert client_key(None) == "" and client_key("testclient") == "testclient"


# ---------------------------------------------------------------- loopback, and require_login


@pytest.mark.parametrize("host", ["127.1", "localhost", "127.0.0.1", "127.255.0.9", "::1", "[::1]", "::ffff:127.0.0.1"])
def test_loopback_is_what_the_host_resolves_to(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["8.8.8.8", "0.0.0.0", "::", "192.168.1.10", "::ffff:8.8.8.8", ""])
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_a_keyless_api_takes_a_loopback_host_however_written_and_never_looks_a_name_up() -> None:
    assert all(names_loopback(h) for h in ("127.1", "127.0.0.1", "0x7f.1", "localhost", "::1"))
    assert not any(names_loopback(h) for h in ("10.0.0.1", "evil.example", "127.0.0.1.nip.io", ""))


def test_access_requires_the_login_on_loopback_only_when_set(tmp_path: Path) -> None:
    plain = make_settings(tmp_path / "store")
    assert access(plain, "127.1", {}) == (None, None, True)  # loopback as 127.1 spells it: no login
    required = make_settings(tmp_path / "store", ui={"require_login": True})
    with pytest.raises(SystemExit, match=r"ui\.require_login: true needs a login; set QA_BOT_USER and QA_BOT_PASSWORD"):
        access(required, "127.0.0.1", {})
    keys, auth, api = access(required, "localhost", LOGIN)
    assert isinstance(auth, LoginThrottle) and keys is None and not api  # the page behind its login, no keyless API


def test_serve_with_require_login_and_no_login_refuses_to_start(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    raw = {
        "store": {"path": str(tmp_path / "store"), "collection": "test"},
        **FAST_MODEL,
        "ui": {"require_login": True},
    }
    config.write_text(json.dumps(raw))
    env = {k: v for k, v in os.environ.items() if k not in ("QA_BOT_USER", "QA_BOT_PASSWORD", "QA_BOT_API_KEYS")}
    run = subprocess.run(
        [sys.executable, "-m", "ui.cli", "serve", "--config", str(config), "--port", str(free_port())],
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "ui.require_login: true needs a login; set QA_BOT_USER and QA_BOT_PASSWORD" in run.stderr, run.stderr
    assert not (tmp_path / "store").exists()  # refused before anything was opened
