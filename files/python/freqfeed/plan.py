"""`freqfeed plan --freqtrade-config PATH...`: the history each bot's FreqAI needs, the freqfeed settings
that cover every bot, and (with `--config`) whether InfluxDB and the local files hold it now.

FreqAI sizes its download at bot start (freqtrade 2026.9, `freqai/utils.py`):
`get_required_data_timerange` starts `train_period_days` days plus `max_period` candles of the largest
`include_timeframes` before now, where `max_period = int(max(startup_candle_count,
max(indicator_periods_candles)) * 1.5)`; `download_all_data_for_training` fetches that range for the
whitelist and `include_corr_pairlist` (when FreqAI is enabled), at every `include_timeframes`, plus mark
and funding candles on futures (freqtrade's `mark_ohlcv_timeframe` and `funding_fee_timeframe`, 1h). This
module computes the same, without freqtrade installed.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freqfeed import exchanges
from freqfeed.config import EXCHANGES, Config, ConfigError
from freqfeed.schema import MARK_TIMEFRAME, has_mark_series
from freqfeed.timeframes import timeframe_ms

DAY_MS = 86_400_000
FUNDING_TIMEFRAME = "1h"  # freqtrade's funding_fee_timeframe for Binance since 2025.12
LONGEST_FUNDING_INTERVAL_MS = 8 * 3_600_000  # Binance settles every 8 h at most (4 h or 1 h for some symbols)
STATIC_PAIRLISTS = {"StaticPairList"}


class PlanError(ConfigError):
    """A freqtrade config that cannot be read or is not a freqtrade config."""


def _strip_json(text: str) -> str:
    """freqtrade reads its configs with comments and trailing commas allowed (rapidjson PM_COMMENTS |
    PM_TRAILING_COMMAS); so does this, without rapidjson."""
    out, i, n = [], 0, len(text)
    while i < n:
        char = text[i]
        if char == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            i = text.find("\n", i) if text.find("\n", i) != -1 else n
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end == -1 else end + 2
        else:
            out.append(char)
            i += 1
    return re.sub(r",(\s*[}\]])", r"\1", "".join(out))


def _merge(source: dict[str, Any], destination: dict[str, Any]) -> dict[str, Any]:
    """freqtrade's deep_merge_dicts: values from `source` override `destination` (returned)."""
    for key, value in source.items():
        if isinstance(value, dict):
            _merge(value, destination.setdefault(key, {}))
        else:
            destination[key] = value
    return destination


def load_freqtrade_config(path: str | Path, _level: int = 0) -> dict[str, Any]:
    """A freqtrade config file with its `add_config_files` merged as freqtrade merges them."""
    path = Path(path)
    if _level > 5:
        raise PlanError(f"{path}: add_config_files nest more than 5 deep (a loop?)")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"cannot read freqtrade config {path}: {exc.strerror or exc}") from None
    try:
        config = json.loads(_strip_json(text))
    except ValueError as exc:
        raise PlanError(f"{path}: not a freqtrade config (not JSON: {exc})") from None
    if not isinstance(config, dict):
        raise PlanError(f"{path}: not a freqtrade config (expected a JSON object, got {type(config).__name__})")
    extra = config.get("add_config_files") or []
    if not isinstance(extra, list):
        raise PlanError(f"{path}: add_config_files: expected a list of files")
    merged: dict[str, Any] = {}
    for name in extra:
        merged = _merge(load_freqtrade_config(path.resolve().parent / str(name), _level + 1), merged)
    return _merge(config, merged)


@dataclass(frozen=True)
class BotNeed:
    """What one bot's FreqAI downloads at start-up, as freqtrade computes it."""

    source: str
    trading_mode: str
    pairs: tuple[str, ...]  # the static whitelist (empty when the pairlist is dynamic)
    corr_pairs: tuple[str, ...]
    dynamic: tuple[str, ...]  # pairlist methods that choose pairs at run time
    timeframes: tuple[str, ...]  # include_timeframes (and the strategy's timeframe)
    train_period_days: float
    max_period: int  # FreqAI's startup candles: int(max(startup_candle_count, max(indicator_periods)) * 1.5)
    start_ms: int
    stop_ms: int
    freqai: bool
    exchange: str = "binance"
    override_exchange_checks: bool = False  # freqai.override_exchange_checks (FreqAI on Hyperliquid needs it)

    @property
    def span_ms(self) -> int:
        return self.stop_ms - self.start_ms

    def candles(self, timeframe: str) -> int:
        """Candles of `timeframe` between the window's start and now."""
        return math.ceil(self.span_ms / timeframe_ms(timeframe))

    @property
    def all_pairs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.pairs, *self.corr_pairs)))


