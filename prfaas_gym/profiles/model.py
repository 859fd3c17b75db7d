"""Model profile: layers by kind, FFN/MoE shape, precision, and derived KV/state/weight sizes."""

from __future__ import annotations

from dataclasses import dataclass

DTYPE_BYTES: dict[str, float] = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}
"""Bytes per element for the precisions a profile may name."""

ATTENTION_KINDS = ("mha", "gqa", "mla", "linear", "swa")
"""``mha``/``gqa``: full softmax attention; ``mla``: multi-head latent attention;
``linear``: linear attention with a fixed recurrent state (KDA, GDN, Lightning);
``swa``: sliding-window softmax attention (GQA shape) with ``window_tokens``."""

FFN_KINDS = ("dense", "moe")


@dataclass(frozen=True, slots=True)
class AttentionSpec:
    """The token-mixing part of one layer.

    Attributes:
        kind: one of :data:`ATTENTION_KINDS`.
        num_heads: query heads (linear: state heads).
        num_kv_heads: KV heads (mha/gqa/swa); equals ``num_heads`` for MHA.
        head_dim: per-head q/k dim (mha/gqa/swa/linear).
        v_head_dim: per-head value dim (mla, linear; defaults to ``head_dim``).
        window_tokens: sliding-window length (swa).
        q_lora_rank: MLA query compression rank (0: uncompressed queries).
        kv_lora_rank: MLA latent KV rank.
        qk_nope_head_dim: MLA non-rotary q/k head dim.
        qk_rope_head_dim: MLA rotary head dim (also cached per token).
        variant: linear-attention flavour (``kda``, ``gdn``, ``lightning``), informational; for
            MLA, ``nope`` = no rotary embedding on the rope dims (Kimi-Linear's ``mla_use_nope``).
        conv_kernel: short-convolution kernel of linear attention (0: none); its state
            holds ``conv_kernel - 1`` past positions of q, k and v.
    """

    kind: str
    num_heads: int
    num_kv_heads: int = 0
    head_dim: int = 0
    v_head_dim: int = 0
    window_tokens: int = 0
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    variant: str = ""
    conv_kernel: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ATTENTION_KINDS:
            raise ValueError(f"kind: must be one of {', '.join(ATTENTION_KINDS)}, got {self.kind!r}")
        if self.num_heads < 1:
            raise ValueError("num_heads: must be >= 1")
        if self.kind in ("mha", "gqa", "swa"):
            if self.head_dim < 1:
                raise ValueError("head_dim: must be >= 1")
            kv = self.num_kv_heads or self.num_heads
            if kv < 1 or self.num_heads % kv:
                raise ValueError(f"num_kv_heads: must divide num_heads ({self.num_heads}), got {kv}")
            object.__setattr__(self, "num_kv_heads", kv)
        if self.kind == "swa" and self.window_tokens < 1:
            raise ValueError("window_tokens: sliding-window attention needs window_tokens >= 1")
        if self.kind == "mla":
            for name in ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
                if getattr(self, name) < 1:
                    raise ValueError(f"{name}: must be >= 1 for mla")
        if self.kind == "linear" and self.head_dim < 1:
            raise ValueError("head_dim: must be >= 1")
        if self.kind in ("linear", "mha", "gqa", "swa") and not self.v_head_dim:
            object.__setattr__(self, "v_head_dim", self.head_dim)

    @property
    def rotary_dims(self) -> tuple[int, int]:
        """(query, key) elements per token the rotary embedding rotates (all heads, unsharded).

        GQA/MHA/SWA: every head's q and k; MLA: the rope part of each query head and the one
        shared rope key (``q_pe``, ``k_pe``), none with ``variant: nope``; linear attention: none.
        """
        if self.kind == "linear" or (self.kind == "mla" and self.variant == "nope"):
            return 0, 0
        if self.kind == "mla":
            return self.num_heads * self.qk_rope_head_dim, self.qk_rope_head_dim
        return self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim

    @property
    def qk_head_dim(self) -> int:
        """Per-head dim of the q.k product."""
        return self.qk_nope_head_dim + self.qk_rope_head_dim if self.kind == "mla" else self.head_dim

    def kv_bytes_per_token(self, kv_elem_bytes: float) -> float:
        """Block-level cache bytes per token for this layer (0 for linear and SWA layers)."""
        if self.kind in ("mha", "gqa"):
            return 2.0 * self.num_kv_heads * self.head_dim * kv_elem_bytes
        if self.kind == "mla":
            return float(self.kv_lora_rank + self.qk_rope_head_dim) * kv_elem_bytes
        return 0.0

    def state_bytes(self, kv_elem_bytes: float, state_elem_bytes: float) -> float:
        """Fixed per-request state bytes (linear recurrent + conv state; SWA window KV)."""
        if self.kind == "linear":
            rec = self.num_heads * self.head_dim * self.v_head_dim * state_elem_bytes
            conv_channels = self.num_heads * (2 * self.head_dim + self.v_head_dim)
            conv = max(self.conv_kernel - 1, 0) * conv_channels * kv_elem_bytes
            return float(rec + conv)
        if self.kind == "swa":
            return 2.0 * self.num_kv_heads * self.head_dim * self.window_tokens * kv_elem_bytes
        return 0.0

    def params(self, hidden: int) -> float:
        """Weight count of the projections of this layer's attention block."""
        h = hidden
        if self.kind in ("mha", "gqa", "swa"):
            q = h * self.num_heads * self.head_dim
            kv = 2 * h * self.num_kv_heads * self.head_dim
            return float(q + kv + self.num_heads * self.head_dim * h)
        if self.kind == "mla":
            qk = self.qk_head_dim
            if self.q_lora_rank:
                q = h * self.q_lora_rank + self.q_lora_rank * self.num_heads * qk
            else:
                q = h * self.num_heads * qk
            kv_a = h * (self.kv_lora_rank + self.qk_rope_head_dim)
            kv_b = self.kv_lora_rank * self.num_heads * (self.qk_nope_head_dim + self.v_head_dim)
            o = self.num_heads * self.v_head_dim * h
            return float(q + kv_a + kv_b + o)
        # linear attention: q, k, v, output-gate and output projections, plus low-rank
        # decay gate (KDA: hidden->head_dim->heads*head_dim) and per-head beta.
        hd, vd, n = self.head_dim, self.v_head_dim, self.num_heads
        proj = h * n * (2 * hd + 2 * vd) + n * vd * h
        gate = h * hd + hd * n * hd + h * n
        conv = self.conv_kernel * n * (2 * hd + vd)
        return float(proj + gate + conv)


