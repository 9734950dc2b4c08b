"""The network guard: its policy as data, its audit hook in a real process, and a real
Scrapy crawl in which the guard alone (the allowlist middleware taken out) keeps every
request off the off-list host.

Audit hooks cannot be removed, so the hook is only ever installed in subprocesses; the
policy and the guard's ledger are tested in process without it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adwatch.demo.hostile import running_hostile_site
from crawler.context import RunReport
from crawler.netguard import (
    Attempt,
    LookupRefused,
    NetGuard,
    NetworkPolicy,
    NetworkRefused,
    network_policy,
    report_refusals,
)
from tests.crawler.test_hostile_site import run_kinds

SITE = "http://127.0.0.1:8765"


@pytest.fixture
def tcp() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        yield sock


@pytest.fixture
def tcp6() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
        yield sock


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        yield sock


# --- the policy, as data ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        (("127.0.0.1", 8765), True),
        (("127.0.0.1", 8766), False),  # another port of the same host is another site
        (("127.0.0.2", 8765), False),  # another loopback address too
        (("localhost", 8765), False),  # a name nobody allowlisted
        (("10.0.0.1", 8765), False),
    ],
)
def test_connections_only_to_the_allowlisted_endpoint(
    tcp: socket.socket, address: tuple[str, int], allowed: bool
) -> None:
    attempt = network_policy([SITE]).decide("socket.connect", (tcp, address))
    assert attempt is not None
    assert attempt.allowed is allowed


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        (("::ffff:127.0.0.1", 8765, 0, 0), True),  # IPv4-mapped: the same endpoint
        (("::ffff:127.0.0.1", 8766, 0, 0), False),
        (("::1", 8765, 0, 0), False),  # IPv6 loopback is another address than 127.0.0.1
    ],
)
def test_ipv6_forms_of_loopback(
    tcp6: socket.socket, address: tuple[str, int, int, int], allowed: bool
) -> None:
    attempt = network_policy([SITE]).decide("socket.connect", (tcp6, address))
    assert attempt is not None and attempt.allowed is allowed


@pytest.mark.parametrize(
    ("event", "host", "allowed"),
    [
        ("socket.getaddrinfo", "127.0.0.1", True),  # a numeric lookup of the site's address
        ("socket.getaddrinfo", "localhost", False),  # localhost only when allowlisted
        ("socket.gethostbyname", "publicsuffix.org", False),
        ("socket.gethostbyname_ex", "example.org", False),
        ("socket.getaddrinfo", "127.1", False),  # not a canonical address: a name, refused
        ("socket.gethostbyaddr", "127.0.0.1", True),
        ("socket.gethostbyaddr", "192.0.2.1", False),  # a reverse lookup leaks the address
    ],
)
def test_lookups_only_of_allowlisted_hosts(event: str, host: str, allowed: bool) -> None:
    args: tuple[Any, ...] = (host, 80, 0, 0, 0) if event == "socket.getaddrinfo" else (host,)
    attempt = network_policy([SITE]).decide(event, args)
    assert attempt is not None and attempt.allowed is allowed


def test_an_allowlisted_name_may_be_resolved_and_its_addresses_learned(
    tcp: socket.socket,
) -> None:
    policy = network_policy(["http://LocalHost.:8765"])
    assert policy.decide("socket.getaddrinfo", ("localhost", 8765, 0, 0, 0)) == Attempt(
        "lookup", "localhost", True
    )
    # By name (resolved inside connect) on its own port only.
    assert policy.decide("socket.connect", (tcp, ("localhost", 8765))).allowed  # type: ignore[union-attr]
    assert not policy.decide("socket.connect", (tcp, ("localhost", 22))).allowed  # type: ignore[union-attr]
    # By address only once the guard learned that the name resolves to it.
    assert not policy.decide("socket.connect", (tcp, ("127.0.0.1", 8765))).allowed  # type: ignore[union-attr]
    learned = policy.with_address("localhost", "127.0.0.1")
    assert learned.decide("socket.connect", (tcp, ("127.0.0.1", 8765))).allowed  # type: ignore[union-attr]
    assert not learned.decide("socket.connect", (tcp, ("127.0.0.1", 22))).allowed  # type: ignore[union-attr]
    # An address "learned" for a name that is not allowlisted is ignored.
    assert policy.with_address("evil.example", "192.0.2.1") == policy


def test_the_database_and_redis_servers_of_the_configuration_are_allowed(
    tcp: socket.socket,
) -> None:
    policy = network_policy(
        [SITE],
        database_url="postgresql+psycopg://app:secret@db.internal/adwatch",
        redis_url="redis://192.0.2.7:6380/0",
    )
    assert policy.permits_name("db.internal")
    assert policy.names["db.internal"] == frozenset({5432})
    assert policy.decide("socket.connect", (tcp, ("192.0.2.7", 6380))).allowed  # type: ignore[union-attr]
    assert not policy.decide("socket.connect", (tcp, ("192.0.2.7", 6379))).allowed  # type: ignore[union-attr]
    # SQLite needs no network at all.
    assert network_policy(database_url="sqlite:////tmp/x.sqlite3") == NetworkPolicy()


def test_datagrams_unix_sockets_and_other_families(udp: socket.socket) -> None:
    policy = network_policy([SITE], redis_url="unix:///run/redis/redis.sock")
    sent = policy.decide("socket.sendto", (udp, ("192.0.2.53", 53)))
    assert sent == Attempt("send", "192.0.2.53:53", False)  # a DNS query of its own
    with socket.socket(socket.AF_UNIX) as unix:
        assert policy.decide("socket.connect", (unix, "/run/redis/redis.sock")).allowed  # type: ignore[union-attr]
        refused = policy.decide("socket.connect", (unix, "/run/other.sock"))
        assert refused == Attempt("connect", "unix:/run/other.sock", False)
        assert refused.url == "unix:/run/other.sock"
    # Events that reach nothing are not attempts.
    assert policy.decide("socket.getaddrinfo", (None, 0, 0, 0, 0)) is None
    assert policy.decide("socket.sendmsg", (udp, None)) is None
    assert policy.decide("socket.bind", (udp, ("127.0.0.1", 0))) is None


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        (f"{SITE}/ad/1", True),
        ("http://127.0.0.1:8766/track.js", False),
        ("https://127.0.0.1:8765/ad/1", False),
        ("ws://127.0.0.1:8765/socket", False),
        ("data:image/png;base64,iVBORw0KGgo=", True),  # inline, no network
    ],
)
def test_browser_requests_use_the_same_allowlist_and_ledger(url: str, allowed: bool) -> None:
    guard = NetGuard(network_policy([SITE]))
    assert guard.permits_url(url) is allowed
    recorded = [attempt for attempt, _ in guard.ledger()]
    if url.startswith("data:"):
        assert recorded == []
    else:
        assert [(a.action, a.allowed) for a in recorded] == [("fetch", allowed)]


def test_refusals_raise_and_reach_the_run_once_each_with_the_ledger_counting_all(
    tcp: socket.socket,
) -> None:
    guard = NetGuard(network_policy([SITE]))
    with pytest.raises(LookupRefused, match="adwatch network guard"):
        guard.audit_hook("socket.getaddrinfo", ("publicsuffix.org", 443, 0, 0, 0))
    report = RunReport()
    report_refusals(guard, report)  # earlier refusals are reported too
    with pytest.raises(LookupRefused):
        guard.audit_hook("socket.getaddrinfo", ("publicsuffix.org", 443, 0, 0, 0))
    with pytest.raises(NetworkRefused):
        guard.audit_hook("socket.connect", (tcp, ("127.0.0.1", 9)))
    guard.audit_hook("socket.connect", (tcp, ("127.0.0.1", 8765)))
    guard.audit_hook("open", ("/etc/hosts", "r", 0))  # not a socket event: ignored
    assert report.requests_refused == 2
    assert [(p["kind"], p["url"]) for p in report.problems] == [
        ("refused", "dns:publicsuffix.org"),
        ("refused", "tcp://127.0.0.1:9"),
    ]
    assert guard.summary() == {
        "contacted": ["127.0.0.1:8765"],
        "looked_up": [],
        "browser_fetched": [],
        "refused": [
            {"action": "connect", "target": "127.0.0.1:9", "count": 1},
            {"action": "lookup", "target": "publicsuffix.org", "count": 2},
        ],
    }


# --- the audit hook in a real process -------------------------------------------------------

HOOK_SCRIPT = r"""
import json, socket, threading, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

