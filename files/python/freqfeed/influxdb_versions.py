"""What differs between InfluxDB servers behind the v1-compatible HTTP API: one table, one place.

freqfeed reads and writes through the same three endpoints everywhere (/ping, /write, /query), but
the servers behind them differ (sources: ../shared/reference/influxdb-versions.md, read from
influxdata/influxdb at v2.7.12, v3.6.0, v3.7.0 and influxdata/docs-v2):

| row                       | statements/request  | CREATE DATABASE | retention_policy         | limit per query  |
|---------------------------|---------------------|-----------------|--------------------------|------------------|
| 1.x                       | many                | yes (InfluxQL)  | a retention policy       | none             |
| 2.x OSS                   | many                | no              | selects a DBRP mapping   | none             |
| 3 Core/Enterprise 3.0-3.6 | ONE (else HTTP 500) | no              | a separate db "db/rp"    | Core: 432 files  |
| 3 Core/Enterprise >= 3.7  | many                | no              | a separate db "db/rp"    | Core: 432 files  |
| Cloud Dedicated/Serverless| many                | no              | not supported here       | Serverless: 90 s |

The server is detected once per client from /ping (`X-Influxdb-Version`, `X-Influxdb-Build`, 204 or
200; 401/403 means reachable, authenticate), and every other module asks its `Capabilities`, never a
version number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from freqfeed.influxql import quote_identifier

RetentionPolicy = Literal["native", "dbrp", "separate-database", "unsupported"]

GEN1_MS = 600_000  # InfluxDB 3's default gen1 duration: one Parquet file per table and 10 minutes of data
CORE_FILE_LIMIT = 432  # InfluxDB 3 Core's default --query-file-limit


@dataclass(frozen=True)
class Capabilities:
    """One row of the compatibility matrix."""

    family: str  # "1", "2", "3", "cloud", "unknown"
    row: str
    multi_statement: bool  # several `;`-separated statements per /query request
    creates_databases: bool  # CREATE DATABASE / CREATE RETENTION POLICY through InfluxQL
    retention_policy: RetentionPolicy  # what the `rp` parameter means
    lists_databases: bool  # SHOW DATABASES answers
    retention_in_policies: bool  # SHOW RETENTION POLICIES carries the retention duration
    file_limit: int | None = None  # Parquet files one query may scan (3 Core); None: unlimited

    def split_span_ms(self, density_ms: int) -> int | None:
        """Longest time range one query should cover (None: no limit), for points `density_ms` apart.

        InfluxDB 3 persists one Parquet file per table and gen1 block (10 minutes) that holds data, so a
        query over points an hour apart touches about one file per hour, a dense one one per 10 minutes.
        A fifth is kept in reserve for blocks written more than once (late points, backfills).
        """
        if self.file_limit is None:
            return None
        return int(self.file_limit * max(GEN1_MS, density_ms) * 0.8)


V1 = Capabilities("1", "1.x", multi_statement=True, creates_databases=True, retention_policy="native",
                  lists_databases=True, retention_in_policies=True)
# 2.x: SHOW RETENTION POLICIES always reports duration "0s" (v1/coordinator/statement_executor.go:527 at
# v2.7.12), so a bucket's retention is not visible through the v1 API.
V2 = Capabilities("2", "2.x OSS", multi_statement=True, creates_databases=False, retention_policy="dbrp",
                  lists_databases=True, retention_in_policies=False)
# 3.0-3.6: SHOW DATABASES / SHOW RETENTION POLICIES through /query abort the answer after the 200
# (influxdb3_server/src/http/v1.rs:425 at v3.6.0: no iox::measurement column), so they are never sent.
V3_SINGLE = Capabilities("3", "3 Core/Enterprise 3.0-3.6", multi_statement=False, creates_databases=False,
                         retention_policy="separate-database", lists_databases=False, retention_in_policies=False)
# 3.7: SHOW RETENTION POLICIES answers one row named after the database with its retention
# (influxdb3_internal_api/src/query_executor.rs:219 at v3.7.0).
V3 = Capabilities("3", "3 Core/Enterprise >= 3.7", multi_statement=True, creates_databases=False,
                  retention_policy="separate-database", lists_databases=True, retention_in_policies=True)
CLOUD = Capabilities("cloud", "Cloud Dedicated/Serverless", multi_statement=True, creates_databases=False,
                     retention_policy="unsupported", lists_databases=False, retention_in_policies=False)
# A server that does not say what it is: assume the least (one statement, no CREATE, bounded scans).
UNKNOWN = Capabilities("unknown", "unknown", multi_statement=False, creates_databases=False,
                       retention_policy="unsupported", lists_databases=False, retention_in_policies=False,
                       file_limit=CORE_FILE_LIMIT)


@dataclass(frozen=True)
class Server:
    """What /ping said: product, version and build, and the capabilities that follow from them."""

    product: str  # e.g. "InfluxDB 1.x", "InfluxDB 2 OSS", "InfluxDB 3 Core"
    version: str  # without a leading "v"; "" when the server did not say
    build: str
    caps: Capabilities

    @property
    def label(self) -> str:
        return f"{self.product} {self.version}".strip() + f" ({self.caps.row})"

    def create_instructions(self, database: str, retention_policy: str | None, days: int) -> str:
        """The command an operator runs to create what freqfeed needs on this server."""
        if self.caps.family == "1":
            statement = f"CREATE DATABASE {quote_identifier(database)} WITH DURATION {days}d"
            if retention_policy:
                statement += f" NAME {quote_identifier(retention_policy)}"
            return f"influx -execute '{statement}' (as an admin user)"
        if self.caps.family == "2":
            rp = retention_policy or "autogen"
            return (f"influx bucket create --name {database} --retention {days}d --org <org>, then, only if the "
                    f"bucket is named differently: influx v1 dbrp create --db {database} --rp {rp} "
                    f"--bucket-id <bucket id> --default")
        if self.caps.family == "3":
            return f"influxdb3 create database --retention-period {days}d {database}"
        if self.caps.family == "cloud":
            return (f"influxctl database create --retention-period {days}d {database} (Cloud Dedicated; Serverless: "
                    f"a bucket with a DBRP mapping)")
        return f"create the database {database!r} with a {days}-day retention with your server's own tool"


    def retention_instructions(self, database: str, days: int) -> str:
        """How an operator sees and sets the database's retention where the v1 API does not show it."""
        if self.caps.family == "2":
            return (f"InfluxDB 2 reports every retention as 0s through the v1 API: see the bucket's with "
                    f"`influx bucket list --name {database}`, set it with `influx bucket update --id <bucket id> "
                    f"--retention {days}d`")
        if self.caps.family == "3":
            return (f"InfluxDB 3 before 3.7 does not show retention through the v1 API: see it with `influxdb3 show "
                    f"databases`, set it with `influxdb3 update database --retention-period {days}d {database}`")
        return f"the v1 API of {self.product} does not show retention: check that {database!r} keeps {days} days"

    @property
    def name(self) -> str:
        return f"{self.product} {self.version}".strip()


