"""Fixtures of the live tests: the shipped bursty router as a bundle, a stub topology."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory):
    pytest.importorskip("stable_baselines3")  # exporting reads the torch policy
    from prfaas_gym.export import export_router_bundle

    return export_router_bundle("trained:routing-bursty", tmp_path_factory.mktemp("b") / "bursty")


@pytest.fixture(scope="session")
def bundle(bundle_dir):
    from prfaas_gym.export import RouterBundle

    return RouterBundle.load(bundle_dir)


def free_port_block(n: int) -> int:
    """A base port with ``n`` consecutive free ports on 127.0.0.1."""
    import random
    import socket

    for _ in range(200):
        base = random.randint(20000, 60000 - n)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port block")


@pytest.fixture
def stub_doc(bundle):
    from prfaas_gym.live.stub_engine import stub_topology_doc

    return stub_topology_doc(bundle, free_port_block(16))
