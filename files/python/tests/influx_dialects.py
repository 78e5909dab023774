"""InfluxDB 2.7, 3.6 Core and 3.7 Core in front of the real influxd: their v1-API dialects, nothing else.

No 2.x or 3.x server installs here, so each dialect is an HTTP layer in front of Debian's influxd
1.6.7 that reproduces how that server's /ping, /write and /query differ, as read from InfluxDB's own
source (influxdata/influxdb at v2.7.12, v3.6.0, v3.7.0; influxdata/influxdb3_core at the revisions those
tags pin, written core@f1bc156 for 3.6.0 and core@c7612d1 for 3.7.0; influxdata/docs-v2). Every
behaviour below names the file it comes from. Storage and queries stay influxd's: a dialect only
refuses, renames (db/rp), reshapes (statement ids, error wrapping) or splits what influxd answers;
it never invents data.

What is emulated, per dialect:
- /ping: status, headers, body, whether it needs a token;
- authentication of /write and /query with a token (the only credential freqfeed sends these servers);
- several statements per request: 2.x stops at the first failure ("not executed"), 3.6 refuses the
  request, 3.7 answers each statement on its own;
- CREATE/DROP DATABASE and RETENTION POLICY, SHOW DATABASES, SHOW RETENTION POLICIES;
- what `rp` means on writes and reads; 3.x creating an unknown database on first write (5 at most);
- 3 Core's limit of 432 Parquet files per query (one file per table and 10-minute gen1 block that
  holds data, counted on influxd's real data).
"""

# ruff: noqa: PLR0911 - a catalogue of each server's answers, one return per documented case
from __future__ import annotations

import json
import re
import threading
import uuid
from base64 import b64decode
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

TOKEN = "dialect-test-token"
GEN1_MS = 600_000  # influxdb@v3.6.0:influxdb3/src/commands/serve.rs:238-249 (--gen1-duration, default 10m)
FILE_LIMIT = 432  # influxdb@v3.6.0:influxdb3_write/src/write_buffer/mod.rs:276 (query_file_limit.unwrap_or(432))
# influxdb@v3.6.0:influxdb3_write/src/write_buffer/mod.rs:388-401 (same text at v3.7.0)
FILE_LIMIT_TEXT = (f"Query would exceed file limit of {FILE_LIMIT} parquet files. Please specify a smaller time "
                   "range for your query. You can increase the file limit with the `--query-file-limit` option "
                   "in the serve command, however, query performance will be slower and the server may get OOM "
                   "killed or become unstable as a result")
CORE_DATABASE_LIMIT = 5  # influxdb@v3.6.0:influxdb3_catalog/src/catalog/versions/v2.rs:159-164 (NUM_DBS_LIMIT)


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    abort_after_headers: bool = False  # send the status and headers, then drop the connection

    @classmethod
    def json(cls, status: int, payload: Any, **headers: str) -> Answer:
        return cls(status, json.dumps(payload).encode() + b"\n", {"Content-Type": "application/json", **headers})

    @classmethod
    def text(cls, status: int, text: str) -> Answer:
        return cls(status, text.encode())  # 3.x sends these with no Content-Type


def split_statements(q: str) -> list[str]:
    """InfluxQL statements of a `q`, split on `;` outside quotes."""
    statements, current, quote, escaped = [], [], "", False
    for char in q:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == ";":
            statements.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    statements.append("".join(current).strip())
    return [s for s in statements if s]


_TIME_BOUND = re.compile(r"\btime\s*(>=|>|<=|<)\s*(\d+)ms", re.IGNORECASE)
_FROM = re.compile(r"\bFROM\s+(\"(?:[^\"\\]|\\.)*\"|[A-Za-z0-9_]+)", re.IGNORECASE)
_ADMIN = re.compile(r"^\s*(CREATE|DROP|ALTER)\s+(DATABASE|RETENTION\s+POLICY)\b", re.IGNORECASE)
_DELETE = re.compile(r"^\s*(DELETE|DROP\s+MEASUREMENT)\b", re.IGNORECASE)
_SHOW_DATABASES = re.compile(r"^\s*SHOW\s+DATABASES\b", re.IGNORECASE)
_SHOW_POLICIES = re.compile(r"^\s*SHOW\s+RETENTION\s+POLICIES(?:\s+ON\s+(\"(?:[^\"\\]|\\.)*\"|\S+))?",
                            re.IGNORECASE)