@dataclass(frozen=True, slots=True)
class FFNSpec:
    """The channel-mixing part of one layer (SwiGLU-style gated unless ``gated`` is False).

    Attributes:
        kind: ``dense`` or ``moe``.
        intermediate_size: dense FFN width.
        num_experts: routed experts (moe).
        active_experts: routed experts per token (top-k).
        shared_experts: always-active experts.
        expert_intermediate_size: width of one expert (routed and shared).
        gated: three matrices (gate, up, down) when True, two otherwise.
        expert_groups: groups of the grouped top-k router (DeepSeek ``n_group``; 1 = plain top-k).
        topk_groups: groups a token may pick its experts from (DeepSeek ``topk_group``).
    """

    kind: str
    intermediate_size: int = 0
    num_experts: int = 0
    active_experts: int = 0
    shared_experts: int = 0
    expert_intermediate_size: int = 0
    gated: bool = True
    expert_groups: int = 1
    topk_groups: int = 1

    def __post_init__(self) -> None:
        if self.kind not in FFN_KINDS:
            raise ValueError(f"kind: must be one of {', '.join(FFN_KINDS)}, got {self.kind!r}")
        if self.kind == "dense" and self.intermediate_size < 1:
            raise ValueError("intermediate_size: must be >= 1")
        if self.kind == "moe":
            if self.num_experts < 1 or self.expert_intermediate_size < 1:
                raise ValueError("num_experts and expert_intermediate_size: must be >= 1 for moe")
            if not 1 <= self.active_experts <= self.num_experts:
                raise ValueError(f"active_experts: must be in [1, num_experts={self.num_experts}]")
            if self.shared_experts < 0:
                raise ValueError("shared_experts: must be >= 0")
            if self.expert_groups < 1 or self.num_experts % self.expert_groups:
                raise ValueError(f"expert_groups: must be >= 1 and divide num_experts={self.num_experts}")
            if not 1 <= self.topk_groups <= self.expert_groups:
                raise ValueError(f"topk_groups: must be in [1, expert_groups={self.expert_groups}]")

    @property
    def matrices(self) -> int:
        """Weight matrices per FFN (3 gated, 2 plain)."""
        return 3 if self.gated else 2

    def expert_params(self, hidden: int) -> float:
        """Weights of one expert (moe) or of the whole dense FFN."""
        width = self.intermediate_size if self.kind == "dense" else self.expert_intermediate_size
        return float(self.matrices * hidden * width)

    def params(self, hidden: int) -> float:
        """All FFN weights of the layer (router included)."""
        if self.kind == "dense":
            return self.expert_params(hidden)
        return (self.num_experts + self.shared_experts) * self.expert_params(hidden) + hidden * self.num_experts

    def active_params(self, hidden: int) -> float:
        """FFN weights one token touches."""
        if self.kind == "dense":
            return self.expert_params(hidden)
        return (self.active_experts + self.shared_experts) * self.expert_params(hidden) + hidden * self.num_experts


