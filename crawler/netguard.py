"""The network guard: the crawl worker's sockets reach the allowlist and nothing else.

The downloader middlewares keep Scrapy's own requests on the authorisation's origins, but
a library can open a socket of its own: tldextract downloading the public-suffix list, a
proxy taken from ``http_proxy``, a DNS lookup of an off-list name. The guard sits below all
of them. A Python audit hook (PEP 578) sees every ``socket.connect`` (``connect_ex`` too),
``sendto``/``sendmsg`` with an address and every name or address lookup, and *refuses*
(raises) any that the run's ``NetworkPolicy`` does not name: the site profile's origins,
the database server and the Redis server of the configuration. Every attempt, allowed or
refused, is counted in the guard's ledger, which the worker writes to the audit log; a
refused one is also reported to the run as a problem of kind ``refused``.

What the hook cannot see: sockets opened in C (libpq connects to PostgreSQL itself, which
the policy allows anyway) and other processes. A headless browser is another process: the
rendering step must ask ``NetGuard.permits_url`` for every request the browser makes (see
``abort_off_allowlist``), which applies the same allowlist and records into the same ledger.

Audit hooks cannot be removed, so there is one guard per process, installed once by the
worker's entry point (``install_guard``); tests install it in a subprocess.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy.resolver import CachingThreadedResolver
from twisted.internet.defer import Deferred

from crawler.site_profile import origin_of
from legal_policy.audit import AuditEvent

if TYPE_CHECKING:
    from crawler.context import RunReport

# Every refusal's message starts with this, so that a log line or a problem can be traced
# back to the guard whatever library re-wrapped the exception.
REFUSAL_MARK = "adwatch network guard"

_DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "redis": 6379, "rediss": 6379}

# Audit events (CPython's socket module) and what they attempt.
_LOOKUPS = {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"}
_REVERSE_LOOKUPS = {"socket.gethostbyaddr", "socket.getnameinfo"}
_SENDS = {"socket.sendto", "socket.sendmsg"}


class NetworkRefused(PermissionError):
    """A connection or datagram the run's allowlist does not name."""


