"""Router bundles: a trained routing policy as plain files a live router can load without
torch, Stable-Baselines3 or a simulator.

A bundle directory holds

* ``router.json``: format tag, the slot layout (what each action means, by cluster name),
  which slots can ship KV to each decode cluster, the observation's feature names, the
  VecNormalize statistics, the network's activation, and where the policy came from;
* ``weights.npz``: the actor MLP (``W0, b0, W1, b1, ...``; the last pair gives the logits).

At run time :class:`RouterBundle` takes the same two records the envs build,
:class:`~prfaas_gym.env.snapshot.ClusterSnapshot` and
:class:`~prfaas_gym.env.snapshot.RequestFeatures`, encodes them with the envs' own encoder
(:func:`~prfaas_gym.env.observation.encode_routing_obs`), masks the actions as
``prfaas/Routing-v1`` does (:func:`~prfaas_gym.env.actions.action_mask`) and takes the
masked arg-max of the logits: the deterministic action of the trained policy, in numpy.
:class:`BundleRouter` runs a bundle inside the simulator, which is how the tests check that
an export routes exactly like the policy it came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prfaas_gym.atomic import write_dir_atomic
from prfaas_gym.env.actions import pull_slot_refs, request_mask
from prfaas_gym.env.observation import encode_routing_obs, routing_feature_names
from prfaas_gym.env.snapshot import (
    SLOT_REJECT, ClusterSnapshot, RequestFeatures, Slot, SnapshotReader, build_slots,
)
from prfaas_gym.policies.trained import read_json_file
from prfaas_gym.policies.trained.router import LearnedRouter, ObsNormalizer

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator

BUNDLE_FORMAT = "prfaas-router-bundle/1"
MANIFEST = "router.json"
WEIGHTS = "weights.npz"
ACTIVATIONS = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0)}


@dataclass(frozen=True)
class Decision:
    """What a bundle decided for one request.

    Attributes:
        action: the action index (slot index; the last one rejects).
        slot: the slot's label, e.g. ``"prfaas"``, ``"pd/2"``, ``"pd<-prfaas"``, ``"reject"``.
        reject: the request is refused.
        prefill_cluster: where to prefill (cluster name), ``None`` when rejected.
        prefill_instance: the instance within it, ``None`` for "the cluster's least-wait instance".
        pull_from: pull the cached prefix from this cluster first, else ``None``.
    """

    action: int
    slot: str
    reject: bool
    prefill_cluster: str | None
    prefill_instance: int | None
    pull_from: str | None

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (the router service's JSON answer)."""
        return dict(self.__dict__)