hits = {"allowed": 0, "offlist": 0}

def handler(name):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits[name] += 1
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        def log_message(self, *args):
            pass
    return Handler

servers = {n: ThreadingHTTPServer(("127.0.0.1", 0), handler(n)) for n in hits}
for server in servers.values():
    threading.Thread(target=server.serve_forever, daemon=True).start()
allowed, offlist = (servers[n].server_address[1] for n in ("allowed", "offlist"))

from crawler.netguard import abort_off_allowlist, install_guard, network_policy
guard = install_guard(network_policy([f"http://127.0.0.1:{allowed}"]))
results = {}

def attempt(name, action):
    try:
        action()
        results[name] = "done"
    except Exception as exc:
        results[name] = type(exc).__name__

def tcp(family=socket.AF_INET):
    return socket.socket(family, socket.SOCK_STREAM)

class Browser:  # what PLAYWRIGHT_ABORT_REQUEST is given: an object with a url
    def __init__(self, url):
        self.url = url

attempt("allowed", lambda: urllib.request.urlopen(f"http://127.0.0.1:{allowed}/").read())
attempt("other_port", lambda: urllib.request.urlopen(f"http://127.0.0.1:{offlist}/").read())
attempt("connect_ex", lambda: tcp().connect_ex(("127.0.0.1", offlist)))
attempt("ipv4_mapped", lambda: tcp(socket.AF_INET6).connect(("::ffff:127.0.0.1", offlist)))
attempt("ipv6_loopback", lambda: tcp(socket.AF_INET6).connect(("::1", allowed)))
attempt("localhost", lambda: urllib.request.urlopen(f"http://localhost:{allowed}/").read())
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
attempt("udp", lambda: udp.sendto(b"x", ("127.0.0.1", 53)))
attempt("reverse", lambda: socket.gethostbyaddr("192.0.2.1"))
attempt("install_twice", lambda: install_guard(network_policy([])))
results["browser_allowed"] = not abort_off_allowlist(Browser(f"http://127.0.0.1:{allowed}/x"))
results["browser_offlist"] = not abort_off_allowlist(Browser(f"http://127.0.0.1:{offlist}/x"))
before_tld = guard.summary()