class LookupRefused(socket.gaierror):
    """A name (or address) lookup of a host the run's allowlist does not name."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One kind of network access: what was tried, where, and whether it was allowed.

    ``action`` is ``lookup``, ``reverse_lookup``, ``connect``, ``send`` or ``fetch`` (a
    browser's request); ``target`` is a host name, ``ip:port``, ``unix:path`` or an origin.
    """

    action: str
    target: str
    allowed: bool

    @property
    def url(self) -> str:
        """The attempt as a URL-like string for problem lists (host and port, no path)."""
        scheme = {"lookup": "dns", "reverse_lookup": "dns", "send": "udp", "connect": "tcp"}
        if self.action == "fetch" or self.target.startswith("unix:"):
            return self.target
        prefix = scheme.get(self.action, self.action)
        return f"{prefix}:{self.target}" if prefix == "dns" else f"{prefix}://{self.target}"

    def describe(self) -> str:
        """A one-line reason for the run's problem list."""
        what = {
            "lookup": "DNS lookup of",
            "reverse_lookup": "reverse DNS lookup of",
            "connect": "connection to",
            "send": "datagram to",
            "fetch": "browser request to",
        }.get(self.action, self.action)
        return f"{REFUSAL_MARK}: {what} {self.target} refused (not on the allowlist)"


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """Where a run may go, as data: names it may resolve, endpoints it may contact.

    ``names`` maps each resolvable host name to the ports its origins use; ``endpoints``
    are ``(ip, port)`` pairs (IPv4-mapped IPv6 written as IPv4); ``origins`` is the URL-level
    allowlist for browser requests. Pure: ``decide`` only reads.
    """

    names: Mapping[str, frozenset[int]] = field(default_factory=dict)
    endpoints: frozenset[tuple[str, int]] = frozenset()
    unix_paths: frozenset[str] = frozenset()
    origins: frozenset[str] = frozenset()

    def with_origins(self, origins: Iterable[str]) -> NetworkPolicy:
        """This policy plus the sites' origins (``scheme://host:port``)."""
        policy = self
        normalised = frozenset(origin_of(o) for o in origins)
        for origin in normalised:
            _scheme, host, port = _split_origin(origin)
            policy = policy._with_host(host, port)
        return replace(policy, origins=policy.origins | normalised)

    def with_address(self, name: str, address: str) -> NetworkPolicy:
        """This policy plus ``address`` as a resolution of the allowed ``name`` (same ports)."""
        ports = self.names.get(_name(name))
        ip = _ip(address)
        if not ports or ip is None:
            return self
        return replace(self, endpoints=self.endpoints | {(ip, port) for port in ports})

    def _with_host(self, host: str, port: int) -> NetworkPolicy:
        ip = _ip(host)
        if ip is not None:
            return replace(self, endpoints=self.endpoints | {(ip, port)})
        name = _name(host)
        names = dict(self.names)
        names[name] = names.get(name, frozenset()) | {port}
        return replace(self, names=names)

    def permits_name(self, host: str) -> bool:
        """Whether ``host`` (a name or an IP literal) may be looked up."""
        ip = _ip(host)
        if ip is not None:
            return any(ip == allowed for allowed, _port in self.endpoints)
        return _name(host) in self.names

    def permits_url(self, url: str) -> bool:
        """Whether a request for ``url`` may leave (http(s) on an allowed origin only)."""
        try:
            return urlsplit(url).scheme in ("http", "https") and origin_of(url) in self.origins
        except ValueError:
            return False

    def decide(self, event: str, args: tuple[Any, ...]) -> Attempt | None:
        """The attempt an audit event stands for, judged; None for events that reach nothing."""
        if event in _LOOKUPS:
            host = _text(args[0]) if args else None
            if host is None:  # getaddrinfo(None, port): the local wildcard, no query
                return None
            return Attempt("lookup", _ip(host) or _name(host), self.permits_name(host))
        if event in _REVERSE_LOOKUPS:
            address = args[0][0] if event == "socket.getnameinfo" else args[0]
            host = _text(address) or ""
            return Attempt(
                "reverse_lookup", host, _ip(host) is not None and self.permits_name(host)
            )
        if event == "socket.connect" or (event in _SENDS and len(args) > 1):
            sock, address = args[0], args[1]
            if address is None:  # sendmsg on a connected socket: checked at connect
                return None
            action = "connect" if event == "socket.connect" else "send"
            return self._endpoint(action, getattr(sock, "family", None), address)
        return None

    def _endpoint(self, action: str, family: Any, address: Any) -> Attempt:
        if family == socket.AF_UNIX:
            path = _text(address) or ""
            return Attempt(action, f"unix:{path}", path in self.unix_paths)
        if family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
            host, port = _text(address[0]) or "", int(address[1])
            ip = _ip(host)
            if ip is None:  # connect(("name", port)) resolves inside the call
                allowed = port in self.names.get(_name(host), frozenset())
                return Attempt(action, f"{_name(host)}:{port}", allowed)
            shown = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
            return Attempt(action, shown, (ip, port) in self.endpoints)
        return Attempt(action, f"family {family}: {address!r}", False)


def network_policy(
    origins: Iterable[str] = (),
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
) -> NetworkPolicy:
    """The policy of a run: its sites' origins, its database server and its Redis server.

    SQLite needs no network; a PostgreSQL URL without a host uses a Unix socket from C (not
    seen by the guard). Only what the configuration names is added, nothing by default.
    """
    policy = NetworkPolicy()
    for url in (database_url, redis_url):
        if url:
            policy = _with_server(policy, url)
    return policy.with_origins(origins)


