"""Step-time models (roofline, table, polynomial) and their calibration.

>>> from prfaas_gym.perf import build_step_time_model
>>> from prfaas_gym.profiles import get_hardware, get_model
>>> stm = build_step_time_model(None, get_model("llama3-8b"), get_hardware("h100-sxm"), 1)
>>> 0.0 < stm.decode_s(8, 8 * 1024) < stm.prefill_s([(8192, 0)])
True
"""

from .base import PerfInputError, StepTimeModel
from .factory import BACKENDS, build_step_time_model
from .polynomial import PolynomialModel
from .roofline import RooflineModel, Work
from .table import TableModel, list_tables, load_table

__all__ = [
    "BACKENDS", "PerfInputError", "PolynomialModel", "RooflineModel", "StepTimeModel", "TableModel", "Work",
    "build_step_time_model", "list_tables", "load_table",
]
