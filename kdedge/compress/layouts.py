"""Where each encoder architecture keeps the parts structured pruning reads and copies, by `config.model_type`:
one registry entry per layout instead of architecture checks in the pruning code.

Paths are attribute paths from a layer (or, for `head_bias`, from the encoder). `head_bias` names a per-head table
shared by every layer (MPNet's relative attention bias): its columns are heads, so all layers must keep the same
heads.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from kdedge.errors import KdedgeError


@dataclass(frozen=True)
class Layout:
    q: str
    k: str
    v: str
    attention_out: str  # the projection of the heads' concatenated context back to the hidden width
    attention_norm: str
    ffn: str  # the module whose output is the feed-forward activations (after the nonlinearity)
    ffn_in: str
    ffn_out: str
    ffn_norm: str
    head_bias: str | None = None


BERT = Layout(q="attention.self.query", k="attention.self.key", v="attention.self.value",
              attention_out="attention.output.dense", attention_norm="attention.output.LayerNorm",
              ffn="intermediate", ffn_in="intermediate.dense", ffn_out="output.dense", ffn_norm="output.LayerNorm")
LAYOUTS: dict[str, Layout] = {
    "bert": BERT,
    "roberta": BERT,
    "mpnet": Layout(q="attention.attn.q", k="attention.attn.k", v="attention.attn.v", attention_out="attention.attn.o",
                    attention_norm="attention.LayerNorm", ffn="intermediate", ffn_in="intermediate.dense",
                    ffn_out="output.dense", ffn_norm="output.LayerNorm",
                    head_bias="relative_attention_bias"),
}


def part(module: nn.Module, path: str) -> nn.Module:
    for name in path.split("."):
        module = getattr(module, name)
    return module


@dataclass
class Encoder:
    base: nn.Module  # the model without its head (embeddings, encoder)
    layers: nn.ModuleList
    layout: Layout

    def __call__(self, layer: int, name: str) -> nn.Module:
        """A part of a layer: encoder(0, "q") is layer 1's query projection."""
        return part(self.layers[layer], getattr(self.layout, name))

    @property
    def head_bias(self) -> nn.Embedding | None:
        return part(self.base.encoder, self.layout.head_bias) if self.layout.head_bias else None


def encoder_of(model: nn.Module) -> Encoder:
    """The encoder parts of a sequence classifier, or a clear refusal for an architecture pruning does not know."""
    kind = getattr(getattr(model, "config", None), "model_type", None)
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if kind not in LAYOUTS or layers is None:
        raise KdedgeError(f"structured pruning supports {', '.join(sorted(LAYOUTS))} teachers; this teacher is "
                          f"{type(model).__name__}: use --init teacher-layers, random or pretrained:<id>")
    return Encoder(base, layers, LAYOUTS[kind])