def _with_server(policy: NetworkPolicy, url: str) -> NetworkPolicy:
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0].lower()
    if scheme == "sqlite":
        return policy
    if scheme == "unix":  # redis-py's unix:///path/redis.sock
        return replace(policy, unix_paths=policy.unix_paths | {parts.path})
    if not parts.hostname:
        return policy
    port = parts.port or _DEFAULT_PORTS.get(scheme)
    if port is None:
        raise ValueError(f"cannot tell the port of {scheme} server {parts.hostname!r}")
    return policy._with_host(parts.hostname, port)


def _split_origin(origin: str) -> tuple[str, str, int]:
    # origin_of writes IPv6 hosts without brackets (http://::1:8765): split at the last colon.
    scheme, rest = origin.split("://", 1)
    host, port = rest.rsplit(":", 1)
    return scheme, host, int(port)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("ascii", "replace")
    return str(value)


def _name(host: str) -> str:
    """A host name as compared: lower case, no trailing dot, IDNA-encoded when possible."""
    host = host.strip().rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _ip(host: str) -> str | None:
    """The canonical form of an IP literal (IPv4-mapped IPv6 as IPv4), or None for a name."""
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


class NetGuard:
    """Judges every network attempt of the process against a policy and keeps a ledger."""

    def __init__(self, policy: NetworkPolicy) -> None:
        self._policy = policy
        self._lock = threading.Lock()
        self._ledger: Counter[Attempt] = Counter()
        self._on_refusal: Callable[[Attempt], None] | None = None
        self._reported: set[Attempt] = set()

    @property
    def policy(self) -> NetworkPolicy:
        """The policy in force now."""
        return self._policy

    def admit_origins(self, origins: Iterable[str]) -> None:
        """Widen the policy by the run's site origins, once the site profile is known."""
        with self._lock:
            self._policy = self._policy.with_origins(origins)

    def learn(self, name: str, address: str) -> None:
        """Record that the allowed ``name`` resolved to ``address`` (so it may be contacted)."""
        with self._lock:
            self._policy = self._policy.with_address(name, address)

    def learn_allowed_names(self) -> None:
        """Resolve every allowed name now (through the guard) and learn its addresses.

        For servers a library connects to from Python after its own lookup (Redis); a name
        that does not resolve is left to fail where it is used.
        """
        for name in sorted(self._policy.names):
            try:
                answers = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
            except OSError:
                continue
            for *_rest, sockaddr in answers:
                self.learn(name, str(sockaddr[0]))

    def report_refusals_to(self, callback: Callable[[Attempt], None]) -> None:
        """Call ``callback`` once for every distinct refused attempt, earlier ones included."""
        with self._lock:
            self._on_refusal = callback
            earlier = sorted(self._reported, key=lambda a: (a.action, a.target))
        for attempt in earlier:
            callback(attempt)

    def audit_hook(self, event: str, args: tuple[Any, ...]) -> None:
        """The ``sys.addaudithook`` callback: refuse what the policy does not allow."""
        if not event.startswith("socket."):
            return
        attempt = self._policy.decide(event, args)
        if attempt is None:
            return
        self._record(attempt)
        if attempt.allowed:
            return
        if attempt.action in ("lookup", "reverse_lookup"):
            raise LookupRefused(socket.EAI_NONAME, attempt.describe())
        raise NetworkRefused(errno.EACCES, attempt.describe())

    def permits_url(self, url: str) -> bool:
        """Whether a request made outside Scrapy's downloader (a browser's) may leave.

        Recorded in the ledger like a socket attempt. URLs that need no network (``data:``,
        ``blob:``, ``about:``) are allowed without a record.
        """
        scheme = urlsplit(url).scheme.lower()
        if scheme in ("data", "blob", "about"):
            return True
        allowed = self._policy.permits_url(url)
        try:
            target = origin_of(url) if scheme in ("http", "https") else f"{scheme}:"
        except ValueError:
            target = f"{scheme}:"
        self._record(Attempt("fetch", target, allowed))
        return allowed

    def _record(self, attempt: Attempt) -> None:
        callback = None
        with self._lock:
            self._ledger[attempt] += 1
            if not attempt.allowed and attempt not in self._reported:
                self._reported.add(attempt)
                callback = self._on_refusal
        if callback is not None:
            callback(attempt)

    def ledger(self) -> list[tuple[Attempt, int]]:
        """Every distinct attempt with how often it was made, in a stable order."""
        with self._lock:
            items = list(self._ledger.items())
        return sorted(items, key=lambda item: (not item[0].allowed, item[0].action, item[0].target))

    def summary(self) -> dict[str, Any]:
        """The ledger for the audit log: hosts and ports only, never a path or a query."""
        ledger = self.ledger()
        return {
            "contacted": sorted(
                {a.target for a, _ in ledger if a.allowed and a.action in ("connect", "send")}
            ),
            "looked_up": sorted(
                {a.target for a, _ in ledger if a.allowed and "lookup" in a.action}
            ),
            "browser_fetched": sorted(
                {a.target for a, _ in ledger if a.allowed and a.action == "fetch"}
            ),
            "refused": [
                {"action": a.action, "target": a.target, "count": n}
                for a, n in ledger
                if not a.allowed
            ],
        }


