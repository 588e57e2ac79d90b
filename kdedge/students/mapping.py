"""Layer mappings by name: which teacher layer(s) each student layer learns from, and the weights of what the
intermediate stage matches through them (embeddings, hidden states, attention).

Layers are 1-based (0 is the embedding output, always matched to the teacher's embedding output).
A pair maps one student layer to a block of teacher layers that is combined by a plain mean, by
learned softmax weights, or is a single layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from kdedge.errors import KdedgeError


@dataclass(frozen=True)
class LayerPair:
    student: int
    teacher: tuple[int, ...]
    learnable: bool = False

    def describe(self) -> str:
        if len(self.teacher) == 1:
            return f"student {self.student} <- teacher {self.teacher[0]}"
        how = "softmax-weighted (learned)" if self.learnable else "mean"
        return f"student {self.student} <- {how} of teacher {', '.join(map(str, self.teacher))}"


def _blocks(n_teacher: int, n_student: int) -> list[tuple[int, ...]]:
    """Teacher layers split into n_student contiguous blocks ((i-1)*N/M, i*N/M]."""
    bounds = [i * n_teacher // n_student for i in range(n_student + 1)]
    return [tuple(range(bounds[i] + 1, bounds[i + 1] + 1)) for i in range(n_student)]


def uniform(n_teacher: int, n_student: int, layers=None) -> list[LayerPair]:
    """TinyBERT's g(m) = m * N / M: every k-th teacher layer."""
    return [LayerPair(i + 1, (block[-1],)) for i, block in enumerate(_blocks(n_teacher, n_student))]


def last(n_teacher: int, n_student: int, layers=None) -> list[LayerPair]:
    return [LayerPair(i, (n_teacher - n_student + i,)) for i in range(1, n_student + 1)]


def explicit(n_teacher: int, n_student: int, layers=None) -> list[LayerPair]:
    if not layers or len(layers) != n_student:
        raise KdedgeError(f"--mapping explicit needs --layer-map with {n_student} teacher layer(s), one per student layer")
    bad = [x for x in layers if not 1 <= x <= n_teacher]
    if bad:
        raise KdedgeError(f"--layer-map: teacher layer {bad[0]} is out of range 1..{n_teacher}")
    return [LayerPair(i + 1, (t,)) for i, t in enumerate(layers)]


def mean(n_teacher: int, n_student: int, layers=None) -> list[LayerPair]:
    return [LayerPair(i + 1, block) for i, block in enumerate(_blocks(n_teacher, n_student))]


def learnable(n_teacher: int, n_student: int, layers=None) -> list[LayerPair]:
    return [LayerPair(i + 1, block, learnable=len(block) > 1) for i, block in enumerate(_blocks(n_teacher, n_student))]


MAPPINGS: dict[str, Callable[..., list[LayerPair]]] = {
    "uniform": uniform,
    "last": last,
    "explicit": explicit,
    "mean": mean,
    "learnable": learnable,
}


def resolve_mapping(name: str, n_teacher: int, n_student: int, layers: list[int] | None = None) -> list[LayerPair]:
    if name not in MAPPINGS:
        raise KdedgeError(f"unknown --mapping '{name}' (known: {', '.join(MAPPINGS)})")
    if n_student > n_teacher and name != "explicit":
        raise KdedgeError(f"the student has more layers ({n_student}) than the teacher ({n_teacher})")
    return MAPPINGS[name](n_teacher, n_student, layers)


def parse_layers(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(x) for x in str(text).replace(" ", "").split(",") if x]
    except ValueError:
        raise KdedgeError(f"expected a comma-separated list of layer numbers, not '{text}'") from None


ACROSS_TOKENIZERS = (
    "the student's tokenizer is not the teacher's: its layers are matched with the teacher's through character "
    "offsets, which align hidden states but not attention maps; set --w-att 0 (or --rep-ratio 1), or use --recipe "
    "prediction (logits need no shared tokens)")


@dataclass
class LossWeights:
    emb: float = 1.0
    hid: float = 1.0
    att: float = 1.0
    pred: float = 0.0

    @classmethod
    def from_ratio(cls, r: float, pred: float = 0.0) -> "LossWeights":
        """The single-ratio form 2r * representation + (2 - 2r) * attention."""
        return cls(emb=2 * r, hid=2 * r, att=2 - 2 * r, pred=pred)


def loss_weights(cfg, with_prediction: bool) -> LossWeights:
    pred = cfg.w_pred if with_prediction else 0.0
    if cfg.rep_ratio is not None:
        if not 0.0 <= cfg.rep_ratio <= 1.0:
            raise KdedgeError("--rep-ratio must be in [0, 1]")
        return LossWeights.from_ratio(cfg.rep_ratio, pred)
    return LossWeights(emb=cfg.w_emb, hid=cfg.w_hid, att=cfg.w_att, pred=pred)
