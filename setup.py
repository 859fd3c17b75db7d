"""Packaging glue pyproject.toml cannot express: ship ``envs/`` as ``prfaas_gym.builtin_envs``.

The scenario files live once, in the top-level ``envs/`` folder; a plain (non-editable)
install carries them as package data so built-in scenarios work without the repository.
"""

from pathlib import Path

from setuptools import find_packages, setup

ENV_PACKAGES = ["prfaas_gym.builtin_envs"] + [
    "prfaas_gym.builtin_envs." + ".".join(p.relative_to("envs").parts)
    for p in sorted(Path("envs").rglob("*")) if p.is_dir() and any(p.glob("*.yaml"))
]

setup(
    packages=find_packages(include=["prfaas_gym", "prfaas_gym.*"]) + ENV_PACKAGES,
    package_dir={"prfaas_gym.builtin_envs": "envs"},
    package_data={
        "prfaas_gym": ["py.typed", "**/*.yaml", "**/*.csv", "**/*.json", "**/*.safetensors"],
        **{pkg: ["*.yaml", "*.md"] for pkg in ENV_PACKAGES},
    },
)
