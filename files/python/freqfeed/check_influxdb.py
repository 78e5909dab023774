"""`freqfeed check-influxdb`: the one command an operator runs against their real InfluxDB server.

Each line is OK, FAIL (with what to fix) or SKIP (not checkable here, and why):

    tls         OK    https, certificate verified with the CA file /etc/freqfeed/influxdb-ca.pem
    server      OK    InfluxDB 2 OSS 2.7.12 (2.x OSS) at http://192.168.3.6:8086
    auth        OK    token accepted
    database    OK    'freqfeed' exists
    retention   OK    autogen: 360 days (freqfeed keeps up to influxdb.retention_days = 360)
    read        OK    SELECT on ohlcv_3m answered (3 points in the last hour)
    write       SKIP  not probed (--write-probe writes one point to measurement freqfeed_probe)
    batching    OK    several statements per request (checked with a two-statement request)

Exit status 0 when no line is FAIL, 1 otherwise, 2 for a bad configuration file.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

from freqfeed.config import Config
from freqfeed.influx import (
    InfluxDB,
    InfluxDBAuthError,
    InfluxDBConfigError,
    InfluxDBError,
    InfluxDBNotFound,
    tls_state,
)
from freqfeed.influxdb_versions import Server
from freqfeed.influxql import Select, quote_literal
from freqfeed.schema import ohlcv_measurement

PROBE_MEASUREMENT = "freqfeed_probe"


@dataclass(frozen=True)
class Check:
    name: str
    result: str  # OK, FAIL, SKIP
    detail: str

    def line(self) -> str:
        return f"{self.name:11} {self.result:5} {self.detail}"


_UNIT_SECONDS = {"y": 31_557_600, "year": 31_557_600, "years": 31_557_600, "month": 2_630_016,
                 "months": 2_630_016, "w": 604_800, "week": 604_800, "weeks": 604_800, "d": 86_400, "day": 86_400,
                 "days": 86_400, "h": 3600, "hour": 3600, "hours": 3600, "m": 60, "min": 60, "minute": 60,
                 "minutes": 60, "s": 1, "sec": 1, "second": 1, "seconds": 1}
_DURATION_PART = re.compile(r"([\d.]+)\s*([a-z]+)")


def _days(duration: object) -> float | None:
    """A retention in days: 1.x/2.x durations (8640h0m0s; 0s is forever), 3.7's humantime (360days) or
    None (forever); None when not understood."""
    if duration is None:
        return 0.0
    parts = _DURATION_PART.findall(str(duration).lower())
    if not parts or any(unit not in _UNIT_SECONDS for _, unit in parts):
        return None
    return sum(float(value) * _UNIT_SECONDS[unit] for value, unit in parts) / 86_400


def run_checks(config: Config, *, write_probe: bool = False, client: InfluxDB | None = None) -> list[Check]:
    own = client is None
    client = client or InfluxDB(config.influxdb, retries=0)
    try:
        return list(_checks(config, client, write_probe))
    finally:
        if own:
            client.close()


def _checks(config: Config, client: InfluxDB, write_probe: bool):  # type: ignore[no-untyped-def]
    ix = config.influxdb
    yield Check("tls", "OK" if ix.url.startswith("https://") and ix.verify_tls else "SKIP", tls_state(ix))
    try:
        server = client.ping()
    except InfluxDBConfigError as exc:
        detected = client._server  # detected before the configuration was found wanting
        if detected is not None:
            yield Check("server", "OK", f"{detected.label} at {ix.url}")
        yield Check("config", "FAIL", str(exc))
        return
    except InfluxDBError as exc:
        yield Check("server", "FAIL", str(exc))
        return
    yield Check("server", "OK", f"{server.label} at {ix.url}")

    credentials = "token" if ix.token else f"user {ix.username!r}" if ix.username else "no credentials"
    try:
        exists = client.database_exists()
        client.query("SHOW MEASUREMENTS LIMIT 1")
    except InfluxDBAuthError as exc:
        yield Check("auth", "FAIL", f"{credentials} refused: {exc}")
        return
    except InfluxDBNotFound:
        exists = False
    except InfluxDBError as exc:
        yield Check("auth", "FAIL", f"cannot tell: {exc}")
        return
    yield Check("auth", "OK", f"{credentials} accepted" if ix.token or ix.username else
                "no credentials configured: the server accepts anonymous requests")

    if exists is False:
        create = server.create_instructions(ix.database, ix.retention_policy, ix.retention_days)
        if server.caps.creates_databases:
            create = f"the producer creates it if its credentials have admin rights; else {create}"
        yield Check("database", "FAIL", f"{ix.database!r} does not exist: {create}")
        return
    yield Check("database", "OK", f"{ix.database!r} exists" if exists else
                f"{ix.database!r} answers queries (this server cannot list databases)")

    yield _retention(config, client, server)
    yield _read(config, client)
    yield _write(config, client) if write_probe else Check(
        "write", "SKIP", f"not probed (--write-probe writes one point to measurement {PROBE_MEASUREMENT})")
    yield _batching(client, server)


def _retention(config: Config, client: InfluxDB, server: Server) -> Check:  # noqa: PLR0911 - one per outcome
    ix = config.influxdb
    if not server.caps.retention_in_policies:
        return Check("retention", "SKIP", server.retention_instructions(ix.database, ix.retention_days))
    try:
        policies = client.retention_policies()
    except InfluxDBError as exc:
        return Check("retention", "SKIP", f"cannot read the retention policies: {exc}")
    chosen = policies.get(ix.retention_policy) if ix.retention_policy else next(
        (row for row in policies.values() if row.get("default")), None)
    if chosen is None:
        wanted = ix.retention_policy or "a default retention policy"
        found = ", ".join(policies) or "none"
        return Check("retention", "FAIL", f"{wanted} not found on {ix.database!r} (has: {found})")
    days = _days(chosen.get("duration"))
    name = chosen.get("name")
    if days is None:
        return Check("retention", "SKIP", f"{name}: duration {chosen.get('duration')!r} not understood")
    if days == 0:
        return Check("retention", "OK", f"{name}: infinite (freqfeed keeps up to {ix.retention_days} days)")
    if days + 1e-9 < ix.retention_days:
        fix = (f"ALTER RETENTION POLICY \"{name}\" ON \"{ix.database}\" DURATION {ix.retention_days}d"
               if server.caps.family == "1" else f"influx bucket update --id <bucket id> --retention "
               f"{ix.retention_days}d")
        return Check("retention", "FAIL", f"{name}: {days:g} days, shorter than influxdb.retention_days "
                     f"= {ix.retention_days}: {fix}")
    return Check("retention", "OK", f"{name}: {days:g} days (freqfeed keeps up to influxdb.retention_days = "
                 f"{ix.retention_days})")


def _read(config: Config, client: InfluxDB) -> Check:
    now = int(time.time() * 1000)
    measurement = ohlcv_measurement(config.timeframes[0])
    select = Select(measurement, ("close",), now - 3_600_000, now, aggregate="count")
    try:
        [answer] = client.select([select])
    except InfluxDBAuthError as exc:
        return Check("read", "FAIL", f"no read permission on {config.influxdb.database!r}: {exc}")
    except InfluxDBError as exc:
        return Check("read", "FAIL", str(exc))
    count = sum(int(row[1]) for series in answer for row in series.values)
    plural = "" if count == 1 else "s"
    return Check("read", "OK", f"SELECT on {measurement} answered ({count} candle{plural} in the last hour)")


def _write(config: Config, client: InfluxDB) -> Check:
    now = int(time.time() * 1000)
    host = os.uname().nodename
    try:
        client.write([f"{PROBE_MEASUREMENT},host={host.replace(' ', '_')} ok=1 {now}"])
        [answer] = client.select([Select(PROBE_MEASUREMENT, ("ok",), now, now, tags=(("host", host),))])
    except InfluxDBAuthError as exc:
        return Check("write", "FAIL", f"no write permission on {config.influxdb.database!r}: {exc}")
    except InfluxDBError as exc:
        return Check("write", "FAIL", str(exc))
    if not answer or not answer[0].values:
        return Check("write", "FAIL", f"wrote a probe point but could not read it back (measurement "
                     f"{PROBE_MEASUREMENT}, host = {quote_literal(host)}): are writes and reads going to the "
                     f"same database?")
    return Check("write", "OK", f"wrote and read back a probe point ({PROBE_MEASUREMENT}, host={host})")


def _batching(client: InfluxDB, server: Server) -> Check:
    if not server.caps.multi_statement:
        return Check("batching", "OK", f"one statement per request ({server.name} refuses several), "
                     f"{client.concurrency} at a time (influxdb.concurrency)")
    try:
        answers = client._post_query(["SHOW MEASUREMENTS LIMIT 1", "SHOW MEASUREMENTS LIMIT 1"])
    except InfluxDBError as exc:
        return Check("batching", "FAIL", f"the server refused a two-statement request: {exc}")
    if len(answers) != 2 or any(isinstance(a, InfluxDBError) for a in answers.values()):
        return Check("batching", "FAIL", f"a two-statement request was not answered per statement: {answers}")
    return Check("batching", "OK", "several statements per request (checked with a two-statement request)")


def main(config: Config, *, write_probe: bool = False) -> int:
    checks = run_checks(config, write_probe=write_probe)
    for check in checks:
        print(check.line())
    return 1 if any(check.result == "FAIL" for check in checks) else 0