from crawler.middlewares import OwnOriginCookiesMiddleware
snapshot = OwnOriginCookiesMiddleware(False, frozenset()).split_domain("a.example.co.uk")
after_snapshot = guard.summary()
from tldextract import TLDExtract
stock = TLDExtract(cache_dir=None)("a.example.co.uk")  # falls back to its snapshot
print(json.dumps({
    "results": results,
    "hits": hits,
    "before_tld": before_tld,
    "after_snapshot": after_snapshot,
    "final": guard.summary(),
    "suffixes": [snapshot.suffix, stock.suffix],
}))
"""


def _run(script: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_installed_guard_refuses_every_off_list_socket_and_records_it() -> None:
    out = _run(HOOK_SCRIPT)
    results = out["results"]
    assert results["allowed"] == "done"
    assert results["other_port"] == "URLError"  # urllib wraps the refusal
    assert results["connect_ex"] == "NetworkRefused"  # raises, though connect_ex never does
    assert results["ipv4_mapped"] == "NetworkRefused"
    assert results["ipv6_loopback"] == "NetworkRefused"
    assert results["localhost"] == "URLError"
    assert results["udp"] == "NetworkRefused"
    assert results["reverse"] == "LookupRefused"
    assert results["install_twice"] == "RuntimeError"
    assert (results["browser_allowed"], results["browser_offlist"]) == (True, False)
    assert out["hits"] == {"allowed": 1, "offlist": 0}

    ledger = out["before_tld"]
    allowed_port = ledger["contacted"][0].rsplit(":", 1)[1]
    assert ledger["contacted"] == [f"127.0.0.1:{allowed_port}"]
    refused = {(r["action"], r["target"]) for r in ledger["refused"]}
    offlist = next(t for a, t in refused if a == "connect" and t.startswith("127.0.0.1:"))
    assert refused == {
        ("connect", offlist),
        ("connect", f"[::1]:{allowed_port}"),
        ("lookup", "localhost"),
        ("send", "127.0.0.1:53"),
        ("reverse_lookup", "192.0.2.1"),
        ("fetch", f"http://{offlist}"),
    }


def test_tldextract_snapshot_is_used_offline_while_the_stock_extractor_tries_to_download() -> None:
    out = _run(HOOK_SCRIPT)
    assert out["suffixes"] == ["co.uk", "co.uk"]
    # adwatch's cookie middleware's extractor: not a single network attempt.
    assert out["after_snapshot"] == out["before_tld"]
    # tldextract as Scrapy builds it: looks up the list's hosts (refused, so it falls back).
    new = [r for r in out["final"]["refused"] if r not in out["before_tld"]["refused"]]
    assert {(r["action"], r["target"]) for r in new} == {
        ("lookup", "publicsuffix.org"),
        ("lookup", "raw.githubusercontent.com"),
    }


def test_the_guard_alone_keeps_a_crawl_off_list_when_the_allowlist_middleware_is_missing(
    tmp_path: Path,
) -> None:
    with running_hostile_site() as site:
        urls = [
            f"{site.base_url}/ad/h-plain",
            f"{site.offlist_url}/ad/direct",  # a link
            f"{site.base_url}/ad/h-redirect-307",  # a redirect
            f"http://localhost:{site.base_url.rsplit(':', 1)[1]}/ad/h-plain",  # a name
        ]
        result = run_kinds(
            tmp_path,
            site.base_url,
            urls,
            settings={"RETRY_TIMES": 0, "ROBOTSTXT_OBEY": False},
            middlewares={"crawler.middlewares.AllowlistMiddleware": None},
            guard=True,
        )
        assert site.offlist_requests == []
    kinds = result["kinds"]
    assert kinds[urls[0]] == "fetched"
    # Scrapy sees a failed connection or lookup; the guard reported it (a refusal) itself.
    assert kinds[urls[1]] is None, result["messages"]
    assert kinds[urls[2]] is None, result["messages"]
    assert kinds[urls[3]] is None, result["messages"]
    network = result["network"]
    site_endpoint = site.base_url.removeprefix("http://")
    offlist_endpoint = site.offlist_url.removeprefix("http://")
    assert network["contacted"] == [site_endpoint]
    assert {(r["action"], r["target"]) for r in network["refused"]} == {
        ("connect", offlist_endpoint),
        ("lookup", "localhost"),
    }
