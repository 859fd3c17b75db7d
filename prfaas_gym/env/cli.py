"""``prfaas-gym envs``: list the registered env ids, one line each."""

from __future__ import annotations

import argparse


def add_envs_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``envs`` subcommand."""
    p = subparsers.add_parser("envs", help="list the registered Gymnasium env ids",
                              description="List the prfaas/ Gymnasium env ids with one line each.")
    p.add_argument("--base", action="store_true", help="only the four base ids")
    p.set_defaults(func=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    from prfaas_gym.env.registration import BASE_IDS, ENV_IDS

    ids = BASE_IDS if args.base else tuple(ENV_IDS)
    width = max(len(i) for i in ids)
    for env_id in ids:
        print(f"{env_id:<{width}}  {ENV_IDS[env_id][2]}")
    return 0