def _unquote(identifier: str) -> str:
    if identifier.startswith('"'):
        return re.sub(r"\\(.)", r"\1", identifier[1:-1])
    return identifier


def _humantime_days(duration: str) -> str | None:
    """1.x's '8640h0m0s' as humantime ('360days'); None for infinite ('0s')."""
    hours = sum(float(v) * {"h": 1, "m": 1 / 60, "s": 1 / 3600}[u] for v, u in re.findall(r"([\d.]+)(h|m|s)", duration))
    if hours == 0:
        return None
    return f"{hours / 24:g}days" if hours % 24 == 0 else f"{hours:g}h"


class Dialect:
    """The 1.x-compatible behaviour influxd has; subclasses change what their server does differently."""

    name = "1.x"
    version = ""
    build = ""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.token = TOKEN
        self.requests: list[tuple[str, str]] = []
        self.queries: list[str] = []  # every `q` received, as sent
        self.file_limit = FILE_LIMIT  # 3 Core: --query-file-limit
        # The databases (buckets) this server has: influxd's, but each dialect sees only its own.
        self.catalog: set[str] = set()
        self._local = threading.local()

    # -- influxd, the storage and query engine behind every dialect -------------------------------

    @staticmethod
    def stored_as(name: str) -> str:
        """influxd refuses '/' in a database name, which 2.x buckets and 3.x "db/rp" databases may hold."""
        return name.replace("/", "__")

    def session(self) -> requests.Session:
        """A kept-alive connection to influxd per handler thread."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def influxd(self, q: str, db: str | None = None, epoch: str | None = "ms") -> dict[str, Any]:
        data = {"q": q, **({"db": self.stored_as(db)} if db else {}), **({"epoch": epoch} if epoch else {})}
        response = self.session().post(f"{self.upstream}/query", data=data, timeout=30)
        return dict(response.json())

    def databases(self) -> list[str]:
        answer = self.influxd("SHOW DATABASES")
        series = answer["results"][0].get("series") or [{}]
        stored = {row[0] for row in series[0].get("values") or []}
        return sorted(name for name in self.catalog if self.stored_as(name) in stored)

    def ensure_database(self, name: str, retention_days: int | None = None) -> None:
        """What an operator's `influx bucket create` / `influxdb3 create database` does (or a first write)."""
        duration = f" WITH DURATION {retention_days}d" if retention_days else ""
        self.influxd(f'CREATE DATABASE "{self.stored_as(name)}"{duration}')
        self.catalog.add(name)

    def drop_database(self, name: str) -> None:
        self.influxd(f'DROP DATABASE "{self.stored_as(name)}"')
        self.catalog.discard(name)

    # -- requests --------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> Answer:
        if path == "/ping":
            return self.ping(method, query, headers)
        denied = self.authenticate(path, query, headers)
        if denied is not None:
            return denied
        if path == "/write" and method == "POST":
            return self.write(query, headers, body)
        if path == "/query" and method in ("GET", "POST"):
            params = dict(query)
            if method == "POST" and body:
                params.update(dict(parse_qsl(body.decode(), keep_blank_values=True)))
            self.queries.append(params.get("q", ""))
            return self.query(params)
        return Answer.text(404, "not found")

    def ping(self, method: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        raise NotImplementedError

    def authenticate(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Answer | None:
        raise NotImplementedError

    def write(self, query: dict[str, str], headers: dict[str, str], body: bytes) -> Answer:
        raise NotImplementedError

    def query(self, params: dict[str, str]) -> Answer:
        raise NotImplementedError

    def forward_write(self, db: str, precision: str, body: bytes) -> Answer:
        params = {"db": self.stored_as(db), "precision": precision}
        response = self.session().post(f"{self.upstream}/write", params=params, data=body, timeout=30)
        return Answer(response.status_code, response.content, {"Content-Type": "application/json"})

    # -- 3 Core's Parquet file limit ------------------------------------------------------------

    def files_scanned(self, statement: str, db: str) -> int:
        """Parquet files a SELECT would scan on 3 Core: one per 10-minute gen1 block of its measurement that
        holds data within the statement's time range, as the planner counts the table's files after
        time-predicate filtering (influxdb@v3.6.0:influxdb3_write/src/write_buffer/mod.rs:388,
        get_files_filtered). Counted on influxd's real data, and only where the range is long enough to
        reach the limit (shorter ones count as 0)."""
        match = _FROM.search(statement)
        if not match:
            return 0
        measurement = _unquote(match.group(1))
        lower, upper = None, None
        for op, value in _TIME_BOUND.findall(statement):
            bound = int(value)
            if op in (">", ">="):
                bound += op == ">"
                lower = bound if lower is None else max(lower, bound)
            else:
                bound -= op == "<"
                upper = bound if upper is None else min(upper, bound)
        if lower is not None and upper is not None and (upper - lower) // GEN1_MS + 1 <= self.file_limit:
            return 0  # a range this short cannot reach the limit: no need to count
        quoted = '"' + measurement.replace('"', '\\"') + '"'
        first = self.influxd(f"SELECT * FROM {quoted} ORDER BY time ASC LIMIT 1", db)
        last = self.influxd(f"SELECT * FROM {quoted} ORDER BY time DESC LIMIT 1", db)
        try:
            oldest = first["results"][0]["series"][0]["values"][0][0]
            newest = last["results"][0]["series"][0]["values"][0][0]
        except (KeyError, IndexError):
            return 0  # no data, no files
        lower = oldest if lower is None else max(lower, oldest)
        upper = newest if upper is None else min(upper, newest)
        if upper < lower:
            return 0
        if (upper - lower) // GEN1_MS + 1 <= self.file_limit:
            return 0  # too short a range to reach the limit: no need to count (the answer is the same)
        blocks = self.influxd(f"SELECT count(*) FROM {quoted} WHERE time >= {lower}ms AND time <= {upper}ms "
                              f"GROUP BY time({GEN1_MS // 60_000}m) fill(none)", db)
        series = blocks["results"][0].get("series") or []
        return sum(len(s.get("values") or []) for s in series)


# ---------------------------------------------------------------------------------------------------
# InfluxDB 2.7 OSS


class V2Dialect(Dialect):
    name = "2.7"
    version = "v2.7.12"  # real 2.x servers send a leading "v" (captures; the value is set at build time)
    build = "OSS"

    def headers(self) -> dict[str, str]:
        # influxdb@v2.7.12:http/handler.go:129-135: on every response
        return {"X-Influxdb-Build": self.build, "X-Influxdb-Version": self.version}

    def ping(self, method: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        # influxdb@v2.7.12:http/legacy/ping_handler.go:18-27: GET and HEAD, 204, no body, no auth
        # (influx1x_authentication_handler.go:38-42)
        if method not in ("GET", "HEAD"):
            return Answer(405, b"", self.headers())
        return Answer(204, b"", self.headers())

    def authenticate(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Answer | None:
        # influxdb@v2.7.12:http/legacy/influx1x_authentication_handler.go:95-145: u/p, "Token <t>",
        # "Token <user>:<t>", Basic user:token; not Bearer. Missing: 401 unauthorized access; unknown: 401
        # Unauthorized (credentials.go:12-15). Errors carry X-Platform-Error-Code.
        token = None
        auth = headers.get("authorization", "")
        if query.get("u") and query.get("p"):
            token = query["p"]
        elif auth.startswith("Token "):
            token = auth[len("Token "):].split(":", 1)[-1]
        elif auth.startswith("Basic "):
            try:
                token = b64decode(auth[len("Basic "):]).decode().split(":", 1)[1]
            except (ValueError, IndexError):
                token = None
        if token is None:
            return Answer.json(401, {"code": "unauthorized", "message": "unauthorized access"},
                               **{"X-Platform-Error-Code": "unauthorized"}, **self.headers())
        if token != self.token:
            return Answer.json(401, {"code": "unauthorized", "message": "Unauthorized"},
                               **{"X-Platform-Error-Code": "unauthorized"}, **self.headers())
        return None

    def bucket(self, db: str, rp: str | None) -> str:
        # Virtual DBRP mappings since 2.4 (influxdb@v2.7.12:dbrp/service.go:249-255,397-414): bucket "name"
        # is database "name", rp autogen (default); bucket "db/rp" is database db, rp rp.
        return db if rp in (None, "", "autogen") else f"{db}/{rp}"

    def write(self, query: dict[str, str], headers: dict[str, str], body: bytes) -> Answer:
        # influxdb@v2.7.12:http/legacy/write_handler.go:218-267
        db = query.get("db")
        if not db:
            return Answer.json(400, {"code": "invalid", "message": "missing db"}, **self.headers())
        bucket = self.bucket(db, query.get("rp"))
        if bucket not in self.databases():
            return Answer.json(404, {"code": "not found", "message": "no dbrp mapping found"},
                               **{"X-Platform-Error-Code": "not found"}, **self.headers())
        answer = self.forward_write(bucket, query.get("precision", "ns"), body)
        answer.headers.update(self.headers())
        return answer

    def query(self, params: dict[str, str]) -> Answer:
        db, rp = params.get("db"), params.get("rp")
        statements = split_statements(params.get("q", ""))
        bucket = self.bucket(db, rp) if db else None
        results: list[dict[str, Any]] = []
        for index, statement in enumerate(statements):
            try:
                result = self.statement(statement, bucket, params.get("epoch"))
            except _ParseError as exc:
                # influxdb@v2.7.12:influxql/query/proxy_executor.go:40-47: the whole query is refused
                message = str(exc).removeprefix("error parsing query: ")
                return Answer.json(400, {"code": "invalid", "message": f"failed to parse query: {message}"},
                                   **self.headers())
            result["statement_id"] = index
            if "error" in result:
                # influxdb@v2.7.12:influxql/query/executor.go:300-327 stops at the first failing statement;
                # execution_context.go:27 and proxy_executor.go:109-113 then report it as "not executed"
                # unless it was the last one, and leave out the rest (the same code as 1.x).
                if index < len(statements) - 1:
                    result = {"statement_id": index, "error": "not executed"}
                results.append(result)
                break
            results.append(result)
        return Answer.json(200, {"results": results}, **self.headers())

    def statement(self, statement: str, bucket: str | None, epoch: str | None) -> dict[str, Any]:
        admin = _ADMIN.match(statement)
        if admin:
            # influxdb@v2.7.12:influxql/errors.go:8-10, v1/coordinator/statement_executor.go:56-137
            op = " ".join(f"{admin.group(1)} {admin.group(2)}".upper().split())
            return {"error": f"not implemented: {op}"}
        if _SHOW_DATABASES.match(statement):
            # statement_executor.go:320-349: the distinct DBRP databases, physical and virtual
            names = sorted({name.split("/", 1)[0] for name in self.databases() if name != "_internal"})
            return {"series": [{"name": "databases", "columns": ["name"], "values": [[n] for n in names]}]}
        policies = _SHOW_POLICIES.match(statement)
        if policies:
            # statement_executor.go:527-558: duration always "0s"; the virtual mapping is autogen, default
            db = _unquote(policies.group(1)) if policies.group(1) else (bucket or "").split("/", 1)[0]
            if not db:
                return {"error": "database name required"}
            buckets = self.databases()
            if db not in buckets and not any(b.startswith(db + "/") for b in buckets):
                return {"error": f"database not found: {db}"}
            rows = [["autogen", "0s", "168h0m0s", 1, True]] if db in buckets else []
            rows += [[b.split("/", 1)[1], "0s", "168h0m0s", 1, False] for b in buckets if b.startswith(db + "/")]
            return {"series": [{"columns": ["name", "duration", "shardGroupDuration", "replicaN", "default"],
                                "values": rows}]}
        if bucket is None or bucket not in self.databases():
            # v1/coordinator/statement_executor.go:817-820: HTTP 200, a statement error
            return {"error": f"database not found: {bucket.split('/', 1)[0] if bucket else ''}"}
        answer = self.influxd(statement, bucket, epoch)
        if "error" in answer:
            raise _ParseError(str(answer["error"]))
        result = answer["results"][0]
        return {k: v for k, v in result.items() if k != "statement_id"}


class _ParseError(Exception):
    """influxd could not parse a statement."""


# ---------------------------------------------------------------------------------------------------
# InfluxDB 3 Core


class V3Dialect(Dialect):
    version = "3.x"
    build = "Core"  # influxdb@v3.6.0:influxdb3_process/build.rs:24-29 (default build "Core")

    def headers(self) -> dict[str, str]:
        # influxdb@v3.6.0:influxdb3_server/src/http.rs:923-943
        request_id = str(uuid.uuid4())
        return {"X-Influxdb-Build": self.build, "X-Influxdb-Version": self.version, "Request-Id": request_id,
                "X-Request-Id": request_id}

    def ping(self, method: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        # http.rs:2354: GET and POST only (HEAD falls to the catch-all 404); authentication runs first
        # (http.rs:2284-2292): /ping needs a token unless --disable-authz ping
        denied = self.authenticate("/ping", query, headers)
        if denied is not None:
            return denied
        if method not in ("GET", "POST"):
            return Answer.text(404, "not found")
        # influxdb@v3.6.0:influxdb3_types/src/http.rs:70-74
        body = {"version": self.version, "revision": "0123abcd", "process_id": str(uuid.uuid4())}
        return Answer.json(200, body, **self.headers())

    def authenticate(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Answer | None:
        # influxdb@v3.6.0:influxdb3_server/src/http.rs:1790-1863: the URI's `p` first, else Authorization
        # Bearer/Token/Basic (token as password); 401 with an empty body (http.rs:2500-2510); a malformed
        # header is 400 (http.rs:285-291).
        token = query.get("p") if path in ("/query", "/write") else None
        auth = headers.get("authorization", "")
        if token is None and auth:
            scheme, _, value = auth.partition(" ")
            if scheme in ("Bearer", "Token") and value:
                token = value
            elif scheme == "Basic" and value:
                try:
                    token = b64decode(value).decode().split(":", 1)[1]
                except (ValueError, IndexError):
                    token = None
            if token is None:
                return Answer.json(400, {"error": "Authorization header was malformed, the request was not in the "
                                                  "form of 'Authorization: <auth-scheme> <token>', supported "
                                                  "auth-schemes are Bearer, Token and Basic"})
        if token != self.token:
            return Answer(401)
        return None

    def database_for(self, db: str, rp: str | None) -> str:
        # core@f1bc156:iox_http/src/write/v1.rs:40-56: rp lower-cased; "", autogen, default mean the database
        # itself, anything else the database "<db>/<rp>"
        rp = (rp or "").lower()
        return db if rp in ("", "''", "autogen", "default") else f"{db}/{rp}"

    def write(self, query: dict[str, str], headers: dict[str, str], body: bytes) -> Answer:
        db = query.get("db")
        if not db:
            return Answer.json(400, {"error": "no db destination provided"}, **self.headers())
        precision = query.get("precision", "ns")
        # core@f1bc156:iox_http/src/write/params.rs:10-23: s, ms, us/u, ns/n (no m or h)
        if precision not in ("s", "ms", "us", "u", "ns", "n"):
            return Answer.json(400, {"error": f"failed to deserialize db/rp/precision in request: unknown "
                                              f"variant `{precision}`"}, **self.headers())
        target = self.database_for(db, query.get("rp"))
        existing = self.databases()
        if target not in existing:
            # influxdb3_write/src/write_buffer/validator.rs:95-107: an unknown database is created on first
            # write; Core allows 5 (catalog/versions/v2/update.rs:114-117), _internal not counted
            if len([d for d in existing if d != "_internal"]) >= CORE_DATABASE_LIMIT:
                return Answer.json(422, {"error": f"Adding a new database would exceed limit of "
                                                  f"{CORE_DATABASE_LIMIT} databases"}, **self.headers())
            self.ensure_database(target)
        answer = self.forward_write(target, {"n": "ns", "u": "us"}.get(precision, precision), body)
        answer.headers.update(self.headers())
        if answer.status == 204:
            answer.body = b""  # http.rs:808-816
        return answer

    def select(self, statement: str, db: str, epoch: str | None) -> dict[str, Any] | str:
        """A SELECT's result, or the text of its error."""
        if self.files_scanned(statement, db) > self.file_limit:
            return FILE_LIMIT_TEXT.replace(str(FILE_LIMIT), str(self.file_limit))
        answer = self.influxd(statement, db, epoch)
        if "error" in answer:
            return f"error in InfluxQL statement: parsing error: {answer['error']}"
        result = answer["results"][0]
        if "error" in result:
            return str(result["error"])
        return {k: v for k, v in result.items() if k != "statement_id"}


class V36Dialect(V3Dialect):
    name = "3.6-core"
    version = "3.6.0"

    def query(self, params: dict[str, str]) -> Answer:
        # influxdb@v3.6.0:influxdb3_server/src/http/v1.rs:47-124: q, db, epoch from URI and body (body
        # wins); `rp` is not a field there, so it is ignored
        q, db, epoch = params.get("q"), params.get("db"), params.get("epoch")
        if not q:
            return Answer.text(400, "missing query parameter 'q'")
        statements = split_statements(q)
        if len(statements) != 1:
            # http.rs:1094-1098, message at http.rs:221-222, unmatched in IntoResponse -> catch-all 500
            # with the plain text (http.rs:705-711)
            return Answer.text(500, "must provide only one InfluxQl statement per query")
        statement = statements[0]
        if _ADMIN.match(statement):
            if re.match(r"^\s*CREATE\s+DATABASE", statement, re.IGNORECASE):
                # core@f1bc156:iox_query_influxql/src/plan/planner.rs:597
                return Answer.text(500, "query error: error while planning query: This feature is not "
                                        "implemented: CREATE DATABASE")
            # core@f1bc156:influxdb_influxql_parser/src/statement.rs:22-45 knows no other admin statement
            return Answer.text(500, "error in InfluxQL statement: parsing error: Invalid CREATE statement, "
                                    "expected DATABASE following CREATE at pos 7")
        if _SHOW_DATABASES.match(statement) or _SHOW_POLICIES.match(statement):
            # influxdb3_query_executor/src/lib.rs:214,422: no iox::measurement column, so v1.rs:425-428
            # fails after the 200 was sent and the body stream aborts
            return Answer(200, b'{"results":[{"statement_id":0,', {"Content-Type": "application/json"},
                          abort_after_headers=True)
        if not db:
            return Answer.text(500, "must specify a 'db' parameter, or provide the database in the InfluxQL query")
        if _DELETE.match(statement):
            # core@f1bc156:iox_query_influxql/src/plan/planner.rs:598-599: parsed, not implemented
            return Answer.text(500, "query error: error while planning query: This feature is not implemented: "
                                    f"{_DELETE.match(statement).group(1).upper()}")
        if db not in self.databases():
            # http.rs:662-673
            return Answer.json(404, {"error": f"query error: database not found: {db}"}, **self.headers())
        result = self.select(statement, db, epoch)
        if isinstance(result, str):
            if result.startswith("error in InfluxQL statement"):
                return Answer.text(500, result)
            # planning errors (the file limit among them) are 500 plain text (http.rs:705-711)
            return Answer.text(500, f"query error: error while planning query: External error: {result}")
        # v1.rs:339-370: one result, statement_id 0, never an error field; series in reverse order
        # (v1.rs:414-416 push_front)
        series = list(reversed(result.get("series") or []))
        return Answer.json(200, {"results": [{"statement_id": 0, **({"series": series} if series else {})}]},
                           **self.headers())


class V37Dialect(V3Dialect):
    name = "3.7-core"
    version = "3.7.0"

    def headers(self) -> dict[str, str]:
        # influxdb@v3.7.0:influxdb3_server/src/http.rs:2504-2518
        return {**super().headers(), "cluster-uuid": "00000000-0000-7000-8000-000000000000"}

    def query(self, params: dict[str, str]) -> Answer:
        # core@c7612d1:iox_v1_query_api/src/handler.rs:208-342: each statement planned and run on its own,
        # its own result or error, later statements still run; (rp has no effect unless the query names a
        # database: handler.rs:283-293 with iox_query_influxql_rewrite/src/lib.rs:61-75)
        q, db, epoch = params.get("q") or "", params.get("db"), params.get("epoch")
        statements = split_statements(q)
        for statement in statements:
            if re.match(r"^\s*(CREATE\s+RETENTION|DROP|ALTER)\b", statement, re.IGNORECASE):
                # handler.rs:180-193: a parse error anywhere answers the request with statement 0's error
                return Answer.json(200, {"results": [{"statement_id": 0, "error": (
                    "error in InfluxQL statement: parsing error: invalid DROP statement, expected MEASUREMENT "
                    "at pos 5")}]}, **self.headers())
        results = []
        for index, statement in enumerate(statements):
            result = self.statement(statement, db, epoch)
            results.append({"statement_id": index, **(result if isinstance(result, dict) else {"error": result})})
        return Answer.json(200, {"results": results}, **self.headers())

    def statement(self, statement: str, db: str | None, epoch: str | None) -> dict[str, Any] | str:
        if _SHOW_DATABASES.match(statement):
            # influxdb@v3.7.0:influxdb3_internal_api/src/query_executor.rs:219-291 (catalog order)
            return {"series": [{"name": "databases", "columns": ["name"],
                                "values": [[name] for name in self.databases()]}]}
        policies = _SHOW_POLICIES.match(statement)
        if policies:
            # query_executor.rs:219-291: one row named after the database, humantime duration or null
            name = _unquote(policies.group(1)) if policies.group(1) else db
            if not name or name not in self.databases():
                return f"datafusion error: Error during planning: database not found: {name}"
            answer = self.influxd(f'SHOW RETENTION POLICIES ON "{self.stored_as(name)}"')
            rows = answer["results"][0]["series"][0]["values"]
            default = next(row for row in rows if row[4])
            return {"series": [{"name": "retention_policies", "columns": ["name", "duration", "default"],
                                "values": [[name, _humantime_days(default[1]), True]]}]}
        if not db:
            return "must specify a 'db' parameter, or provide the database in the InfluxQL query"
        if db not in self.databases():
            # influxdb@v3.7.0:influxdb3/tests/server/query.rs:712-723
            return f"Cannot retrieve database: External error: database not found: {db}"
        if re.match(r"^\s*CREATE\s+DATABASE", statement, re.IGNORECASE):
            # core@c7612d1:iox_query_influxql/src/plan/planner.rs:623 with the Datafusion prefix (error.rs)
            return "datafusion error: This feature is not implemented: CREATE DATABASE"
        deleting = _DELETE.match(statement)
        if deleting:  # the same planner: parsed, not implemented
            return f"datafusion error: This feature is not implemented: {deleting.group(1).upper()}"
        result = self.select(statement, db, epoch)
        if isinstance(result, str) and not result.startswith("error in InfluxQL"):
            return f"datafusion error: External error: {result}"
        return result


DIALECTS: dict[str, type[Dialect]] = {"2.7": V2Dialect, "3.6-core": V36Dialect, "3.7-core": V37Dialect}


class DialectServer:
    """One dialect on a loopback port, in front of an influxd."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                query = dict(parse_qsl(url.query, keep_blank_values=True))
                headers = {k.lower(): v for k, v in self.headers.items()}
                owner.dialect.requests.append((self.command, url.path))
                try:
                    answer = owner.dialect.handle(self.command, url.path, query, headers, body)
                except requests.ConnectionError:
                    # influxd is down: so is the server it stands for (the client sees the connection drop)
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                if answer.abort_after_headers:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(f"{len(answer.body):x}\r\n".encode() + answer.body)
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body)

            do_GET = do_POST = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def name(self) -> str:
        return self.dialect.name

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
