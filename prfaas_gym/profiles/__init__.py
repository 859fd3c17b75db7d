"""Hardware, model and link profiles: frozen dataclasses plus packaged YAML data.

>>> from prfaas_gym.profiles import get_hardware, get_model
>>> get_model("llama3-8b").kv_bytes_per_token
131072.0
"""

from .errors import ProfileError, UnknownProfileError
from .hardware import HardwareProfile, StepEfficiency
from .link import LinkProfile
from .loader import (
    get_hardware,
    get_model,
    hardware_from_dict,
    hardware_to_dict,
    list_hardware,
    list_models,
    load_hardware_file,
    load_model_file,
    model_from_dict,
)
from .model import DTYPE_BYTES, AttentionSpec, FFNSpec, LayerGroup, ModelProfile

__all__ = [
    "AttentionSpec", "DTYPE_BYTES", "FFNSpec", "HardwareProfile", "LayerGroup", "LinkProfile",
    "ModelProfile", "ProfileError", "StepEfficiency", "UnknownProfileError", "get_hardware",
    "get_model", "hardware_from_dict", "hardware_to_dict", "list_hardware", "list_models",
    "load_hardware_file", "load_model_file", "model_from_dict",
]