def report_refusals(guard: NetGuard, report: RunReport) -> None:
    """Put every distinct refused attempt into the run's problems (kind ``refused``)."""

    def add(attempt: Attempt) -> None:
        report.requests_refused += 1
        report.add_problem("refused", attempt.url, attempt.describe())

    guard.report_refusals_to(add)


def network_event(guard: NetGuard, *, run_id: int, actor: str, case: str) -> AuditEvent:
    """The run's ``crawl.network`` audit event: every endpoint and name the worker contacted
    or looked up, and every refused attempt with its count (hosts and ports only)."""
    return AuditEvent(
        action="crawl.network",
        actor=actor,
        subject=f"crawl_run:{run_id}",
        properties={**guard.summary(), "via": "crawl worker network guard"},
        cases=(case,),
    )


# The one guard of this process (audit hooks are process-wide and cannot be removed).
_active: NetGuard | None = None
_hook_installed = False


def install_guard(policy: NetworkPolicy) -> NetGuard:
    """Install the process's network guard (once); every socket is judged from now on."""
    global _active, _hook_installed
    if _active is not None:
        raise RuntimeError("the network guard is installed already; audit hooks are permanent")
    guard = NetGuard(policy)
    _active = guard
    if not _hook_installed:
        sys.addaudithook(_dispatch)
        _hook_installed = True
    return guard


def active_guard() -> NetGuard | None:
    """The process's network guard, if one is installed."""
    return _active


def _dispatch(event: str, args: tuple[Any, ...]) -> None:
    guard = _active
    if guard is not None:
        guard.audit_hook(event, args)


def abort_off_allowlist(request: Any) -> bool:
    """For ``PLAYWRIGHT_ABORT_REQUEST``: True (abort) unless the guard permits the URL.

    Deny by default: without an installed guard every browser request is aborted.
    """
    guard = _active
    return guard is None or not guard.permits_url(str(request.url))


class GuardedResolver(CachingThreadedResolver):
    """Scrapy's caching resolver that tells the guard what an allowed name resolved to.

    The guard allows a connection only to addresses it knows; learning them from the very
    lookup Twisted makes keeps it right when a site's DNS answer changes during the run.
    (A name the guard refuses fails inside the lookup, as a DNS error.)
    """

    def getHostByName(self, name: str, timeout: Any = ()) -> Deferred[str]:
        deferred: Deferred[str] = super().getHostByName(name, timeout)
        guard = _active
        if guard is not None:
            deferred.addCallback(_learned, guard, name)
        return deferred


def _learned(address: str, guard: NetGuard, name: str) -> str:
    guard.learn(name, address)
    return address