_VERSION = re.compile(r"^v?(\d+)(?:\.(\d+))?")


def detect(status: int, headers: Mapping[str, str], body: bytes = b"") -> Server:
    """The server behind a /ping answer (204 or 200; 401/403 when /ping itself wants credentials)."""
    lower = {k.lower(): v for k, v in headers.items()}
    version = (lower.get("x-influxdb-version") or "").strip()
    build = (lower.get("x-influxdb-build") or "").strip()
    if not version and body:
        try:  # InfluxDB 3 answers /ping with a JSON body as well
            payload = json.loads(body)
            if isinstance(payload, dict):
                version = str(payload.get("version") or "")
        except ValueError:
            pass
    version = version.removeprefix("v")
    match = _VERSION.match(version)
    major = int(match.group(1)) if match else None
    minor = int(match.group(2) or 0) if match else 0
    build_lower = build.lower()
    if build_lower.startswith("cloud"):
        return Server("InfluxDB Cloud", version, build, CLOUD)
    if major == 1:
        return Server("InfluxDB 1.x", version, build, V1)
    if major == 2:
        return Server("InfluxDB 2 OSS", version, build, V2)
    if major == 3 or build_lower in ("core", "enterprise"):
        product = "InfluxDB 3 Enterprise" if build_lower == "enterprise" else "InfluxDB 3 Core"
        caps = V3 if major == 3 and minor >= 7 else V3_SINGLE
        if build_lower != "enterprise":  # the file limit is Core's
            caps = replace(caps, file_limit=CORE_FILE_LIMIT)
        return Server(product, version, build, caps)
    if status in (401, 403):
        # Only InfluxDB 3 guards /ping by default; without credentials it says nothing more.
        caps = replace(V3_SINGLE, file_limit=CORE_FILE_LIMIT)
        return Server("InfluxDB 3 (version not shown: /ping wants credentials)", "", build, caps)
    return Server("InfluxDB (unidentified)", version, build, UNKNOWN)
