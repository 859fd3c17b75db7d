"""prfaas-gym: Gymnasium environments over a discrete-event simulation of cross-datacenter
prefill/decode-disaggregated LLM serving (PrfaaS).

Importing the package registers the ``prfaas/`` env ids (``prfaas-gym envs`` lists them);
the simulator, planner and policies live in subpackages (see docs/ARCHITECTURE.md).
"""

__version__ = "0.1.0"

import prfaas_gym.env.registration  # noqa: F401,E402  registers the prfaas/ Gymnasium env ids