@dataclass(frozen=True, slots=True)
class LayerGroup:
    """``count`` identical layers."""

    count: int
    attention: AttentionSpec
    ffn: FFNSpec

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("count: must be >= 1")


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """An LLM architecture as the simulator and the roofline need it. Sizes in bytes.

    Attributes:
        name: profile id.
        hidden_size: model width.
        vocab_size: vocabulary (embedding and LM-head rows).
        layers: layer groups in order (order is informational; costs are summed).
        tie_word_embeddings: LM head shares the embedding matrix.
        weight_dtype / kv_dtype / state_dtype: precisions (keys of :data:`DTYPE_BYTES`).
        total_params / active_params: parameter counts (derived from the shapes when 0).
        description: free text, including the source of the shapes.
    """

    name: str
    hidden_size: int
    vocab_size: int
    layers: tuple[LayerGroup, ...]
    tie_word_embeddings: bool = False
    weight_dtype: str = "bf16"
    kv_dtype: str = "bf16"
    state_dtype: str = "fp32"
    total_params: float = 0.0
    active_params: float = 0.0
    description: str = ""

    def __post_init__(self) -> None:
        if self.hidden_size < 1 or self.vocab_size < 1:
            raise ValueError("hidden_size and vocab_size: must be >= 1")
        if not self.layers:
            raise ValueError("layers: at least one layer group is required")
        for name in ("weight_dtype", "kv_dtype", "state_dtype"):
            if getattr(self, name) not in DTYPE_BYTES:
                raise ValueError(f"{name}: must be one of {', '.join(DTYPE_BYTES)}, got {getattr(self, name)!r}")
        if not self.total_params:
            object.__setattr__(self, "total_params", self.derived_total_params())
        if not self.active_params:
            object.__setattr__(self, "active_params", self.derived_active_params())
        if self.active_params > self.total_params:
            raise ValueError("active_params: must not exceed total_params")

    # --- sizes --------------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        """Total number of transformer layers."""
        return sum(g.count for g in self.layers)

    @property
    def weight_bytes_per_param(self) -> float:
        """Bytes per weight element."""
        return DTYPE_BYTES[self.weight_dtype]

    @property
    def kv_elem_bytes(self) -> float:
        """Bytes per cached KV element."""
        return DTYPE_BYTES[self.kv_dtype]

    @property
    def state_elem_bytes(self) -> float:
        """Bytes per linear-attention recurrent-state element."""
        return DTYPE_BYTES[self.state_dtype]

    @property
    def embedding_params(self) -> float:
        """Embedding plus (untied) LM-head weights."""
        return float(self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2))

    def derived_total_params(self) -> float:
        """Parameter count from the shapes (norms and biases ignored)."""
        h = self.hidden_size
        body = sum(g.count * (g.attention.params(h) + g.ffn.params(h)) for g in self.layers)
        return body + self.embedding_params

    def derived_active_params(self) -> float:
        """Parameters one token touches (routed experts: top-k only)."""
        h = self.hidden_size
        body = sum(g.count * (g.attention.params(h) + g.ffn.active_params(h)) for g in self.layers)
        return body + self.embedding_params

    @property
    def kv_bytes_per_token(self) -> float:
        """Block-level KV bytes per token, summed over all layers."""
        return float(sum(g.count * g.attention.kv_bytes_per_token(self.kv_elem_bytes) for g in self.layers))

    @property
    def state_bytes_per_request(self) -> float:
        """Fixed per-request state (linear recurrent/conv state, SWA windows), bytes."""
        return float(sum(g.count * g.attention.state_bytes(self.kv_elem_bytes, self.state_elem_bytes)
                         for g in self.layers))

    @property
    def weight_bytes(self) -> float:
        """Bytes of all weights at the profile's weight precision."""
        return self.total_params * self.weight_bytes_per_param

    @property
    def is_hybrid(self) -> bool:
        """True when some layers keep fixed-size (linear or sliding-window) state."""
        return any(g.attention.kind in ("linear", "swa") for g in self.layers)

    @property
    def is_moe(self) -> bool:
        """True when some layer has a mixture-of-experts FFN."""
        return any(g.ffn.kind == "moe" for g in self.layers)

    def kv_bytes(self, tokens: float) -> float:
        """Bytes one request of ``tokens`` tokens holds: ``kv_bytes_per_token*tokens + state``."""
        return self.kv_bytes_per_token * tokens + self.state_bytes_per_request
