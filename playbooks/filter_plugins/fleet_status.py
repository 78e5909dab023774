"""The fleet status table: one row per host from `freqfeed status --json` results, and why a host is unhealthy.

Used by playbooks/status.yml as `hostvars | fleet_status(ansible_play_hosts_all)`. Kept free of freqfeed
imports: the controller needs only Ansible.
"""

from __future__ import annotations

import json
from typing import Any

COLUMNS = ("host", "role", "health", "service / timer", "last run", "files", "newest candle age", "gaps",
           "history", "disk free", "influxdb", "gateway")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _first_sentence(message: str) -> str:
    """Ansible's connection errors run to several lines of advice; the table needs the first statement."""
    text = " ".join(message.split()).removeprefix("Task failed: ")
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def _reply(result: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The host's status report, or None and why there is none."""
    if result.get("unreachable"):
        return None, f"unreachable: {_first_sentence(result.get('msg', '')) or 'no answer'}"
    if result.get("skipped"):
        return None, "not checked (skipped)"
    try:
        reply = json.loads(result.get("stdout") or "")
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        stderr = (result.get("stderr") or result.get("msg") or "").strip().splitlines()
        return None, f"freqfeed status failed (rc {result.get('rc')}): {stderr[-1] if stderr else 'no output'}"
    return reply, ""


def _gateway(gateway: dict[str, Any] | None) -> str:
    """here/forwarded, forwarded weight per minute, cache hits, close-wait fallbacks (and books, if any)."""
    if not gateway:
        return "-"
    if not gateway.get("up"):
        return f"DOWN ({gateway.get('unit', '?')})"
    local, forwarded = int(gateway.get("local") or 0), int(gateway.get("forwarded") or 0)
    share = f"{100 * local / (local + forwarded):.0f}%" if local + forwarded else "-"
    load = gateway.get("load") or {}
    state = f"{gateway.get('state', 'up')} {load.get('seconds', '-')}s, " if gateway.get("state") else ""
    text = (f"{state}{local} here ({share}) / {forwarded} fwd, {gateway.get('forwarded_weight_last_minute', 0)} w/min, "
            f"{gateway.get('cache_hits', 0)} hits, {gateway.get('close_wait_fallbacks', 0)} fallbacks")
    books = gateway.get("books")
    if isinstance(books, dict):
        text += (f", books {books.get('streamed', 0)}: {books.get('served', 0)} streamed / "
                 f"{books.get('forwarded', 0)} fwd, oldest {books.get('oldest_served_ms', '-')} ms")
    return text


def _row(host: str, reply: dict[str, Any]) -> list[str]:
    lags = " ".join(f"{tf}={_age(lag)}" for tf, lag in (reply.get("lag_seconds") or {}).items())
    gaps = reply.get("gaps") or {}
    files = reply.get("files")
    return [
        host,
        str(reply.get("role", "?")),
        "OK" if reply.get("healthy") else "UNHEALTHY",
        f"{reply.get('unit') or '-'} {reply.get('unit_state', '?')}",
        str(reply.get("last_run", "-")),
        "-" if files is None else str(files),
        lags or "-",
        f"{sum(gaps.values())} candles in {len(gaps)} series" if gaps else "none",
        # feeders: whether the files cover the bots' history; the producer: its backfill, while it runs
        str(reply.get("coverage") or "-"),
        str(reply.get("disk_free", "-")),
        str(reply.get("influxdb", "-")),
        _gateway(reply.get("gateway")),
    ]


def fleet_status(hostvars: Any, hosts: list[str], register: str = "status_host") -> dict[str, Any]:
    rows: list[list[str]] = []
    problems: list[str] = []
    for host in hosts:
        result = dict(hostvars[host].get(register) or {})
        reply, failure = _reply(result)
        if reply is None:
            health = "UNREACHABLE" if result.get("unreachable") else "UNHEALTHY"
            rows.append([host, "?", health, *["-"] * (len(COLUMNS) - 3)])
            problems.append(f"{host}: {failure}")
            continue
        rows.append(_row(host, reply))
        problems.extend(f"{host}: {problem}" for problem in reply.get("problems") or [])
        if not reply.get("healthy") and not reply.get("problems"):
            problems.append(f"{host}: unhealthy")
    widths = [max(len(row[i]) for row in [list(COLUMNS), *rows]) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [list(COLUMNS), *rows]]
    return {"lines": lines, "problems": problems}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"fleet_status": fleet_status}
