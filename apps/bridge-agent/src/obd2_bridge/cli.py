# SPDX-License-Identifier: GPL-2.0-or-later
import argparse
import sys

from obd2_bridge import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="obd2-bridge", description="obd2-dashboard Bridge Agent")
    parser.add_argument("--version", action="version", version=f"obd2-bridge {__version__}")
    parser.parse_args(argv)
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
