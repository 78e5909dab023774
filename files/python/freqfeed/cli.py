"""The `freqfeed` command line.

Exit status: 0 success, 1 the job ran but something failed (see the log), 2 bad configuration or usage.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from freqfeed import config as config_module
from freqfeed.config import Config, ConfigError

log = logging.getLogger("freqfeed")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def _config(args: argparse.Namespace) -> Config:
    environ = None
    if args.env_file:
        environ = {**os.environ, **config_module.read_env_file(args.env_file)}
    cfg = config_module.load(args.config, environ)
    from freqfeed.schema import use_exchange

    use_exchange(cfg.exchange.name)  # every command reads and writes this exchange's series
    return cfg


def _load(args: argparse.Namespace) -> Config:
    cfg = _config(args)
    _setup_logging(args.log_level or cfg.log_level)
    return cfg


def _cmd_check_config(args: argparse.Namespace) -> int:
    cfg = _config(args)
    print(f"{args.config}: ok ({cfg.trading_mode}, {len(cfg.pairs)} pairs, timeframes {', '.join(cfg.timeframes)})")
    return EXIT_OK


def _cmd_sync(args: argparse.Namespace) -> int:
    from freqfeed import sync

    cfg = _load(args)
    from freqfeed.metrics import write_sync_metrics

    try:
        report = sync.run(cfg)
    except RuntimeError as exc:  # another sync holds the data directory's lock
        log.error("%s", exc)
        write_sync_metrics(cfg, None)
        return EXIT_FAILED
    write_sync_metrics(cfg, report)
    return EXIT_OK if report.ok else EXIT_FAILED


def _cmd_produce(args: argparse.Namespace) -> int:
    from freqfeed import producer

    cfg = _load(args)
    return producer.main(cfg)


def _cmd_serve(args: argparse.Namespace) -> int:
    from freqfeed import exchanges

    cfg = _load(args)
    return exchanges.get(cfg.exchange.name).serve(cfg)


def _cmd_status(args: argparse.Namespace) -> int:
    from freqfeed import status

    cfg = _config(args)
    _setup_logging(args.log_level or "WARNING")
    return status.main(cfg, as_json=args.json, role=args.role)


def _cmd_check_influxdb(args: argparse.Namespace) -> int:
    from freqfeed import check_influxdb

    cfg = _config(args)
    _setup_logging(args.log_level or "WARNING")
    return check_influxdb.main(cfg, write_probe=args.write_probe)


def _cmd_plan(args: argparse.Namespace) -> int:
    from freqfeed import plan

    cfg = _config(args) if args.config else None
    _setup_logging(args.log_level or "WARNING")
    return plan.main(args.freqtrade_config, cfg)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from freqfeed import exchanges

    _setup_logging(args.log_level or "INFO")
    return exchanges.get(args.exchange).simulate(args.host, args.port, args.speed, args.seed, args.start,
                                                 args.fault or [])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="freqfeed", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="override the config file's log_level")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(name: str, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text)
        command.add_argument("--config", required=True, metavar="FILE", help="the host's freqfeed YAML file")
        command.add_argument("--env-file", metavar="FILE",
                             help="read FREQFEED_INFLUXDB_TOKEN/PASSWORD from this systemd EnvironmentFile")
        return command

    with_config("check-config", "validate a configuration file and exit").set_defaults(func=_cmd_check_config)
    with_config("sync", "one sync run: InfluxDB -> freqtrade feather files").set_defaults(func=_cmd_sync)
    with_config("produce", "backfill, then stream Binance into InfluxDB until stopped").set_defaults(
        func=_cmd_produce)
    with_config("serve", "serve Binance's public market-data API to the bots on this host (the gateway)").set_defaults(
        func=_cmd_serve)

    status_cmd = with_config("status", "is this host healthy and are its data fresh and complete?")
    status_cmd.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status_cmd.add_argument("--role", choices=["producer", "feeder"],
                            help="default: feeder when the config has sync.datadir, else producer")
    status_cmd.set_defaults(func=_cmd_status)

    check_influx = with_config("check-influxdb", "check the InfluxDB server: version, auth, database, retention, "
                                                 "read/write permission, statement batching")
    check_influx.add_argument("--write-probe", action="store_true",
                              help="also write one point to measurement freqfeed_probe and read it back")
    check_influx.set_defaults(func=_cmd_check_influxdb)

    plan_cmd = sub.add_parser("plan", help="the history the bots' FreqAI needs, and whether it is there")
    plan_cmd.add_argument("--freqtrade-config", required=True, nargs="+", metavar="PATH",
                          help="one or more bots' freqtrade config files")
    plan_cmd.add_argument("--config", metavar="FILE", help="a freqfeed config: check InfluxDB and the files against it")
    plan_cmd.add_argument("--env-file", metavar="FILE", help="FREQFEED_INFLUXDB_TOKEN/PASSWORD from this file")
    plan_cmd.set_defaults(func=_cmd_plan)

    simulate = sub.add_parser("simulate", help="serve a simulated exchange (Binance or Hyperliquid) for tests and "
                              "the lab")
    simulate.add_argument("--exchange", choices=config_module.EXCHANGES, default="binance",
                          help="which exchange to simulate (its package's simulator)")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=8090)
    simulate.add_argument("--speed", type=float, default=1.0, help="exchange clock speed (x real time)")
    simulate.add_argument("--seed", type=int, default=1, help="seed of the deterministic prices")
    simulate.add_argument("--start", type=int, default=None,
                          help="exchange time (epoch ms) at start-up; default: now")
    simulate.add_argument("--fault", action="append", metavar="NAME[=VALUE]",
                          help="switch a fault on at start-up: drop, refuse=S, 429=N, ban=S, malformed=N, silent=S")
    simulate.set_defaults(func=_cmd_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"freqfeed: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
