# SPDX-License-Identifier: GPL-2.0-or-later
import argparse
import asyncio
import json
import logging
import sys
import threading
from pathlib import Path

from obd2_bridge import __version__
from obd2_bridge.adapter import AdapterError
from obd2_bridge.agent import run_agent
from obd2_bridge.config import ConfigError, load_config
from obd2_bridge.scan import scan
from obd2_bridge.simulator import DriveCycle, ElmSimulator, SimulatedCar
from obd2_bridge.simulator.elm import serve_forever
from obd2_bridge.spool import SpoolLockedError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="obd2-bridge", description="obd2-dashboard Bridge Agent")
    parser.add_argument("--version", action="version", version=f"obd2-bridge {__version__}")
    sub = parser.add_subparsers(dest="command")

    def adapter_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--adapter", help="serial device or pyserial URL (socket://host:port)")
        p.add_argument("--baudrate", help="adapter baud rate, or 'auto' (default 38400)")
        p.add_argument("--protocol", help="ELM327 protocol 1-9/A (default: automatic)")
        p.add_argument("--config", type=Path, help="config file (default /etc/obd2-bridge.toml)")

    run = sub.add_parser("run", help="read the car and upload")
    adapter_options(run)
    run.add_argument("--api", dest="api_url", help="server URL, e.g. https://obd.example.org")
    run.add_argument("--token", help="device token")
    run.add_argument("--pids", help="fast PIDs, comma-separated (python-OBD names)")
    run.add_argument("--slow-pids", help="slow PIDs, comma-separated")
    run.add_argument("--spool", help="spool file")
    run.add_argument("--no-multi-pid", action="store_true", help="one PID per request")

    scan = sub.add_parser("scan", help="print protocol, VIN, supported PIDs and DTCs")
    adapter_options(scan)
    scan.add_argument("--json", action="store_true", help="JSON output")

    simulate = sub.add_parser("simulate", help="a simulated car behind an ELM327 on TCP")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=35000)
    simulate.add_argument(
        "--delay-ms",
        type=float,
        default=0.0,
        help="the ECU's response time per request; above the ELM's ATST wait it is NO DATA",
    )
    simulate.add_argument("--vin", default="1HGCM82633A004352")
    car = simulate.add_mutually_exclusive_group()
    car.add_argument("--no-engine-off", action="store_true", help="never switch off")
    car.add_argument(
        "--realistic",
        action="store_true",
        help="drive like a real car: parked, town and motorway, lights, a trouble code",
    )
    simulate.add_argument(
        "--seed", type=int, default=15, help="the realistic car's seed (default 15)"
    )
    simulate.add_argument(
        "--start-ms",
        type=int,
        help="epoch ms the realistic car's day starts from (default: now)",
    )
    simulate.add_argument("--dtc", action="append", default=[], help="a stored DTC, e.g. P0143")
    simulate.add_argument(
        "--protocol", choices=("6", "3"), default="6", help="6: CAN 11/500, 3: ISO 9141-2 K-line"
    )
    simulate.add_argument(
        "--bus-init-every",
        type=int,
        default=0,
        metavar="N",
        help="K-line: print 'BUS INIT: ...OK' before the data every N requests",
    )
    simulate.add_argument(
        "--stuck",
        choices=("STOPPED", "BUFFER FULL", "?", "CAN ERROR"),
        help="answer every OBD request with this until ATZ or ATWS",
    )
    simulate.add_argument(
        "--freeze-after", type=float, metavar="S", help="after S seconds the link stalls"
    )
    simulate.add_argument(
        "--freeze-for", type=float, default=30.0, metavar="S", help="how long it stays stalled"
    )
    simulate.add_argument("--echo-stuck", action="store_true", help="ATE0 does not stop the echo")
    simulate.add_argument(
        "--missing-pid",
        action="append",
        default=[],
        metavar="HEX",
        help="a mode-01 PID the ECU no longer answers, e.g. 0F",
    )
    simulate.add_argument(
        "--no-count-wait",
        action="store_true",
        help="the ELM waits its ATST time (200 ms unless set) for more ECUs when a request "
        "carries no response count, as a real one does",
    )
    simulate.add_argument(
        "--no-atst", action="store_true", help="an old clone: '?' to ATST (no timeout tuning)"
    )
    simulate.add_argument(
        "--no-counts",
        action="store_true",
        help="an old clone: '?' to a request with the response-count digit",
    )
    simulate.add_argument(
        "--no-monitor", action="store_true", help="a clone that answers '?' to ATMA (monitor all)"
    )
    return parser


