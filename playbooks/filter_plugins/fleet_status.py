"""The fleet status table: one row per host from `freqfeed status --json` results, and why a host is unhealthy.

Used by playbooks/status.yml as `hostvars | fleet_status(ansible_play_hosts_all)`: a table that fits a
120-column terminal as Ansible prints it (host, role, health, newest candle age per timeframe, gaps, history,
the gateway's requests answered here / forwarded, problems), every problem in full below it; with
`wide=True` (`-e fleet_wide=true`) every column in full. Kept free of freqfeed imports: the controller needs
only Ansible.
"""

from __future__ import annotations

import json
import re
import textwrap
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


def _results(registered: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The command results of one host: one per role it was asked as (a looped task registers `results`; a host
    in both groups, a feeder that is also the second producer, has two), or the one result of an unreachable host."""
    registered = dict(registered or {})
    looped = registered.get("results")
    if isinstance(looped, list) and looped:
        return [dict(item) for item in looped]
    return [registered]


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
    return ("loading caches: " if gateway.get("ready") is False else "") + text


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


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _ages(reply: dict[str, Any]) -> str:
    return " ".join(f"{tf}={_age(lag)}" for tf, lag in (reply.get("lag_seconds") or {}).items()) or "-"


def _gaps(gaps: dict[str, int]) -> str:
    return f"{sum(gaps.values())} in {len(gaps)}" if gaps else "none"


def _history(coverage: str | None) -> str:
    """The history column's gist: covered, how many files are short, or how far the backfill is."""
    if not coverage:
        return "-"
    if coverage.startswith("covered"):
        return "covered"
    short = re.match(r"(\d+ files? short)", coverage)
    if short:
        return short.group(1)
    backfill = re.match(r"backfill (\d+)/(\d+) pages", coverage)
    if backfill:
        return f"backfill {100 * int(backfill.group(1)) // max(int(backfill.group(2)), 1)}%"
    return re.split(r"[:(,;]", coverage, maxsplit=1)[0].strip()


def _gateway_short(gateway: dict[str, Any] | None) -> str:
    """Requests answered here / forwarded to Binance (and the share answered here)."""
    if not gateway:
        return "-"
    if not gateway.get("up"):
        return "DOWN"
    local, forwarded = int(gateway.get("local") or 0), int(gateway.get("forwarded") or 0)
    text = f"{local}/{forwarded}" + (f" {100 * local / (local + forwarded):.0f}%" if local + forwarded else "")
    return ("loading " if gateway.get("ready") is False else "") + text


def _problems_cell(problems: list[str]) -> str:
    if not problems:
        return "-"
    return (f"({len(problems)}) " if len(problems) > 1 else "") + problems[0]


# The normal table: what an operator scans, within the terminal. (header, minimum width); the cells are
# cut to fit (…), the problems in full below the table, and `wide` shows every column in full.
SHORT_COLUMNS = (("host", 8), ("role", 4), ("health", 6), ("newest candle", 10), ("gaps", 6), ("history", 8),
                 ("gw here/fwd", 8), ("problems", 12))
SHRINK_ORDER = ("problems", "history", "newest candle", "gw here/fwd", "gaps", "host", "role", "health")
ANSIBLE_INDENT = 8  # the yaml callback indents a debug msg's lines by 8 spaces
WIDTH = 120 - ANSIBLE_INDENT


def _short_row(host: str, reply: dict[str, Any] | None, health: str, problems: list[str]) -> list[str]:
    if reply is None:
        return [host, "?", health, "-", "-", "-", "-", _problems_cell(problems)]
    return [host, str(reply.get("role", "?")), health, _ages(reply), _gaps(reply.get("gaps") or {}),
            _history(reply.get("coverage")), _gateway_short(reply.get("gateway")), _problems_cell(problems)]


def _layout(header: list[str], rows: list[list[str]], width: int | None,
            minimums: tuple[int, ...] | None = None) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    if width is not None and minimums is not None:
        names = [name for name, _ in SHORT_COLUMNS]
        for name in SHRINK_ORDER:
            excess = sum(widths) + 2 * (len(widths) - 1) - width
            if excess <= 0:
                break
            i = names.index(name)
            widths[i] -= min(excess, max(widths[i] - max(minimums[i], len(header[i])), 0))
    return ["  ".join(_fit(cell, w).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in [header, *rows]]


def fleet_status(hostvars: Any, hosts: list[str], register: str = "status_host", wide: bool = False,
                 width: int = WIDTH) -> dict[str, Any]:
    """`lines`: the table (`wide`: every column in full) and, below it, every problem in full; `table`: the
    table's lines alone; `problems`: "host: problem" for each host that is not healthy; `unhealthy`: those hosts."""
    wide_rows: list[list[str]] = []
    short_rows: list[list[str]] = []
    problems: list[str] = []
    asked = [(name, result) for name in hosts for result in _results(hostvars[name].get(register))]
    for host, result in asked:
        reply, failure = _reply(result)
        if reply is None:
            health = "UNREACHABLE" if result.get("unreachable") else "UNHEALTHY"
            wide_rows.append([host, "?", health, *["-"] * (len(COLUMNS) - 3)])
            short_rows.append(_short_row(host, None, health, [failure]))
            problems.append(f"{host}: {failure}")
            continue
        own = [str(p) for p in reply.get("problems") or []]
        if not reply.get("healthy") and not own:
            own = ["unhealthy"]
        wide_rows.append(_row(host, reply))
        short_rows.append(_short_row(host, reply, "OK" if reply.get("healthy") else "UNHEALTHY", own))
        problems.extend(f"{host}: {problem}" for problem in own)
    if wide:
        table = _layout(list(COLUMNS), wide_rows, None)
        notes = list(problems)
    else:
        table = _layout([name for name, _ in SHORT_COLUMNS], short_rows, width,
                        tuple(minimum for _, minimum in SHORT_COLUMNS))
        notes = [line for problem in problems
                 for line in textwrap.wrap(problem, width, subsequent_indent="    ", break_on_hyphens=False)]
    lines = [*table, "", *notes] if notes else table
    unhealthy = list(dict.fromkeys(row[0] for row in short_rows if row[2] != "OK"))
    return {"lines": lines, "table": table, "problems": problems, "unhealthy": unhealthy}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"fleet_status": fleet_status}
