"""Start, stop and inspect the local lab: ``python -m lab up|down|status|stop NAME``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lab.core import LabError
from lab.orchestrator import COMPONENTS, down, status, stop_component, up

DEFAULT_STATE = Path(__file__).resolve().parent.parent / ".lab"
DEFAULT_INVENTORY = (
    Path(__file__).resolve().parent.parent
    / "inventories"
    / "lab"
    / "group_vars"
    / "trm_platform"
    / "lab.yml"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE)
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start every lab server and seed it")
    start.add_argument("--inventory", type=Path, default=DEFAULT_INVENTORY)
    start.add_argument(
        "--only", nargs="+", choices=COMPONENTS, help="start only these servers"
    )
    commands.add_parser("down", help="stop every lab server by its process id")
    commands.add_parser("status", help="show which lab servers are running")
    stop = commands.add_parser("stop", help="stop one server (to rehearse an outage)")
    stop.add_argument("name", choices=COMPONENTS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one lab command and return the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "up":
            up(args.state_dir, inventory=args.inventory, only=args.only)
        elif args.command == "down":
            down(args.state_dir)
        elif args.command == "stop":
            stop_component(args.state_dir, args.name)
        else:
            return 0 if status(args.state_dir) else 1
    except LabError as error:
        print(f"lab: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