def _require(config: dict[str, Any], source: str, *keys: str) -> Any:
    value: Any = config
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            raise PlanError(f"{source}: not a FreqAI config: {'.'.join(keys)} is missing")
        value = value[key]
    return value


def bot_need(config: dict[str, Any], source: str, now_ms: int | None = None) -> BotNeed:
    """The history a freqtrade config's FreqAI asks for at `now_ms` (default: now)."""
    exchange = config.get("exchange")
    if not isinstance(exchange, dict) or not exchange.get("name"):
        raise PlanError(f"{source}: not a freqtrade config (no exchange.name)")
    name = str(exchange["name"]).lower()
    if name not in EXCHANGES:
        raise PlanError(f"{source}: exchange {exchange['name']!r}: freqfeed serves {exchanges.titles()} only")
    described = exchanges.get(name)
    trading_mode = str(config.get("trading_mode", "spot"))
    if trading_mode not in described.trading_modes:
        raise PlanError(f"{source}: {described.title} {trading_mode}: freqfeed collects {described.title}'s "
                        f"{described.markets} only (trading_mode {' or '.join(described.trading_modes)})")
    now = time.time() if now_ms is None else now_ms / 1000
    freqai = config.get("freqai") if isinstance(config.get("freqai"), dict) else None
    strategy_tf = config.get("timeframe")
    if freqai is not None:
        timeframes = list(_require(config, source, "freqai", "feature_parameters", "include_timeframes") or [])
        periods = list(_require(config, source, "freqai", "feature_parameters", "indicator_periods_candles") or [])
        if not timeframes or not periods:
            raise PlanError(f"{source}: freqai.feature_parameters.include_timeframes and indicator_periods_candles "
                            "must not be empty")
        train_days = float(freqai.get("train_period_days", 0))
    else:  # no FreqAI: only the startup candles of the strategy's timeframe
        timeframes, periods, train_days = ([strategy_tf] if strategy_tf else []), [0], 0.0
    for timeframe in timeframes:
        if timeframe not in described.timeframes:
            raise PlanError(f"{source}: timeframe {timeframe!r} is not one freqfeed collects on {name} "
                            f"({', '.join(described.timeframes)})")
    startup = int(config.get("startup_candle_count", 0) or 0)
    max_period = int(max(startup, *(int(p) for p in periods)) * 1.5)
    max_tf_seconds = max((timeframe_ms(tf) // 1000 for tf in timeframes), default=0)
    start = int(now - train_days * 86400 - max_period * max_tf_seconds)
    stop = int(now)
    if strategy_tf and strategy_tf not in timeframes:
        timeframes.append(strategy_tf)
    pairlists = [p.get("method", "?") for p in config.get("pairlists") or [{"method": "StaticPairList"}]
                 if isinstance(p, dict)]
    dynamic = tuple(m for m in pairlists if m not in STATIC_PAIRLISTS)
    pairs = tuple(exchange.get("pair_whitelist") or []) if not dynamic or "StaticPairList" in pairlists else ()
    corr = tuple(freqai.get("feature_parameters", {}).get("include_corr_pairlist") or []) \
        if freqai is not None and freqai.get("enabled", False) else ()
    override = bool(freqai.get("override_exchange_checks", False)) if freqai is not None else False
    return BotNeed(source, trading_mode, pairs, corr, dynamic, tuple(dict.fromkeys(timeframes)), train_days,
                   max_period, start * 1000, stop * 1000, freqai is not None, name, override)


@dataclass
class Plan:
    """The freqfeed settings that cover a set of bots."""

    bots: list[BotNeed]
    trading_mode: str = "futures"
    exchange: str = "binance"
    pairs: list[str] = field(default_factory=list)
    timeframes: list[str] = field(default_factory=list)
    days: dict[str, int] = field(default_factory=dict)  # timeframe -> days of history to keep
    dynamic: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, bots: Sequence[BotNeed]) -> Plan:
        if not bots:
            raise PlanError("no freqtrade config given")
        modes = {b.trading_mode for b in bots}
        if len(modes) > 1:
            raise PlanError(f"the bots trade in different modes ({', '.join(sorted(modes))}): one freqfeed fleet "
                            "serves one trading mode")
        exchanges = {b.exchange for b in bots}
        if len(exchanges) > 1:
            raise PlanError(f"the bots trade on different exchanges ({', '.join(sorted(exchanges))}): plan each "
                            "exchange's bots on their own (one producer per exchange)")
        plan = cls(list(bots), trading_mode=modes.pop(), exchange=exchanges.pop())
        for bot in bots:
            plan.pairs += [p for p in bot.all_pairs if p not in plan.pairs]
            plan.timeframes += [t for t in bot.timeframes if t not in plan.timeframes]
            plan.dynamic += [f"{bot.source}: {m}" for m in bot.dynamic]
            for timeframe in bot.timeframes:
                # whole days, one more than the span, so the window still holds at the next day's start
                plan.days[timeframe] = max(plan.days.get(timeframe, 0), math.ceil(bot.span_ms / DAY_MS) + 1)
        plan.timeframes.sort(key=timeframe_ms)
        return plan

    def candles(self, timeframe: str) -> int:
        return self.days.get(timeframe, 0) * DAY_MS // timeframe_ms(timeframe)

    def yaml_fragment(self) -> str:
        """The group_vars lines that make the fleet cover every bot."""
        days = ", ".join(f"{tf}: {self.days[tf]}" for tf in sorted(self.days, key=timeframe_ms))
        # mark candles and funding rates (futures) are kept as long as the longest of these
        lines = [
            "# freqfeed plan: the history every bot's FreqAI downloads at start-up",
            *([f"freqfeed_exchange: {self.exchange}"] if self.exchange != EXCHANGES[0] else []),  # not the default
            f"freqfeed_trading_mode: {self.trading_mode}",
            f"freqfeed_pairs: [{', '.join(self.pairs)}]",
            f"freqfeed_timeframes: [{', '.join(self.timeframes)}]",
            f"freqfeed_history_days: {{{days}}}",
        ]
        if self.dynamic:
            lines.insert(1, "# pairs chosen at run time by dynamic pairlists are unknown in advance: "
                            + "; ".join(self.dynamic))
        return "\n".join(lines) + "\n"

    def describe(self) -> list[str]:
        lines = []
        for bot in self.bots:
            span_days = bot.span_ms / DAY_MS
            lines.append(f"{bot.source}: {bot.trading_mode}, {len(bot.all_pairs)} pairs"
                         + (f" (+ dynamic: {', '.join(bot.dynamic)})" if bot.dynamic else "")
                         + f", timeframes {', '.join(bot.timeframes)}, train_period_days {bot.train_period_days:g}"
                         + f" + {bot.max_period} startup candles = {span_days:.2f} days from "
                         + time.strftime("%Y-%m-%d %H:%M", time.gmtime(bot.start_ms / 1000)) + " UTC")
            for timeframe in bot.timeframes:
                lines.append(f"  {timeframe:>4}: {bot.candles(timeframe):>7} candles")
            bot_exchange = exchanges.get(bot.exchange)
            if bot.trading_mode == "futures" and has_mark_series(bot.exchange):
                lines.append(f"  mark {MARK_TIMEFRAME} and funding {FUNDING_TIMEFRAME}: {bot.candles(MARK_TIMEFRAME)} "
                             "candles each")
            elif bot.trading_mode == "futures":
                lines.append(f"  funding {FUNDING_TIMEFRAME}: {bot.candles(FUNDING_TIMEFRAME)} rates (no mark files: "
                             f"freqtrade uses the 1h futures candles as mark candles on {bot_exchange.title})")
            if bot_exchange.horizon is not None:
                lines += horizon_notes(bot)
        return lines


def horizon_notes(bot: BotNeed) -> list[str]:
    """What a bot must know on an exchange with a history horizon (Hyperliquid keeps 5000 candles): the rest
    comes from freqfeed's files only, and FreqAI needs the override."""
    described = exchanges.get(bot.exchange)
    horizon, title = described.horizon or 0, described.title
    lines = []
    for timeframe in bot.timeframes:
        horizon_days = horizon * timeframe_ms(timeframe) / DAY_MS
        if bot.candles(timeframe) > horizon:
            lines.append(f"  {timeframe:>4}: {title} itself serves only its last {horizon} candles "
                         f"({horizon_days:.1f} days): the rest only from freqfeed's recorded files")
    if bot.freqai:
        state = "set" if bot.override_exchange_checks else "NOT set: freqtrade refuses to start FreqAI"
        lines.append(f"  FreqAI on {title} needs freqai.override_exchange_checks: true (freqtrade's "
                     f"ohlcv_has_history is False there) with freqfeed's files in data/{described.name}: {state}")
    return lines


def covers(config: Config, plan: Plan) -> list[str]:
    """What the freqfeed config lacks to cover the plan (pairs, timeframes, history days)."""
    problems = []
    missing_pairs = [p for p in plan.pairs if p not in config.pairs]
    if missing_pairs:
        problems.append(f"pairs not collected: {', '.join(missing_pairs)}")
    missing_tfs = [t for t in plan.timeframes if t not in config.timeframes]
    if missing_tfs:
        problems.append(f"timeframes not collected: {', '.join(missing_tfs)}")
    for timeframe, days in plan.days.items():
        have = config.window(timeframe)
        if have < plan.candles(timeframe):
            problems.append(f"{timeframe}: the producer keeps {have} candles, the bots need {plan.candles(timeframe)}"
                            f" ({days} days)")
    return problems


@dataclass
class Coverage:
    """One series: what the bots need and what InfluxDB and the local files hold of it."""

    series: str
    need: int | None  # candles (funding: None, settlements come every 1, 4 or 8 hours per symbol)
    start_ms: int
    influx_count: int | None = None
    influx_oldest: int | None = None
    influx_holes: int | None = None
    file_count: int | None = None
    file_oldest: int | None = None
    file_holes: int | None = None
    recorded_days: float | None = None  # InfluxDB's oldest point of the series (within the retention) to now
    covered_from: int | None = None  # when the window will be covered if the history only grows from today's oldest

    @property
    def covered(self) -> bool:
        sources = [(self.influx_count, self.influx_oldest, self.influx_holes),
                   (self.file_count, self.file_oldest, self.file_holes)]
        return all(oldest is not None and oldest <= self.start_ms and not holes
                   for count, oldest, holes in sources if count is not None)


def coverage(config: Config, plan: Plan, client: Any, now_ms: int) -> list[Coverage]:
    """Per series of the plan: InfluxDB's count, oldest candle and holes in the needed window, and the same for
    the local files when the config has sync.datadir."""
    from freqfeed import feather, sync
    from freqfeed.schema import (
        FUNDING_MEASUREMENT,
        FUTURE_MARGIN_MS,
        MARK_MEASUREMENT,
        counts_select,
        first_times_select,
        ohlcv_measurement,
        retention_floor,
    )
    from freqfeed.timeframes import last_closed_open

    rows: list[Coverage] = []
    series: list[tuple[str, str, str, str]] = []  # (label, pair, timeframe, measurement)
    for timeframe in plan.timeframes:
        series += [(f"{pair} {timeframe}", pair, timeframe, ohlcv_measurement(timeframe)) for pair in plan.pairs]
    if plan.trading_mode == "futures" and has_mark_series(plan.exchange):
        series += [(f"{pair} {MARK_TIMEFRAME} mark", pair, MARK_TIMEFRAME, MARK_MEASUREMENT) for pair in plan.pairs]
    if plan.trading_mode == "futures":
        series += [(f"{pair} funding", pair, FUNDING_TIMEFRAME, FUNDING_MEASUREMENT) for pair in plan.pairs]
    start = min((b.start_ms for b in plan.bots), default=now_ms)
    horizon = now_ms + FUTURE_MARGIN_MS
    measurements = sorted({m for *_, m in series})
    selects = []
    for measurement in measurements:
        selects += [counts_select(measurement, start, horizon, pairs=plan.pairs),
                    first_times_select(measurement, start, horizon, pairs=plan.pairs),
                    first_times_select(measurement, retention_floor(now_ms, config.influxdb.retention_days), horizon,
                                       pairs=plan.pairs)]
    answers = client.select(selects)
    counts: dict[tuple[str, str], int] = {}
    oldest: dict[tuple[str, str], int] = {}
    recorded: dict[tuple[str, str], int] = {}
    for index, measurement in enumerate(measurements):
        for s in answers[3 * index]:
            counts[(measurement, s.tags.get("pair", ""))] = int(s.values[0][1]) if s.values else 0
        for s in answers[3 * index + 1]:
            if s.values:
                oldest[(measurement, s.tags.get("pair", ""))] = int(s.values[0][0])
        for s in answers[3 * index + 2]:
            if s.values:
                recorded[(measurement, s.tags.get("pair", ""))] = int(s.values[0][0])
    files = {(job.pair, job.measurement): job for job in sync.plan(config)} if config.sync.datadir else {}
    for label, pair, timeframe, measurement in series:
        period = timeframe_ms(timeframe)
        first_needed = -(-start // period) * period
        last = last_closed_open(now_ms, timeframe)
        need: int | None = (last - first_needed) // period + 1 if measurement != FUNDING_MEASUREMENT else None
        # funding: the window is covered from its first settlement, at most one interval after its start
        row = Coverage(label, need, first_needed if measurement != FUNDING_MEASUREMENT
                       else start + LONGEST_FUNDING_INTERVAL_MS - 1)
        row.influx_count = counts.get((measurement, pair), 0)
        row.influx_oldest = oldest.get((measurement, pair))
        first_recorded = recorded.get((measurement, pair))
        if first_recorded is not None:
            row.recorded_days = (now_ms - first_recorded) / DAY_MS
            row.covered_from = max(now_ms, first_recorded + (now_ms - row.start_ms))
        if measurement != FUNDING_MEASUREMENT and row.influx_oldest is not None:
            row.influx_holes = max(0, (last - max(row.influx_oldest, first_needed)) // period + 1 - row.influx_count)
        else:
            row.influx_holes = 0
        job = files.get((pair, measurement))
        if job is not None:
            try:
                table = feather.read_table(job.path, job.candle_type)
            except (feather.ForeignFileError, OSError):
                table = None
            row.file_count = 0 if table is None else int(table.num_rows)
            if table is not None and table.num_rows:
                dates = feather.date_ns(table) // 1_000_000
                row.file_oldest = int(dates[0])
                inside = dates[dates >= first_needed]
                row.file_holes = 0 if not job.on_grid or len(inside) < 2 else \
                    int((inside[-1] - inside[0]) // period + 1 - len(inside))
        rows.append(row)
    return rows


def render_coverage(rows: list[Coverage]) -> list[str]:
    def day(ms: int | None) -> str:
        return "-" if ms is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000))

    lines = [f"{'series':28} {'need':>7}  {'influxdb':>8} {'oldest':16} {'holes':>5}  {'files':>7} {'oldest':16} "
             f"{'holes':>5}  {'recorded':>8}  covered"]
    for r in rows:
        need = "-" if r.need is None else r.need
        lines.append(f"{r.series:28} {need:>7}  {r.influx_count if r.influx_count is not None else '-':>8} "
                     f"{day(r.influx_oldest):16} {r.influx_holes if r.influx_holes is not None else '-':>5}  "
                     f"{r.file_count if r.file_count is not None else '-':>7} {day(r.file_oldest):16} "
                     f"{r.file_holes if r.file_holes is not None else '-':>5}  "
                     f"{'-' if r.recorded_days is None else f'{r.recorded_days:.1f}d':>8}  "
                     + ("yes" if r.covered else "NO" if r.covered_from is None
                        else f"NO (recorded enough on {day(r.covered_from)})"))
    return lines


def main(freqtrade_configs: Sequence[str], config: Config | None = None) -> int:
    from freqfeed.influx import InfluxDB, InfluxDBError

    now = int(time.time() * 1000)
    bots = [bot_need(load_freqtrade_config(path), str(path), now) for path in freqtrade_configs]
    plan = Plan.of(bots)
    for line in plan.describe():
        print(line)
    print()
    print(plan.yaml_fragment(), end="")
    if config is None:
        return 0
    print()
    problems = covers(config, plan)
    for problem in problems:
        print(f"settings: {problem}")
    try:
        with InfluxDB(config.influxdb, retries=1) as client:
            rows = coverage(config, plan, client, now)
    except InfluxDBError as exc:
        print(f"InfluxDB: {exc}")
        return 1
    for line in render_coverage(rows):
        print(line)
    uncovered = [r.series for r in rows if not r.covered]
    print(f"\n{len(rows) - len(uncovered)} of {len(rows)} series cover the window"
          + (f"; not: {', '.join(uncovered[:10])}" + (" ..." if len(uncovered) > 10 else "") if uncovered else ""))
    return 0 if not uncovered and not problems else 1