class RouterBundle:
    """A loaded bundle: numpy inference over the envs' observation (module docstring)."""

    def __init__(self, manifest: dict[str, Any], weights: list[tuple[np.ndarray, np.ndarray]],
                 source: str = "bundle") -> None:
        if manifest.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"{source}: format {manifest.get('format')!r} is not {BUNDLE_FORMAT}")
        act = manifest.get("activation")
        if act not in ACTIVATIONS:
            raise ValueError(f"{source}: activation {act!r} not supported ({', '.join(ACTIVATIONS)})")
        self.manifest = manifest
        self.name: str = manifest["name"]
        self.clusters: list[str] = list(manifest["clusters"])
        self.links: list[str] = list(manifest["links"])
        self.slots = tuple(Slot(s["kind"], s["cluster"], s.get("instance"), s.get("pull_from"), s["label"])
                           for s in manifest["slots"])
        self.slot_labels = [s.label for s in self.slots]
        self.feature_names: list[str] = list(manifest["feature_names"])
        self.slot_reach: list[list[bool]] = [list(map(bool, r)) for r in manifest["slot_reach"]]
        self.allow_reject = bool(manifest["allow_reject"])
        self._pulls = pull_slot_refs(self.slots)
        self._act = ACTIVATIONS[act]
        # float32 like the torch policy, so near-ties break the same way
        self._layers = [(np.asarray(w, dtype=np.float32), np.asarray(b, dtype=np.float32)) for w, b in weights]
        self.normalizer = ObsNormalizer.from_dict(manifest.get("normalization"))
        n_obs = len(self.feature_names)
        if self._layers[0][0].shape[1] != n_obs or self._layers[-1][0].shape[0] != len(self.slots):
            raise ValueError(f"{source}: weights do not match {n_obs} features and {len(self.slots)} actions")

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path) -> "RouterBundle":
        """Load a bundle directory (``router.json`` + ``weights.npz``)."""
        d = Path(path)
        man_path, w_path = d / MANIFEST, d / WEIGHTS
        if not man_path.is_file() or not w_path.is_file():
            raise FileNotFoundError(f"{d}: not a router bundle (needs {MANIFEST} and {WEIGHTS})")
        manifest = read_json_file(man_path, limit=16_000_000)
        if not isinstance(manifest, dict):
            raise ValueError(f"{man_path}: expected a JSON object")
        weights = _read_weights(w_path)
        try:
            return cls(manifest, weights, source=str(d))
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"{man_path}: malformed manifest ({type(exc).__name__}: {exc})") from None

    # ------------------------------------------------------------------ inference
    def logits(self, obs: np.ndarray) -> np.ndarray:
        """Action logits for one raw (unnormalised) observation."""
        x = self.normalizer(np.asarray(obs)) if self.normalizer is not None else obs
        return self.policy_logits(x)

    def policy_logits(self, x: np.ndarray) -> np.ndarray:
        """Action logits for an already normalised observation (the actor MLP alone)."""
        x = np.asarray(x, dtype=np.float32)
        last = len(self._layers) - 1
        for i, (w, b) in enumerate(self._layers):
            x = w @ x + b
            if i < last:
                x = self._act(x)
        return x

    def act(self, obs: np.ndarray, mask: np.ndarray | None = None) -> int:
        """The deterministic action: arg-max of the logits over the allowed actions."""
        return _masked_argmax(self.logits(obs), mask)

    def mask(self, snap: ClusterSnapshot, req: RequestFeatures) -> np.ndarray:
        """The actions ``prfaas/Routing-v1`` would allow for this state and request."""
        return np.array(request_mask(self.slots, snap, req, self.allow_reject, self.slot_reach, self._pulls),
                        dtype=bool)

    def decide(self, snap: ClusterSnapshot, req: RequestFeatures) -> Decision:
        """Route one request given the cluster snapshot (see :class:`Decision`)."""
        self.check_shapes(snap, req)
        return self.decision(self.act(encode_routing_obs(snap, req), self.mask(snap, req)))

    def decision(self, action: int) -> Decision:
        """What action index ``action`` means (the slot it names, or reject)."""
        s = self.slots[action]
        if s.kind == SLOT_REJECT:
            return Decision(action, s.label, True, None, None, None)
        return Decision(action, s.label, False, self.clusters[s.cluster], s.instance,
                        self.clusters[s.pull_from] if s.pull_from is not None else None)

    def check_shapes(self, snap: ClusterSnapshot, req: RequestFeatures) -> None:
        """Refuse records whose lengths do not match the bundle's slots, clusters and links."""
        n_slots, n_c, n_l = len(self.slots) - 1, len(self.clusters), len(self.links)
        expect = {"snapshot.slot_open": (snap.slot_open, n_slots), "snapshot.slot_queue": (snap.slot_queue, n_slots),
                  "snapshot.slot_wait_s": (snap.slot_wait_s, n_slots),
                  "request.slot_service_s": (req.slot_service_s, n_slots),
                  "request.cached_tokens": (req.cached_tokens, n_c)}
        for f in ("cluster_prefill_frac", "cluster_decode_mem_frac", "cluster_decode_batch_frac", "cluster_decode_queue"):
            expect[f"snapshot.{f}"] = (getattr(snap, f), n_c)
        for f in ("link_bw_frac", "link_util", "link_flows"):
            expect[f"snapshot.{f}"] = (getattr(snap, f), n_l)
        for name, (seq, n) in expect.items():
            if len(seq) != n:
                raise ValueError(f"{name}: expected {n} values for this bundle, got {len(seq)}")


