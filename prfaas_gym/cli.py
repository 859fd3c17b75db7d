"""The ``prfaas-gym`` command line.

Each subcommand lives beside the code it drives and registers itself through an
``add_*_parser(subparsers)`` function; this module only assembles them and turns user
errors (bad scenario, trace, profile, argument) into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

def _user_errors() -> tuple[type[BaseException], ...]:
    # SimulationError: a scenario that cannot make progress (e.g. every decode instance failed)
    from prfaas_gym.sim import SimulationError

    return (ValueError, FileNotFoundError, KeyError, SimulationError)


def _add_subcommands(sub) -> None:
    from prfaas_gym.benchmark.cli import add_benchmark_parser
    from prfaas_gym.commands.simulate import add_simulate_parser
    from prfaas_gym.env.cli import add_envs_parser
    from prfaas_gym.evaluation.bound_cli import add_bound_parser
    from prfaas_gym.export.cli import add_export_parsers
    from prfaas_gym.live.cli import add_live_parsers
    from prfaas_gym.perf.cli import add_perf_parser
    from prfaas_gym.planner.capacity_cli import add_capacity_parser
    from prfaas_gym.planner.cli import add_plan_parser
    from prfaas_gym.policies.cli import add_compare_parser, add_policy_parser, add_sweep_parser
    from prfaas_gym.tune import add_tune_parser

    for add in (add_simulate_parser, add_plan_parser, add_capacity_parser, add_compare_parser,
                add_sweep_parser, add_bound_parser, add_perf_parser, add_envs_parser, add_export_parsers,
                add_policy_parser, add_benchmark_parser, add_tune_parser, add_live_parsers):
        add(sub)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="prfaas-gym",
        description="Simulate, plan and train scheduling policies for cross-datacenter "
        "prefill/decode-disaggregated LLM serving (PrfaaS).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_subcommands(sub)
    return parser


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so ``finally`` blocks remove temporary files."""


def _on_sigterm(signum, frame) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prfaas-gym`` console script."""
    import signal
    import threading

    parser = build_parser()
    args = parser.parse_args(argv)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
    try:
        return int(args.func(args) or 0)
    except _user_errors() as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, KeyError):
            msg = f"unknown name {msg}"
        print(f"prfaas-gym: error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `prfaas-gym ... | head`: the reader left, nothing to report
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except _Terminated:
        print("prfaas-gym: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("prfaas-gym: interrupted", file=sys.stderr)
        return 130
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
