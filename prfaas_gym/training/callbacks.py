"""SB3 callbacks: serving metrics to TensorBoard, and evaluation against the best heuristic.

* :class:`ServingMetricsCallback` logs, for every training episode that ends, the
  simulator summary (``info["summary"]``): goodput, TTFT p90, SLO attainment, rejections,
  cross-DC egress, under ``serving/``.
* :class:`HeuristicEvalCallback` runs the current policy deterministically on validation
  seeds (never training seeds), logs the same metrics under ``eval/`` together with
  ``eval/goodput_vs_best_heuristic`` (ratio to the best heuristic on the same seeds,
  computed once at start), and saves the best model with its VecNormalize statistics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

SERVING_KEYS = ("goodput_rps", "ttft_p90_s", "tpot_p90_s", "slo_attainment", "rejected",
                "egress_gbps_mean", "offload_fraction", "throughput_rps")


class ServingMetricsCallback(BaseCallback):
    """Log the serving summary of each finished training episode under ``serving/``."""

    def __init__(self, keys: tuple[str, ...] = SERVING_KEYS, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.keys = keys
        self.episodes = 0

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", ()):
            summary = info.get("summary")
            if not summary:
                continue
            self.episodes += 1
            for k in self.keys:
                v = summary.get(k)
                if v is not None:
                    self.logger.record_mean(f"serving/{k}", float(v))
        return True


EvalFn = Callable[[Any, Any], list[dict]]
OnEval = Callable[[dict], "bool | None"]
"""``on_eval(row)`` after each validation evaluation (``row``: ``timesteps`` and the mean
validation metrics, e.g. ``goodput_rps``, ``goodput_vs_best_heuristic``); returning ``False``
stops training (an early-stopping scheduler, e.g. Tune's ASHA, reports through it)."""


class HeuristicEvalCallback(BaseCallback):
    """Periodic evaluation reporting against the best heuristic (module docstring).

    Args:
        eval_fn: ``eval_fn(model, vecnormalize) -> [summary per validation seed]``.
        baseline: ``{heuristic: mean goodput_rps on the same seeds}``.
        eval_freq: env steps between evaluations (over all envs).
        best_dir: where the best model (``model.zip`` + ``vecnormalize.pkl``) is saved.
        eval_at_start: also evaluate before the first update (step 0: e.g. the cloned policy).
        on_eval: see :data:`OnEval`.
    """

    def __init__(self, eval_fn: EvalFn, baseline: dict[str, float], eval_freq: int, best_dir: Path,
                 verbose: int = 1, eval_at_start: bool = True, on_eval: OnEval | None = None) -> None:
        super().__init__(verbose)
        self.eval_fn = eval_fn
        self.baseline = dict(baseline)
        self.eval_freq = int(eval_freq)
        self.best_dir = Path(best_dir)
        self.best_goodput = -np.inf
        self.history: list[dict[str, float]] = []
        self._next = self.eval_freq
        self.eval_at_start = eval_at_start
        self.on_eval = on_eval
        self.stopped = False  # on_eval asked to stop

    @property
    def best_heuristic(self) -> tuple[str, float]:
        """``(name, goodput)`` of the best heuristic on the validation seeds."""
        if not self.baseline:
            return "none", float("nan")
        name = max(self.baseline, key=lambda k: self.baseline[k])
        return name, self.baseline[name]

    def evaluate(self) -> dict[str, float]:
        """Run the evaluation now, log it, save the best model; returns the logged means."""
        vecnorm = self.model.get_vec_normalize_env()
        summaries = self.eval_fn(self.model, vecnorm)
        row: dict[str, float] = {"timesteps": float(self.num_timesteps)}
        for k in SERVING_KEYS:
            vals = [s[k] for s in summaries if s.get(k) is not None]
            if vals:
                row[k] = float(np.mean(vals))
                self.logger.record(f"eval/{k}", row[k])
        name, best = self.best_heuristic
        g = row.get("goodput_rps", float("nan"))
        if best == best and best > 0:
            row["goodput_vs_best_heuristic"] = g / best
            self.logger.record("eval/goodput_vs_best_heuristic", g / best)
            self.logger.record("eval/best_heuristic_goodput_rps", best)
        self.history.append(row)
        if g > self.best_goodput:
            self.best_goodput = g
            self.best_dir.mkdir(parents=True, exist_ok=True)
            self.model.save(self.best_dir / "model.zip")
            if vecnorm is not None:
                vecnorm.save(str(self.best_dir / "vecnormalize.pkl"))
        if self.verbose:
            print(f"[eval] t={self.num_timesteps} goodput={g:.3f} req/s "
                  f"(best heuristic {name}: {best:.3f}; ratio {row.get('goodput_vs_best_heuristic', float('nan')):.3f})",
                  flush=True)
        if self.on_eval is not None and self.on_eval(dict(row)) is False:
            self.stopped = True
        return row

    def _on_training_start(self) -> None:
        if self.eval_at_start and self.eval_freq > 0:
            self.evaluate()
            self.logger.dump(self.num_timesteps)

    def _on_step(self) -> bool:
        if self.eval_freq > 0 and self.num_timesteps >= self._next:
            self._next += self.eval_freq
            self.evaluate()
        return not self.stopped
