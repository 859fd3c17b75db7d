"""``router.onnx``: a bundle's decision as an ONNX graph, built from the bundle's numpy arrays
with the ``onnx`` package's graph helpers (no torch, no tracing).

Inputs ``observation`` (double, ``[batch, features]``: the raw encoder output, as in
``golden.json``) and ``mask`` (bool, ``[batch, actions]``); outputs ``logits`` (float,
``[batch, actions]``) and ``action`` (int64, ``[batch]``, the arg-max over allowed actions).
The graph repeats :class:`~prfaas_gym.export.bundle.RouterBundle` step by step: VecNormalize in
double (``(x - mean) / sqrt(var + eps)``, clipped), a cast to float, then ``Gemm`` and the
activation per layer, and a ``Where``/``ArgMax`` for the mask. The observation encoder is not
in the graph (it is request-dependent control flow over the body); ``golden.json`` pins it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prfaas_gym.export.bundle import RouterBundle

ONNX_MODEL = "router.onnx"
OPSET = 17
IR_VERSION = 8  # opset 17 / IR 8: loads in onnxruntime 1.13 and later


def require_onnx() -> None:
    """``ValueError`` (a one-line CLI error) when the ``onnx`` package is missing."""
    try:
        import onnx  # noqa: F401
    except ModuleNotFoundError:
        raise ValueError("export --onnx: needs the onnx package (pip install 'prfaas-gym[onnx]')") from None


def build_onnx(bundle: RouterBundle):
    """The ``onnx.ModelProto`` of ``bundle`` (checked with ``onnx.checker``)."""
    require_onnx()
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n_obs, n_act = len(bundle.feature_names), len(bundle.slots)
    inits, nodes = [], []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    x = "observation"
    norm = bundle.normalizer
    if norm is not None:
        nodes += [
            helper.make_node("Sub", [x, const("obs_mean", norm.mean.astype(np.float64))], ["centred"]),
            helper.make_node("Div", ["centred", const("obs_std", norm.std.astype(np.float64))], ["scaled"]),
            helper.make_node("Clip", ["scaled", const("clip_lo", np.array(-norm.clip_obs)),
                                      const("clip_hi", np.array(norm.clip_obs))], ["clipped"]),
        ]
        x = "clipped"
    nodes.append(helper.make_node("Cast", [x], ["h0"], to=TensorProto.FLOAT))
    x = "h0"
    act = {"tanh": "Tanh", "relu": "Relu"}[bundle.manifest["activation"]]
    last = len(bundle._layers) - 1
    for i, (w, b) in enumerate(bundle._layers):
        out = "logits" if i == last else f"z{i}"
        nodes.append(helper.make_node("Gemm", [x, const(f"W{i}", w), const(f"b{i}", b)], [out], transB=1))
        if i < last:
            nodes.append(helper.make_node(act, [out], [f"h{i + 1}"]))
            x = f"h{i + 1}"
    nodes += [
        helper.make_node("Where", ["mask", "logits", const("minus_inf", np.array(-np.inf, dtype=np.float32))],
                         ["allowed_logits"]),
        helper.make_node("ArgMax", ["allowed_logits"], ["action"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, f"prfaas-router:{bundle.name}",
        [helper.make_tensor_value_info("observation", TensorProto.DOUBLE, ["batch", n_obs]),
         helper.make_tensor_value_info("mask", TensorProto.BOOL, ["batch", n_act])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", n_act]),
         helper.make_tensor_value_info("action", TensorProto.INT64, ["batch"])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="prfaas-gym", doc_string=f"actions: {', '.join(bundle.slot_labels)}")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def write_onnx(bundle: RouterBundle, path: str | Path) -> Path:
    """Write ``bundle``'s ONNX graph to ``path``."""
    p = Path(path)
    p.write_bytes(build_onnx(bundle).SerializeToString())
    return p
