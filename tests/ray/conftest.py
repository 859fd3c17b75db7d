"""Ray tests: skipped cleanly without the ``ray`` extra; one local Ray with 2 CPUs per session."""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray", reason="needs the 'ray' extra (pip install 'prfaas-gym[ray]')")


@pytest.fixture(scope="session")
def local_ray():
    """A local Ray with 2 CPUs, started through the package's backend (its runtime_env)."""
    from prfaas_gym.parallel import Backend
    from prfaas_gym.ray_backend import init_ray

    init_ray(Backend("ray", workers=2))
    yield ray
    ray.shutdown()
