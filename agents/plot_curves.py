"""Plot learning curves of a run from its TensorBoard logs (PNG), for docs/learned_agents.md.

    python agents/plot_curves.py runs/routing-bursty --out docs/img/routing_bursty_curves.png

Panels: training-episode goodput (``serving/goodput_rps``), validation goodput with the
best heuristic's level (``eval/goodput_rps``, ``eval/best_heuristic_goodput_rps``),
episode return (``rollout/ep_rew_mean``) and training-episode TTFT p90.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of every TensorBoard file under ``run_dir/tb`` (later runs win)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[tuple[int, float]]] = {}
    for d in sorted((run_dir / "tb").iterdir(), key=lambda p: p.stat().st_mtime):
        ea = EventAccumulator(str(d))
        ea.Reload()
        for tag in ea.Tags()["scalars"]:
            out[tag] = [(e.step, e.value) for e in ea.Scalars(tag)]
    return out


def main(argv: list[str] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--title", default=None)
    a = p.parse_args(argv)
    sc = read_scalars(a.run_dir)
    panels = [("serving/goodput_rps", "training episodes: goodput (req/s)"),
              ("eval/goodput_rps", "validation seeds: goodput (req/s)"),
              ("rollout/ep_rew_mean", "episode return"),
              ("serving/ttft_p90_s", "training episodes: TTFT p90 (s)")]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    for ax, (tag, title) in zip(axes, panels):
        if tag in sc:
            xs, ys = zip(*sc[tag])
            ax.plot(xs, ys, marker="o" if tag.startswith("eval") else None, ms=3)
        if tag == "eval/goodput_rps" and "eval/best_heuristic_goodput_rps" in sc:
            ax.axhline(sc["eval/best_heuristic_goodput_rps"][-1][1], color="k", ls="--", lw=1,
                       label="best heuristic")
            ax.legend(fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("env steps (after BC warm start)", fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(a.title or a.run_dir.name, fontsize=10)
    fig.tight_layout()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=90)
    print(a.out)


if __name__ == "__main__":
    main()
