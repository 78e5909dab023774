"""A small client for InfluxDB's v1-compatible HTTP API: /ping, /write (line protocol), /query (InfluxQL).

The same three endpoints are served by InfluxDB 1.x, by 2.x (each bucket through a DBRP mapping,
`Authorization: Token ...`) and by 3.x, so this one client works with all three.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from freqfeed.config import InfluxDBConfig
from freqfeed.schema import quote_identifier

log = logging.getLogger(__name__)


class InfluxDBError(Exception):
    """InfluxDB refused a request or could not be reached; the message says what to check."""


class InfluxDBUnavailable(InfluxDBError):
    """Not reachable, timed out or answered 5xx: worth retrying later."""


class InfluxDBAuthError(InfluxDBError):
    """401/403: wrong or missing credentials, or no permission on the database."""


class InfluxDBNotFound(InfluxDBError):
    """The database (bucket) or retention policy does not exist."""


class InfluxDBRejected(InfluxDBError):
    """400: the request itself was refused (bad query, unparsable or out-of-retention points)."""


@dataclass(frozen=True)
class Series:
    """One series of a query answer: its tags and its rows as dicts keyed by column."""

    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]

    def rows(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=False)) for row in self.values]


class InfluxDB:
    def __init__(self, config: InfluxDBConfig, *, retries: int = 3, backoff: float = 0.5) -> None:
        self.config = config
        self.retries = retries
        self.backoff = backoff
        self._session = requests.Session()
        self._session.verify = config.verify_tls
        if config.token:
            self._session.headers["Authorization"] = f"Token {config.token}"
        elif config.username:
            self._session.auth = (config.username, config.password or "")

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> InfluxDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public API -----------------------------------------------------------------------------

    def ping(self) -> str:
        """Check InfluxDB answers; returns its version string."""
        response = self._request("GET", "/ping", what="ping")
        return response.headers.get("X-Influxdb-Version", "unknown")

    def write(self, lines: Iterable[str]) -> None:
        """Write line-protocol points with millisecond timestamps."""
        body = "\n".join(lines).encode()
        if not body:
            return
        params = {"db": self.config.database, "precision": "ms"}
        if self.config.retention_policy:
            params["rp"] = self.config.retention_policy
        self._request("POST", "/write", params=params, data=body, what="write")

    def query(self, statements: str | Sequence[str]) -> list[list[Series]]:
        """Run InfluxQL statements in one request; one list of series per statement."""
        if isinstance(statements, str):
            statements = [statements]
        if not statements:
            return []
        data = {"q": ";\n".join(statements), "db": self.config.database, "epoch": "ms"}
        if self.config.retention_policy:
            data["rp"] = self.config.retention_policy
        response = self._request("POST", "/query", data=data, what="query")
        results = response.json().get("results", [])
        answer: list[list[Series]] = [[] for _ in statements]
        for result in results:
            index = result.get("statement_id", 0)
            if "error" in result:
                if result["error"] == "not executed" and len(statements) > 1:
                    # 1.x hides the cause (e.g. "database not found") when a request holds several
                    # statements; the first one alone tells it.
                    self.query(statements[0])
                raise self._statement_error(result["error"])
            answer[index] = [
                Series(s.get("name", ""), s.get("tags") or {}, s["columns"], s.get("values") or [])
                for s in result.get("series", [])
            ]
        return answer

    def ensure_database(self) -> None:
        """Create the database (360-day retention) or the configured retention policy when missing.

        Only InfluxDB 1.x lets a client do that, and only with admin rights; elsewhere the database
        (bucket) is assumed to exist and later requests say clearly when it does not.
        """
        try:
            databases = {row[0] for s in self.query_admin("SHOW DATABASES") for row in s.values}
        except (InfluxDBAuthError, InfluxDBRejected, InfluxDBNotFound) as exc:
            log.info("cannot list databases (%s); assuming database %r exists", exc, self.config.database)
            return
        db = self.config.database
        duration = f"{self.config.retention_days}d"
        if db not in databases:
            rp = self.config.retention_policy
            statement = f"CREATE DATABASE {quote_identifier(db)} WITH DURATION {duration}"
            if rp:
                statement += f" NAME {quote_identifier(rp)}"
            self.query_admin(statement)
            log.info("created InfluxDB database %r with a %s retention policy", db, duration)
            return
        if self.config.retention_policy:
            policies = {row[0] for s in self.query_admin(f"SHOW RETENTION POLICIES ON {quote_identifier(db)}")
                        for row in s.values}
            if self.config.retention_policy not in policies:
                self.query_admin(
                    f"CREATE RETENTION POLICY {quote_identifier(self.config.retention_policy)} "
                    f"ON {quote_identifier(db)} DURATION {duration} REPLICATION 1"
                )
                log.info("created retention policy %r (%s) on %r", self.config.retention_policy, duration, db)

    def query_admin(self, statement: str) -> list[Series]:
        """A statement that does not run against the configured database (SHOW/CREATE DATABASE ...)."""
        response = self._request("POST", "/query", data={"q": statement}, what="query")
        result = response.json().get("results", [{}])[0]
        if "error" in result:
            raise self._statement_error(result["error"])
        return [Series(s.get("name", ""), s.get("tags") or {}, s["columns"], s.get("values") or [])
                for s in result.get("series", [])]

    def _target(self) -> str:
        return (f"database {self.config.database!r}"
                + (f" / retention policy {self.config.retention_policy!r}" if self.config.retention_policy else "")
                + f" at {self.config.url}")

    # -- transport ------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, what: str, **kwargs: Any) -> requests.Response:
        url = self.config.url + path
        attempt = 0
        while True:
            try:
                response = self._session.request(method, url, timeout=self.config.timeout, **kwargs)
            except requests.Timeout:
                error: InfluxDBError = InfluxDBUnavailable(
                    f"InfluxDB {what} timed out after {self.config.timeout:g}s ({self.config.url})")
            except requests.ConnectionError as exc:
                error = InfluxDBUnavailable(f"InfluxDB is not reachable at {self.config.url}: {_reason(exc)}")
            else:
                if response.status_code < 300:
                    return response
                error = self._http_error(response, what)
            if not isinstance(error, InfluxDBUnavailable) or attempt >= self.retries:
                raise error
            delay = self.backoff * 2**attempt
            attempt += 1
            log.warning("%s; retry %d/%d in %.1fs", error, attempt, self.retries, delay)
            time.sleep(delay)

    def _http_error(self, response: requests.Response, what: str) -> InfluxDBError:
        message = _error_text(response)
        status = response.status_code
        if status in (401, 403):
            return InfluxDBAuthError(
                f"InfluxDB refused the {what} with HTTP {status} ({message}): check influxdb.token "
                f"(or FREQFEED_INFLUXDB_TOKEN) / influxdb.username and password, and the permissions "
                f"on {self._target()}")
        if status == 404 or "not found" in message:
            return InfluxDBNotFound(
                f"InfluxDB {what} failed with HTTP {status} ({message}): create "
                f"{self._target()} or fix influxdb.database / influxdb.retention_policy")
        if status == 429 or status >= 500:
            return InfluxDBUnavailable(f"InfluxDB {what} failed with HTTP {status}: {message}")
        return InfluxDBRejected(f"InfluxDB rejected the {what} with HTTP {status}: {message}")

    def _statement_error(self, message: str) -> InfluxDBError:
        if "not found" in message:
            return InfluxDBNotFound(
                f"InfluxDB: {message}: create {self._target()} or fix influxdb.database / "
                "influxdb.retention_policy")
        if "authoriz" in message or "permission" in message:
            return InfluxDBAuthError(f"InfluxDB: {message}: check the credentials' permissions")
        return InfluxDBRejected(f"InfluxDB rejected a query: {message}")


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, dict):
            return str(body.get("error") or body.get("message") or body)
    except ValueError:
        pass
    return (response.text or response.reason or "").strip()[:300]


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "No route to host", "timed out",
                   "Connection reset"):
        if marker in text:
            return marker.lower()
    return text[:200]
