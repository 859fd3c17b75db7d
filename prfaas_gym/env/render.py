"""``render()`` of the prfaas envs: the cluster now as text (``ansi``/``human``) or an image
(``rgb_array``). Read-only views of the simulator's public attributes."""

from __future__ import annotations

from typing import Any

import numpy as np


def render_text(env: Any) -> str:
    """Cluster state as text: per cluster its instances (role/state, queued+running, decode
    sequences), decode memory, then each link and the episode's counters."""
    sim = env.sim
    if sim is None:
        return "(not reset)"
    lines = [f"t={sim.env.now:.3f}s  step {env._steps}  ended {len(sim.ended)}/{len(sim.requests)}  "
             f"invalid actions {env._invalid}  return {env._return:.3f}"]
    for c in sim.clusters:
        cells = []
        for i in c.instances:
            tag = ("P" if i.role == "prefill" else "D") if i.state == "up" else i.state[:3]
            load = len(i.queue) + len(i.batch) if i.role == "prefill" else len(i.members)
            cells.append(f"{tag}{load}")
        mem = sum(i.mem_used_bytes for i in c.instances) / max(1.0, sum(i.mem_capacity_bytes for i in c.instances))
        lines.append(f"  {c.name:<10} [{' '.join(cells)}]  decode queue {len(c.decode_queue)}  kv mem {mem:.0%}")
    for l in sim.links:
        lines.append(f"  link {l.name:<6} {l.effective_bytes_s * 8e-9:.1f}/{l.nominal_bytes_s * 8e-9:.1f} Gbps  "
                     f"util {l.utilisation:.0%}  flows {l.active_flows}")
    req = getattr(env, "pending_request", None)
    if req is not None:
        lines.append(f"  next: request {req.rid} ({req.input_tokens} prompt tokens)")
    return "\n".join(lines)


_ROLE_RGB = {"prefill": (70, 130, 180), "decode": (60, 160, 90)}


def render_rgb(env: Any, width: int = 320, row: int = 10) -> np.ndarray:
    """Cluster state as an ``(H, width, 3)`` ``uint8`` image: one row per instance (blue
    prefill / green decode / grey not up / red failed; bar = queued+running requests out of
    16, or decoding sequences out of the decode batch) and one per link (orange bar =
    utilisation, black tick = usable bandwidth). A state picture, not a time Gantt."""
    sim = env.sim
    rows: list[tuple[tuple[int, int, int], float, float | None]] = []
    if sim is not None:
        for c in sim.clusters:
            for i in c.instances:
                if i.state == "up":
                    rgb = _ROLE_RGB.get(i.role, (128, 128, 128))
                    frac = (len(i.queue) + len(i.batch)) / 16 if i.role == "prefill" else \
                        len(i.members) / max(1, c.decode_max_batch)
                else:
                    rgb, frac = ((200, 40, 40) if i.state == "failed" else (150, 150, 150)), 1.0
                rows.append((rgb, frac, None))
        for l in sim.links:
            bw = l.effective_bytes_s / l.nominal_bytes_s if l.nominal_bytes_s > 0 else 0.0
            rows.append(((230, 140, 30), l.utilisation, bw))
    img = np.full((max(1, len(rows)) * row, width, 3), 255, dtype=np.uint8)
    for k, (rgb, frac, tick) in enumerate(rows):
        y = k * row
        n = int(round(width * min(max(frac, 0.0), 1.0))) if frac == frac else 0
        img[y + 1:y + row - 1, :n] = rgb
        if tick is not None and tick == tick:
            x = min(width - 1, max(0, int(round(width * min(tick, 1.0))) - 1))
            img[y:y + row, x] = 0
    return img
