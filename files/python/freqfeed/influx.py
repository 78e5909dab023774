"""A small client for InfluxDB's v1-compatible HTTP API: /ping, /write (line protocol), /query (InfluxQL).

The same three endpoints are served by InfluxDB 1.x, by 2.x (each bucket through a DBRP mapping,
`Authorization: Token ...`) and by 3.x, but the servers behind them differ (several statements per
request or one, CREATE DATABASE or not, what `rp` means, how much one query may scan). The client
detects the server from /ping once (`InfluxDB.server`) and adapts through its `Capabilities`
(freqfeed.influxdb_versions): statements are batched where the server accepts it and sent one per
request, a few at a time, where it does not; statements the server did not execute are sent again;
reads are time-bounded `Select`s split into windows where a server limits a query.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import requests
import urllib3

from freqfeed.config import ConfigError, InfluxDBConfig
from freqfeed.influxdb_versions import Server, detect
from freqfeed.influxql import Select, Series, quote_identifier

log = logging.getLogger(__name__)

__all__ = ["InfluxDB", "InfluxDBAuthError", "InfluxDBConfigError", "InfluxDBError", "InfluxDBFileLimit",
           "InfluxDBNotFound", "InfluxDBRejected", "InfluxDBUnavailable", "Select", "Series"]

BATCH_STATEMENTS = 500  # statements per request where the server takes several (a request stays ~100 kB)
MIN_SPAN_MS = 600_000  # the narrowest window a split read goes down to
NOT_EXECUTED = "not executed"


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


class InfluxDBConfigError(InfluxDBError, ConfigError):
    """The configuration asks for something this server does not have (e.g. retention_policy on 3.x):
    a configuration error (exit status 2), found once the server is known."""


class InfluxDBFileLimit(InfluxDBRejected):
    """InfluxDB 3 Core refused a query that would scan more Parquet files than its limit."""

    def __init__(self, message: str, files: int | None, limit: int | None) -> None:
        super().__init__(message)
        self.files, self.limit = files, limit


# InfluxDB 3.0-3.6 answer a request holding several statements with HTTP 500 and the plain text
# "must provide only one InfluxQl statement per query" (influxdb3_server/src/http.rs:221 at v3.6.0).
# 3 Core refuses a query over too many Parquet files with "Query would exceed file limit of 432 parquet
# files. Please specify a smaller time range ..." (influxdb3_write/src/write_buffer/mod.rs:388 at v3.6.0):
# HTTP 500 text on 3.6, a statement error on 3.7. Both are recognised by substance, not by the wrapping.
_SINGLE_STATEMENT = re.compile(r"only one influxql statement", re.IGNORECASE)
_FILE_LIMIT = re.compile(r"(?:would scan (\d+) parquet files.*?)?exceed file limit of (\d+) parquet files",
                         re.IGNORECASE)
# 3.6 answers what it cannot parse or plan with HTTP 500 and plain text: not worth retrying.
_NOT_TRANSIENT = re.compile(r"error in InfluxQL statement|error while planning query|must specify a 'db'|"
                            r"provided a database in both|not implemented", re.IGNORECASE)


class InfluxDB:
    def __init__(self, config: InfluxDBConfig, *, retries: int = 3, backoff: float = 0.5,
                 concurrency: int | None = None) -> None:
        self.config = config
        self.retries = retries
        self.backoff = backoff
        self.concurrency = concurrency or config.concurrency
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._server: Server | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._spans: dict[str, int] = {}  # measurement -> the window a file limit taught us
        self.errors: dict[str, int] = {"write": 0, "query": 0, "ping": 0}  # failed requests (freqfeed.metrics)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def __enter__(self) -> InfluxDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the server ------------------------------------------------------------------------------

    @property
    def server(self) -> Server:
        """The server behind the URL, detected from /ping on first use."""
        if self._server is None:
            self.ping()
        assert self._server is not None
        return self._server

    def ping(self) -> Server:
        """Check InfluxDB answers and find out which server it is (logged the first time)."""
        response = self._request("GET", "/ping", what="ping", ok_statuses=(401, 403))
        server = detect(response.status_code, response.headers, response.content[:2000])
        if self._server is None or self._server != server:
            log.info("InfluxDB at %s: %s", self.config.url, server.label)
        self._server = server
        self._check_config(server)
        return server

    def _check_config(self, server: Server) -> None:
        rp = self.config.retention_policy
        meaning = server.caps.retention_policy
        if not rp or meaning in ("native", "dbrp"):
            return
        if meaning == "separate-database":
            why = (f"there `rp` writes to a separate database named {self.config.database + '/' + rp!r}"
                   + (" and 3.0-3.6 ignore it on reads, so written data would be invisible"
                      if not server.caps.multi_statement else ""))
        else:
            why = "it has no retention policies"
        raise InfluxDBConfigError(
            f"influxdb.retention_policy: {rp!r} cannot be used with {server.label}: {why}. Remove "
            f"influxdb.retention_policy; the database's own retention applies ({self._create_hint(rp=None)})")

    def _create_hint(self, rp: str | None = "") -> str:
        if self._server is None:
            return f"create database {self.config.database!r}"
        return self._server.create_instructions(self.config.database,
                                                self.config.retention_policy if rp == "" else rp,
                                                self.config.retention_days)

    def _rp_param(self) -> dict[str, str]:
        rp = self.config.retention_policy
        if rp and self.server.caps.retention_policy in ("native", "dbrp"):
            return {"rp": rp}
        return {}

    # -- writes ----------------------------------------------------------------------------------

    def write(self, lines: Iterable[str]) -> None:
        """Write line-protocol points with millisecond timestamps."""
        body = "\n".join(lines).encode()
        if not body:
            return
        params = {"db": self.config.database, "precision": "ms", **self._rp_param()}
        self._request("POST", "/write", params=params, data=body, what="write")

    # -- queries ---------------------------------------------------------------------------------

    def query(self, statements: str | Sequence[str]) -> list[list[Series]]:
        """Run InfluxQL statements against the database; one list of series per statement.

        Raises the first statement's error, if any.
        """
        answers = self.query_each([statements] if isinstance(statements, str) else list(statements))
        for answer in answers:
            if isinstance(answer, InfluxDBError):
                raise answer
        return answers  # type: ignore[return-value]

    def query_each(self, statements: Sequence[str]) -> list[list[Series] | InfluxDBError]:
        """Run statements, batched where the server accepts several per request; each gets its answer
        or its own error. Errors that concern the whole database (unreachable, credentials, database
        missing) are raised instead."""
        if not statements:
            return []
        if self.server.caps.multi_statement:
            try:
                return self._batched(statements)
            except _SingleStatementOnly:
                log.warning("%s refuses several statements per request; sending one per request from now on",
                            self.server.label)
                self._server = replace(self.server, caps=replace(self.server.caps, multi_statement=False))
        return self._one_by_one(statements)

    def _batched(self, statements: Sequence[str]) -> list[list[Series] | InfluxDBError]:
        answers: list[list[Series] | InfluxDBError | None] = [None] * len(statements)
        pending = list(range(len(statements)))
        while pending:
            batch = pending[:BATCH_STATEMENTS]
            try:
                results = self._post_query([statements[i] for i in batch])
            except _SingleStatementOnly:
                raise
            except InfluxDBRejected:
                if len(batch) == 1:
                    raise
                # 1.x refuses the whole request when one statement does not parse: find it alone.
                for index in batch:
                    answers[index] = self._alone(statements[index])
                pending = pending[len(batch):]
                continue
            consumed = 0
            for position, index in enumerate(batch):
                result = results.get(position)
                consumed = position + 1
                if isinstance(result, list):
                    answers[index] = result
                    continue
                # The first statement without an answer. Its error is its own only when it is the last of the
                # request and every statement was answered: 1.x/2.x report a failing statement as "not
                # executed" and leave out the rest, 3.7 answers a parse error anywhere as statement 0's.
                # Alone it gives its real answer; the statements after it go again in the next request.
                trusted = result is not None and not _not_executed(result) and (
                    len(batch) == 1 or (position == len(batch) - 1 and len(results) == len(batch)))
                answers[index] = result if trusted and result is not None else self._alone(statements[index])
                break
            pending = pending[consumed:]
        return answers  # type: ignore[return-value]

    def _alone(self, statement: str) -> list[Series] | InfluxDBError:
        try:
            answer = self._post_query([statement]).get(0)
        except (InfluxDBRejected, InfluxDBConfigError) as exc:
            return exc
        return answer if answer is not None else InfluxDBRejected(f"InfluxDB gave no answer to: {statement[:200]}")

    def _one_by_one(self, statements: Sequence[str]) -> list[list[Series] | InfluxDBError]:
        if len(statements) == 1 or self.concurrency <= 1:
            return [self._alone(s) for s in statements]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="influxdb")
        down: list[InfluxDBError] = []  # once one request finds the server gone, the others do not try

        def run(statement: str) -> list[Series] | InfluxDBError:
            if down:
                raise down[0]
            try:
                return self._alone(statement)
            except (InfluxDBUnavailable, InfluxDBAuthError, InfluxDBNotFound) as exc:
                down.append(exc)
                raise

        return list(self._pool.map(run, statements))

    def _post_query(self, statements: list[str]) -> dict[int, list[Series] | InfluxDBError]:
        data = {"q": ";\n".join(statements), "db": self.config.database, "epoch": "ms", **self._rp_param()}
        response = self._request("POST", "/query", data=data, what="query")
        try:
            payload = response.json()
        except ValueError:
            raise InfluxDBRejected(f"InfluxDB answered the query with something that is not JSON: "
                                   f"{response.text[:200]!r}") from None
        if isinstance(payload, dict) and payload.get("error") and not payload.get("results"):
            raise self._statement_error(str(payload["error"]))
        answers: dict[int, list[Series] | InfluxDBError] = {}
        for position, result in enumerate(payload.get("results") or []):
            index = int(result.get("statement_id", position))
            if "error" in result:
                error = str(result["error"])
                if error == NOT_EXECUTED:
                    answers[index] = _NotExecuted(error)
                    continue
                problem = self._statement_error(error)
                if isinstance(problem, (InfluxDBNotFound, InfluxDBAuthError)):
                    raise problem  # the database or the credentials: every statement fails alike
                answers[index] = problem
            else:
                answers[index] = [_series(s) for s in result.get("series") or []]
        return answers

    # -- time-bounded reads ----------------------------------------------------------------------

    def select(self, selects: Sequence[Select]) -> list[list[Series]]:
        """Answers of several Selects; raises the first error."""
        answers = self.select_each(selects)
        for answer in answers:
            if isinstance(answer, InfluxDBError):
                raise answer
        return answers  # type: ignore[return-value]

    def select_each(self, selects: Sequence[Select]) -> list[list[Series] | InfluxDBError]:
        """Each Select's answer or its error.

        Where the server limits what one query may scan (InfluxDB 3 Core's Parquet file limit), a Select
        is split into consecutive time windows sized for the measurement's density, narrowed further when
        the server still refuses one, and the windows' answers are merged into the answer of the whole
        range. A `newest` Select walks back from its upper bound, one window per round, until it has its
        rows, widening the window over sparse history. All Selects advance together, so each round is one
        batch of statements.
        """
        plans = [_Plan(select, self._span(select)) for select in selects]
        while True:
            work = [(plan, window) for plan in plans if not plan.done for window in plan.next_windows()]
            if not work:
                break
            results = self.query_each([plan.select.render(*window, limit=plan.limit) for plan, window in work])
            by_plan: dict[int, list[tuple[tuple[int, int], list[Series] | InfluxDBError]]] = {}
            for (plan, window), result in zip(work, results, strict=True):
                by_plan.setdefault(id(plan), []).append((window, result))
            for plan in plans:
                if id(plan) in by_plan:
                    plan.feed(by_plan[id(plan)], self)
        return [plan.answer() for plan in plans]

    def _span(self, select: Select) -> int | None:
        default = self.server.caps.split_span_ms(select.density_ms)
        learned = self._spans.get(select.measurement)
        if learned is None:
            return default
        return learned if default is None else min(default, learned)

    def _narrower(self, select: Select, span: int, error: InfluxDBFileLimit) -> int | None:
        """A window short enough after a file-limit refusal; None when it cannot go lower."""
        if span <= MIN_SPAN_MS:
            return None
        ratio = 0.5
        if error.files and error.limit:
            ratio = min(0.5, 0.8 * error.limit / error.files)
        narrower = max(MIN_SPAN_MS, int(span * ratio))
        self._spans[select.measurement] = min(narrower, self._spans.get(select.measurement, narrower))
        log.info("%s refused a query of %s over %.1f h (%s); querying %.2f h windows", self.server.label,
                 select.measurement, span / 3.6e6, error, narrower / 3.6e6)
        return narrower

    # -- databases -------------------------------------------------------------------------------

    def ensure_database(self) -> None:
        """Make sure the database (and a configured retention policy) exists.

        On InfluxDB 1.x it is created with a `retention_days` retention policy when missing (needs admin
        rights; without them it is assumed to exist). Elsewhere freqfeed never creates anything: a missing
        database raises InfluxDBNotFound with the command the operator runs.
        """
        server = self.server
        db = self.config.database
        rp = self.config.retention_policy
        duration = f"{self.config.retention_days}d"
        if not server.caps.creates_databases:
            if self.database_exists() is False:
                raise InfluxDBNotFound(
                    f"{server.label} at {self.config.url} has no database {db!r}; freqfeed creates databases only "
                    f"on InfluxDB 1.x. Create it: {self._create_hint()}")
            if rp and server.caps.retention_policy == "dbrp" and rp not in self.retention_policies():
                raise InfluxDBNotFound(
                    f"{server.label} has no DBRP mapping for database {db!r} and retention policy {rp!r}: "
                    f"influx v1 dbrp create --db {db} --rp {rp} --bucket-id <bucket id>, or remove "
                    f"influxdb.retention_policy")
            return
        try:
            databases = {row[0] for s in self.query_admin("SHOW DATABASES") for row in s.values}
        except (InfluxDBAuthError, InfluxDBRejected, InfluxDBNotFound) as exc:
            log.info("cannot list databases (%s); assuming database %r exists", exc, db)
            return
        if db not in databases:
            statement = f"CREATE DATABASE {quote_identifier(db)} WITH DURATION {duration}"
            if rp:
                statement += f" NAME {quote_identifier(rp)}"
            self.query_admin(statement)
            log.info("created InfluxDB database %r with a %s retention policy", db, duration)
            return
        if rp and rp not in self.retention_policies():
            self.query_admin(f"CREATE RETENTION POLICY {quote_identifier(rp)} ON {quote_identifier(db)} "
                             f"DURATION {duration} REPLICATION 1")
            log.info("created retention policy %r (%s) on %r", rp, duration, db)

    def database_exists(self) -> bool | None:
        """Whether the database exists; None when this server or these credentials cannot tell."""
        if self.server.caps.lists_databases:
            try:
                return self.config.database in {row[0] for s in self.query_admin("SHOW DATABASES") for row in s.values}
            except (InfluxDBAuthError, InfluxDBRejected):
                return None
        try:
            self.query("SHOW MEASUREMENTS LIMIT 1")
        except InfluxDBNotFound:
            return False
        except (InfluxDBAuthError, InfluxDBRejected):
            return None
        return True

    def retention_policies(self) -> dict[str, dict[str, Any]]:
        """SHOW RETENTION POLICIES of the database: name -> its row (duration, default, ...)."""
        answer = self.query_admin(f"SHOW RETENTION POLICIES ON {quote_identifier(self.config.database)}")
        return {str(row.get("name")): row for s in answer for row in s.rows()}

    def query_admin(self, statement: str) -> list[Series]:
        """A statement that does not run against the configured database (SHOW/CREATE DATABASE ...)."""
        response = self._request("POST", "/query", data={"q": statement}, what="query")
        payload = response.json()
        if isinstance(payload, dict) and payload.get("error") and not payload.get("results"):
            raise self._statement_error(str(payload["error"]))
        result = (payload.get("results") or [{}])[0]
        if "error" in result:
            raise self._statement_error(result["error"])
        return [_series(s) for s in result.get("series") or []]

    def _target(self) -> str:
        return (f"database {self.config.database!r}"
                + (f" / retention policy {self.config.retention_policy!r}" if self.config.retention_policy else "")
                + f" at {self.config.url}")

    # -- transport ------------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.verify = tls_verify(self.config)
            if self.config.token:
                session.headers["Authorization"] = f"Token {self.config.token}"
            elif self.config.username:
                session.auth = (self.config.username, self.config.password or "")
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def _request(self, method: str, path: str, *, what: str, ok_statuses: tuple[int, ...] = (),
                 **kwargs: Any) -> requests.Response:
        url = self.config.url + path
        attempt = 0
        while True:
            try:
                # verify per request: a session's own `verify` loses to REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
                response = self._session().request(method, url, timeout=self.config.timeout,
                                                   verify=tls_verify(self.config), **kwargs)
            except requests.Timeout:
                error: InfluxDBError = InfluxDBUnavailable(
                    f"InfluxDB {what} timed out after {self.config.timeout:g}s ({self.config.url})")
            except requests.exceptions.SSLError as exc:
                error = InfluxDBUnavailable(f"InfluxDB at {self.config.url}: TLS failed ({_tls_reason(exc)}); "
                                            f"{tls_state(self.config)}: set influxdb.ca_file to the CA that signed "
                                            "InfluxDB's certificate (or check the URL's host name)")
            except requests.ConnectionError as exc:
                error = InfluxDBUnavailable(f"InfluxDB is not reachable at {self.config.url}: {_reason(exc)}")
            else:
                if response.status_code < 300 or response.status_code in ok_statuses:
                    return response
                error = self._http_error(response, what)
            if not isinstance(error, InfluxDBUnavailable) or attempt >= self.retries:
                self.errors[what] = self.errors.get(what, 0) + 1
                raise error
            delay = self.backoff * 2**attempt
            attempt += 1
            log.warning("%s; retry %d/%d in %.1fs", error, attempt, self.retries, delay)
            time.sleep(delay)

    def _http_error(self, response: requests.Response, what: str) -> InfluxDBError:
        message = _error_text(response)
        status = response.status_code
        if _SINGLE_STATEMENT.search(message):
            return _SingleStatementOnly(message)
        if _FILE_LIMIT.search(message) or (status >= 500 and _NOT_TRANSIENT.search(message)):
            return self._statement_error(message)
        if status in (401, 403):
            return InfluxDBAuthError(
                f"InfluxDB refused the {what} with HTTP {status} ({message}): check influxdb.token "
                f"(or FREQFEED_INFLUXDB_TOKEN) / influxdb.username and password, and the permissions "
                f"on {self._target()}")
        if status == 404 or "not found" in message:
            return InfluxDBNotFound(
                f"InfluxDB {what} failed with HTTP {status} ({message}): create "
                f"{self._target()} or fix influxdb.database / influxdb.retention_policy"
                + (f" ({self._create_hint()})" if self._server is not None else ""))
        if status == 429 or status >= 500:
            return InfluxDBUnavailable(f"InfluxDB {what} failed with HTTP {status}: {message}")
        return InfluxDBRejected(f"InfluxDB rejected the {what} with HTTP {status}: {message}")

    def _statement_error(self, message: str) -> InfluxDBError:
        limit = _FILE_LIMIT.search(message)
        if limit:
            return InfluxDBFileLimit(f"InfluxDB refused a query: {message}",
                                     int(limit.group(1)) if limit.group(1) else None, int(limit.group(2)))
        if "not found" in message:
            hint = ""
            if self._server is not None and "database" in message:
                hint = f" ({self._create_hint()})"
            return InfluxDBNotFound(
                f"InfluxDB: {message}: create {self._target()} or fix influxdb.database / "
                f"influxdb.retention_policy{hint}")
        if "authoriz" in message or "permission" in message:
            return InfluxDBAuthError(f"InfluxDB: {message}: check the credentials' permissions")
        return InfluxDBRejected(f"InfluxDB rejected a query: {message}")


class _SingleStatementOnly(InfluxDBRejected):
    """The server wants one statement per request (InfluxDB 3 before 3.7)."""


class _NotExecuted(InfluxDBRejected):
    """1.x/2.x did not run this statement because an earlier one in the request failed."""


def _not_executed(result: object) -> bool:
    return isinstance(result, _NotExecuted)


class _Plan:
    """How one Select is answered in windows (see InfluxDB.select_each)."""

    def __init__(self, select: Select, span: int | None) -> None:
        self.select = select
        self.span = span
        self.done = False
        self.error: InfluxDBError | None = None
        self.parts: dict[tuple[int, int], list[Series]] = {}
        self.newest = select.newest
        self.limit: int | None = select.newest
        if self.newest:
            self.upper = select.until_ms  # the newest-first walk: everything above is answered
            self.rows: dict[tuple[tuple[str, str], ...], int] = {}  # per series
            self.queue: list[tuple[int, int]] = []
        else:
            self.queue = select.windows(span)

    def next_windows(self) -> list[tuple[int, int]]:
        if not self.newest:
            return list(self.queue)
        if self.span is None:
            return [(self.select.since_ms, self.upper)]
        return [(max(self.select.since_ms, self.upper - self.span + 1), self.upper)]

    def feed(self, results: list[tuple[tuple[int, int], list[Series] | InfluxDBError]], client: InfluxDB) -> None:
        for window, result in results:
            if isinstance(result, InfluxDBFileLimit):
                narrower = client._narrower(self.select, window[1] - window[0] + 1, result)
                if narrower is None:
                    self.error, self.done = InfluxDBRejected(
                        f"{result} — even over {MIN_SPAN_MS // 60_000}-minute windows: raise the server's "
                        f"query file limit (influxdb3 serve --query-file-limit)"), True
                    return
                self.span = narrower
                if not self.newest:  # split this window again, keep the others
                    self.queue.remove(window)
                    self.queue += self.select.narrowed(*window).windows(narrower)
                continue
            if isinstance(result, InfluxDBError):
                self.error, self.done = result, True
                return
            self.parts[window] = result
            if self.newest:
                found = 0
                for series in result:
                    key = tuple(sorted(series.tags.items()))
                    self.rows[key] = self.rows.get(key, 0) + len(series.values)
                    found += len(series.values)
                self.upper = window[0] - 1
                short = [self.newest - n for n in self.rows.values() if n < self.newest]
                complete = len(self.rows) >= self.select.series_expected and not short
                self.limit = self.newest if len(self.rows) < self.select.series_expected else max(short, default=1)
                if complete or self.upper < self.select.since_ms:
                    self.done = True
                elif (self.span is not None and found * max(self.select.density_ms, 1) * 4
                      < self.span * max(len(self.rows), 1)):
                    self.span *= 4  # sparse here: reach further back per round
            else:
                self.queue.remove(window)
        if not self.newest and not self.queue:
            self.done = True

    def answer(self) -> list[Series] | InfluxDBError:
        if self.error is not None:
            return self.error
        return self.select.merge([self.parts[window] for window in sorted(self.parts)])


def _series(raw: dict[str, Any]) -> Series:
    return Series(raw.get("name", ""), raw.get("tags") or {}, list(raw.get("columns") or []),
                  raw.get("values") or [])


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, dict):
            return str(body.get("error") or body.get("message") or body)
    except ValueError:
        pass
    return (response.text or response.reason or "").strip()[:300]


def tls_verify(config: InfluxDBConfig) -> bool | str:
    """What requests' `verify` gets: the CA file, the system's CA store (True), or False (with a warning once,
    and urllib3's per-request warning silenced: one clear line, not one per request)."""
    if not config.url.startswith("https://"):
        return True
    if not config.verify_tls:
        global _UNVERIFIED_WARNED
        if not _UNVERIFIED_WARNED:
            _UNVERIFIED_WARNED = True
            log.warning("InfluxDB at %s: TLS certificate NOT verified (influxdb.verify_tls: false): anyone on the "
                        "path can read the credentials; set influxdb.ca_file instead", config.url)
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        return False
    return config.ca_file or True


def tls_state(config: InfluxDBConfig) -> str:
    """How the connection to InfluxDB is protected, in words (check-influxdb, errors)."""
    if not config.url.startswith("https://"):
        return "plain http: credentials and data travel unencrypted"
    if not config.verify_tls:
        return "https, certificate NOT verified (influxdb.verify_tls: false)"
    if config.ca_file:
        return f"https, certificate verified with the CA file {config.ca_file}"
    return "https, certificate verified with the system's CA store"


_UNVERIFIED_WARNED = False


def _tls_reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("certificate verify failed: self-signed certificate in certificate chain",
                   "certificate verify failed: self signed certificate in certificate chain",
                   "certificate verify failed: unable to get local issuer certificate",
                   "certificate verify failed: self-signed certificate", "certificate verify failed: self signed",
                   "certificate verify failed: certificate has expired", "Hostname mismatch",
                   "certificate verify failed", "wrong version number", "EOF occurred"):
        if marker in text:
            return marker
    return text[:200]


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "No route to host", "timed out",
                   "Connection reset"):
        if marker in text:
            return marker.lower()
    return text[:200]