def quiet_third_party_logs() -> None:
    """Library chatter (a line per request) would wear a Pi's SD card: warnings only.

    python-OBD's messages do not reach the log directly: the adapter captures them and reports
    them as the reason of its own error, so they are said once, with context.
    """
    for name in ("httpx", "httpcore", "websockets", "asyncio"):
        logging.getLogger(name).setLevel(logging.WARNING)
    obd_logger = logging.getLogger("obd")
    obd_logger.setLevel(logging.WARNING)
    obd_logger.propagate = False
    for handler in list(obd_logger.handlers):  # python-OBD prints to the console by itself
        obd_logger.removeHandler(handler)
    obd_logger.addHandler(logging.NullHandler())  # else logging's last resort prints them


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.command == "simulate":
        return _simulate(args)
    overrides = {
        "adapter": args.adapter,
        "baudrate": args.baudrate,
        "protocol": args.protocol,
    }
    if args.command == "run":
        overrides |= {
            "api_url": args.api_url,
            "token": args.token,
            "fast_pids": args.pids,
            "slow_pids": args.slow_pids,
            "spool": args.spool,
            "multi_pid": False if args.no_multi_pid else None,
        }
    try:
        config = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"obd2-bridge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    quiet_third_party_logs()
    if args.command == "scan":
        return _scan(
            config.adapter, config.baudrate, config.protocol, config.adapter_timeout_s, args.json
        )
    try:
        config.check()
    except ConfigError as exc:
        print(f"obd2-bridge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        asyncio.run(run_agent(config))
    except SpoolLockedError as exc:
        print(f"obd2-bridge: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _scan(
    port: str, baudrate: int | None, protocol: str | None, timeout_s: float, as_json: bool
) -> int:
    if not port:
        print("obd2-bridge: adapter is not set (--adapter or OBD2_ADAPTER)", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = scan(port, baudrate=baudrate, protocol=protocol, timeout_s=timeout_s)
    except AdapterError as exc:
        if as_json:
            print(json.dumps({"error": str(exc), "state": exc.state}))
        print(f"obd2-bridge: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(f"protocol: {result['protocol']}\nVIN: {result['vin']}\nvoltage: {result['voltage']}")
        print("supported PIDs: " + ", ".join(result["supported_pids"]))
        for kind in ("stored", "pending", "permanent"):
            codes = ", ".join(d["code"] for d in result["dtcs"][kind]) or "none"
            print(f"{kind} DTCs: {codes}")
    return EXIT_OK


def _simulate(args: argparse.Namespace) -> int:
    car = SimulatedCar(
        DriveCycle(engine_off_s=0.0) if args.no_engine_off else None,
        vin=args.vin,
        realistic=args.seed if args.realistic else None,
        start_ms=args.start_ms,
    )
    if args.dtc:
        car.set_dtcs(args.dtc)
    try:
        missing = frozenset(int(pid, 16) for pid in args.missing_pid)
    except ValueError:
        print(f"obd2-bridge simulate: --missing-pid takes hex PIDs, got {args.missing_pid}")
        return EXIT_USAGE
    elm = ElmSimulator(
        car,
        request_delay_s=args.delay_ms / 1000.0,
        protocol=args.protocol,
        bus_init_every=args.bus_init_every,
        echo_stuck=args.echo_stuck,
        missing_pids=missing,
        waits_without_count=args.no_count_wait,
        knows_timeout=not args.no_atst,
        knows_monitor=not args.no_monitor,
        knows_counts=not args.no_counts,
    )
    if args.stuck:
        elm.stick(args.stuck)
    if args.freeze_after is not None:
        freeze = threading.Timer(args.freeze_after, elm.freeze, (args.freeze_for,))
        freeze.daemon = True
        freeze.start()
    try:
        asyncio.run(serve_forever(elm, args.host, args.port))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(
            f"obd2-bridge simulate: cannot listen on {args.host}:{args.port}: {exc}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