def _read_weights(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """``W0, b0, W1, b1, ...`` from ``weights.npz`` (plain arrays only: never unpickles)."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            n = len(z.files) // 2
            if n == 0 or sorted(z.files) != sorted(f"{k}{i}" for i in range(n) for k in "Wb"):
                raise ValueError(f"{path}: expected arrays W0, b0, W1, b1, ... (found {sorted(z.files)[:6]})")
            return [(z[f"W{i}"], z[f"b{i}"]) for i in range(n)]
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a readable .npz of weight arrays ({str(exc).splitlines()[0][:60]})") from None
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: not plain weight arrays (object arrays are refused)") from None


def _masked_argmax(logits: np.ndarray, mask: np.ndarray | None) -> int:
    """Arg-max over the allowed actions. Non-finite logits (a NaN observation) raise, as the
    torch policy's distribution check does, instead of ``argmax`` silently picking the first
    NaN (#16: the bundle diverged from the torch policy on link outages)."""
    if not np.isfinite(logits).all():
        raise ValueError("router bundle: non-finite action logits (is the observation finite?)")
    if mask is not None:
        logits = np.where(np.asarray(mask, dtype=bool), logits, -np.inf)
    return int(np.argmax(logits))


class _NumpyActor:
    """The bundle's actor behind the ``predict`` call :class:`LearnedRouter` makes."""

    def __init__(self, bundle: RouterBundle) -> None:
        self.bundle = bundle

    def predict(self, x: np.ndarray, deterministic: bool = True,
                action_masks: np.ndarray | None = None) -> tuple[int, None]:
        return _masked_argmax(self.bundle.policy_logits(x), action_masks), None


class BundleRouter(LearnedRouter):
    """A bundle as a simulator :class:`~prfaas_gym.sim.Router` (checks the export in
    simulation): the trained-policy router with the numpy actor in place of the torch one."""

    def __init__(self, bundle: RouterBundle, max_instance_slots: int = 16, pull_slots: bool = True) -> None:
        from prfaas_gym.policies.trained import observation_settings

        src = bundle.manifest.get("source") or {}
        super().__init__(_NumpyActor(bundle), bundle.slot_labels, normalizer=bundle.normalizer,
                         max_instance_slots=max_instance_slots, pull_slots=pull_slots,
                         allow_reject=bundle.allow_reject, name=f"bundle:{bundle.name}",
                         feature_names=bundle.feature_names,
                         **observation_settings(src.get("env_kwargs") or {}))
        self.bundle = bundle


def export_router_bundle(policy: str, out_dir: str | Path, scenario: Any = None, *,
                         trust_pickle: bool = False, onnx: bool = False) -> Path:
    """Write the bundle of a trained routing policy (``trained:NAME`` or a policy directory).

    ``scenario`` (name, path or Scenario) fixes the slot layout and cluster names; default:
    the one it was trained on. The directory is written whole or not at all, with
    ``golden.json`` (reference cases, :mod:`prfaas_gym.export.golden`) and, with ``onnx``,
    ``router.onnx`` (:mod:`prfaas_gym.export.onnx_export`; needs the ``onnx`` extra).
    ``trust_pickle``: allow a pickle-based ``model.zip`` source (runs code from the file).
    """
    if onnx:
        from prfaas_gym.export.onnx_export import require_onnx

        require_onnx()
    from prfaas_gym.api import build_simulator
    from prfaas_gym.policies.trained import load_metadata, load_policy_net, resolve_policy_dir
    from prfaas_gym.scenario import load_scenario

    src = resolve_policy_dir(policy)
    meta = load_metadata(str(src))
    if not str(meta.get("env_id", "")).startswith("prfaas/Routing"):
        raise ValueError(f"{policy}: a {meta.get('env_id')} policy is not a router")
    kw = meta.get("env_kwargs", {})
    sc = scenario if scenario is not None else kw.get("scenario")
    if sc is None:
        raise ValueError(f"{policy}: metadata names no scenario; pass one")
    sc = load_scenario(sc) if not hasattr(sc, "clusters") else sc
    sim = build_simulator(sc, n_requests=1)  # idle clusters at t = 0: the layout and an example body
    slots = build_slots(sim, int(kw.get("max_instance_slots", 16)), bool(kw.get("pull_slots", True)))
    if [s.label for s in slots] != meta["slot_labels"]:
        raise ValueError(f"{policy}: scenario {sc.name!r} lays out slots {[s.label for s in slots]}, "
                         f"the policy was trained on {meta['slot_labels']}")
    clusters = [c.name for c in sim.clusters]
    links = [l.name for l in sim.links]
    features = routing_feature_names([s.label for s in slots if s.kind != SLOT_REJECT], clusters, links)
    if meta.get("feature_names") and meta["feature_names"] != features:
        raise ValueError(f"{policy}: the routing observation changed since it was trained; retrain it")
    weights, activation = _actor_layers(load_policy_net(src, str(meta.get("algo", "maskable_ppo")),
                                                        trust_pickle=trust_pickle))
    norm_path = src / "obs_norm.json"
    manifest = {
        "format": BUNDLE_FORMAT,
        "name": src.name,
        "scenario": sc.name,
        "clusters": clusters,
        "decode_clusters": [c.name for c in sim.clusters if c.decode_instances],
        "links": links,
        "slots": [{"kind": s.kind, "cluster": s.cluster, "instance": s.instance, "pull_from": s.pull_from,
                   "label": s.label} for s in slots],
        "slot_reach": SnapshotReader(sim, slots).slot_reach,
        "feature_names": features,
        "allow_reject": bool(kw.get("allow_reject", True)),
        "ttft_slo_s": sc.ttft_slo_s,
        "tpot_slo_s": sc.tpot_slo_s,
        "normalization": json.loads(norm_path.read_text()) if norm_path.is_file() else None,
        "example_route_body": _example_body(sim, slots),
        "activation": activation,
        "source": {k: meta.get(k) for k in ("env_id", "env_kwargs", "algo", "documented_command", "git_commit")},
    }
    def fill(tmp: Path) -> None:
        from prfaas_gym.export.golden import GOLDEN, golden_cases

        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        np.savez(tmp / WEIGHTS, **{f"{k}{i}": a for i, (w, b) in enumerate(weights) for k, a in (("W", w), ("b", b))})
        bundle = RouterBundle.load(tmp)  # refuse to publish a bundle that does not load
        (tmp / GOLDEN).write_text(json.dumps(golden_cases(bundle, sc), indent=None, allow_nan=False))
        if onnx:
            from prfaas_gym.export.onnx_export import ONNX_MODEL, write_onnx

            write_onnx(bundle, tmp / ONNX_MODEL)

    return write_dir_atomic(Path(out_dir), fill)


def _example_body(sim: "Simulator", slots: tuple[Slot, ...]) -> dict[str, Any]:
    """A ``POST /route`` body for the scenario's first request on idle clusters."""
    reader = SnapshotReader(sim, slots)
    return route_body(reader.read(), reader.request(sim.requests[0]), [c.name for c in sim.clusters])


def route_body(snap: ClusterSnapshot, req: RequestFeatures, clusters: list[str]) -> dict[str, Any]:
    """The ``POST /route`` body (plain JSON values) describing ``snap`` and ``req``: lists for
    sequences, ``null`` for an infinite wait, the home cluster by name (``-1`` unknown)."""
    body_snap = {f: (list(v) if isinstance(v, (list, tuple)) else v) for f, v in snap._asdict().items()}
    body_snap["slot_wait_s"] = [None if w == float("inf") else w for w in snap.slot_wait_s]
    body_req = {f: (list(v) if isinstance(v, (list, tuple)) else v) for f, v in req._asdict().items()}
    body_req["home_cluster"] = clusters[req.home_cluster] if req.home_cluster >= 0 else -1
    return {"snapshot": body_snap, "request": body_req}


def _actor_layers(policy: Any) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """``[(W, b), ...]`` of the actor (hidden layers, then the action head) and its activation."""
    import torch

    if type(policy.features_extractor).__name__ != "FlattenExtractor":
        raise ValueError("export: only MLP policies over flat observations can be exported")
    layers, activation = [], None
    for m in policy.mlp_extractor.policy_net:
        if isinstance(m, torch.nn.Linear):
            layers.append((m.weight.detach().cpu().numpy(), m.bias.detach().cpu().numpy()))
        elif isinstance(m, (torch.nn.Tanh, torch.nn.ReLU)):
            name = "tanh" if isinstance(m, torch.nn.Tanh) else "relu"
            if activation not in (None, name):
                raise ValueError("export: mixed activations are not supported")
            activation = name
        else:
            raise ValueError(f"export: layer {type(m).__name__} is not supported")
    head = policy.action_net
    layers.append((head.weight.detach().cpu().numpy(), head.bias.detach().cpu().numpy()))
    return layers, activation or "tanh"
