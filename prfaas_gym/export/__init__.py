"""Export a trained router for a live serving stack: a torch-free bundle
(:mod:`prfaas_gym.export.bundle`) and a small HTTP router service
(:mod:`prfaas_gym.export.service`). See ``docs/export.md``."""

from prfaas_gym.export.bundle import BundleRouter, Decision, RouterBundle, export_router_bundle

__all__ = ["BundleRouter", "Decision", "RouterBundle", "export_router_bundle"]
