"""How much a BERT-class model (BERT, RoBERTa, MPNet: kdedge.compress.layouts) relies on each of its parts, measured
on task data: the scores structured pruning ranks by.

- attention heads, and each head's value dimensions, and feed-forward neurons: first-order Taylor importance,
  |sum over tokens of activation x gradient| per example, summed over examples (Michel et al. 2019, "Are
  Sixteen Heads Really Better than One?"; DynaBERT, Hou et al. 2020). The loss is the model's own: cross-entropy
  against its own predicted class (so no gold label is needed: transfer sets and unlabeled text work too), or
  MSE to the gold score for regression. Without a task head to differentiate (task-agnostic distillation), the
  `activation` criterion ranks them by mean |activation| instead, as Minitron does (Muralidharan et al. 2024).
- hidden (embedding) channels: mean |activation| of every LayerNorm output over real tokens (Minitron, Muralidharan
  et al. 2024), since a channel of the residual stream is read by every layer.
- layers: block importance, 1 - cos(input, output) of each layer over real tokens (Men et al. 2024, as Minitron
  ranks depth), reported so that a user can see which layers matter.

Forward hooks read the activations, so the scores do not depend on the attention implementation (eager or SDPA).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from kdedge.compress.layouts import encoder_of
from kdedge.data.batching import hf_inputs
from kdedge.errors import KdedgeError


@dataclass
class Importance:
    heads: torch.Tensor  # [layers, heads]
    head_dims: torch.Tensor  # [layers, heads * head_dim]: per value dimension of each head
    neurons: torch.Tensor  # [layers, intermediate]
    hidden: torch.Tensor  # [hidden]
    layers: torch.Tensor  # [layers]
    examples: int

    def to_dict(self) -> dict:
        return {"examples": self.examples, "layers": [round(float(v), 6) for v in self.layers],
                "heads": [[round(float(v), 6) for v in row] for row in self.heads]}

    def save(self, path: Path) -> None:
        """Write the scores to a safetensors file, atomically (another process may read or write the same entry)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        save_file({f.name: getattr(self, f.name).contiguous() for f in fields(self) if f.name != "examples"}, tmp,
                  metadata={"examples": str(self.examples)})
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, config) -> Importance | None:
        """The scores `save` wrote for a model of `config`, or None when the file is missing, unreadable, of another
        shape or not finite: the caller measures them again."""
        n, hidden, heads = config.num_hidden_layers, config.hidden_size, config.num_attention_heads
        shapes = {"heads": (n, heads), "head_dims": (n, heads * (hidden // heads)),
                  "neurons": (n, config.intermediate_size), "hidden": (hidden,), "layers": (n,)}
        try:
            with safe_open(path, "pt") as f:
                examples = int((f.metadata() or {})["examples"])
                tensors = {k: f.get_tensor(k).float() for k in shapes}
        except (OSError, SafetensorError, KeyError, ValueError, TypeError):
            return None
        if examples < 1 or any(tuple(tensors[k].shape) != shape or not torch.isfinite(tensors[k]).all()
                               for k, shape in shapes.items()):
            return None
        return cls(**tensors, examples=examples)


CRITERIA = ("taylor", "activation")


def measure_importance(model: nn.Module, batches, regression: bool, criterion: str = "taylor") -> Importance:
    """Scores for every part of `model` over `batches` (padded dicts with input_ids, attention_mask, labels):
    heads, value dimensions and neurons by first-order Taylor importance of the model's own loss (`taylor`), or by
    mean |activation| over real tokens (`activation`: no head or label needed, no backward pass)."""
    if criterion not in CRITERIA:
        raise KdedgeError(f"unknown importance criterion '{criterion}' (known: {', '.join(CRITERIA)})")
    by_activation = criterion == "activation"
    encoder = encoder_of(model)
    base, layers = encoder.base, encoder.layers
    c = model.config
    n, heads, head_dim = len(layers), c.num_attention_heads, c.hidden_size // c.num_attention_heads
    scores = {"head_dims": torch.zeros(n, heads * head_dim), "heads": torch.zeros(n, heads),
              "neurons": torch.zeros(n, c.intermediate_size), "hidden": torch.zeros(c.hidden_size),
              "layers": torch.zeros(n)}
    state = {"mask": None, "tokens": 0}

    def taylor(output: torch.Tensor, on_grad) -> None:
        if by_activation:  # the same accumulators, fed |activation| on real tokens instead of activation x gradient
            on_grad(output.detach().abs().float() * state["mask"].unsqueeze(-1))
        elif output.requires_grad:
            # the hook holds a detached view, never `output` itself: a tensor whose hook refers back to it is a
            # cycle through autograd that Python's collector cannot free (every batch's activations stayed alive)
            value = output.detach()
            output.register_hook(lambda grad: on_grad((value * grad).float()))

    def context_hook(i):  # on the attention's output projection: its input is the heads' concatenated context
        def hook(module, args):
            context = args[0]

            def on_grad(product):  # product: [batch, tokens, heads * head_dim]
                per_dim = product.sum(dim=1)  # per example
                scores["head_dims"][i] += per_dim.abs().sum(dim=0)
                scores["heads"][i] += per_dim.view(-1, heads, head_dim).sum(dim=2).abs().sum(dim=0)
            taylor(context, on_grad)
        return hook

    def neuron_hook(i):
        def hook(module, args, output):
            def on_grad(product):  # product: [batch, tokens, intermediate]
                scores["neurons"][i] += product.sum(dim=1).abs().sum(dim=0)
            taylor(output, on_grad)
        return hook

    def norm_hook(module, args, output):
        mask = state["mask"].unsqueeze(-1)
        scores["hidden"].add_((output.detach().abs() * mask).sum(dim=(0, 1)).float())

    def layer_hook(i):
        def hook(module, args, output):
            before, after = args[0].detach(), (output[0] if isinstance(output, tuple) else output).detach()
            cosine = nn.functional.cosine_similarity(before, after, dim=-1)
            scores["layers"][i] += ((1 - cosine) * state["mask"]).sum().float()
        return hook

    handles = [base.embeddings.LayerNorm.register_forward_hook(norm_hook)]
    for i, layer in enumerate(layers):
        handles += [encoder(i, "attention_out").register_forward_pre_hook(context_hook(i)),
                    encoder(i, "ffn").register_forward_hook(neuron_hook(i)),
                    encoder(i, "attention_norm").register_forward_hook(norm_hook),
                    encoder(i, "ffn_norm").register_forward_hook(norm_hook),
                    layer.register_forward_hook(layer_hook(i))]
    was_training, examples = model.training, 0
    model.eval()  # no dropout: the scores describe the model as it predicts
    try:
        for batch in batches:
            state["mask"] = batch["attention_mask"].float()
            state["tokens"] += int(state["mask"].sum())
            if by_activation:
                with torch.no_grad():
                    examples += len(model(**hf_inputs(batch)).logits)
                continue
            logits = model(**hf_inputs(batch)).logits
            if regression:
                target = batch["labels"].float().view_as(logits)
                keep = torch.isfinite(target)
                loss = nn.functional.mse_loss(logits[keep], target[keep], reduction="sum")
            else:
                loss = nn.functional.cross_entropy(logits, logits.detach().argmax(dim=-1), reduction="sum")
            model.zero_grad(set_to_none=True)
            loss.backward()
            examples += len(logits)
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    if not examples:
        raise KdedgeError("no training rows to measure importance on")
    tokens = max(state["tokens"], 1)
    return Importance(heads=scores["heads"] / examples, head_dims=scores["head_dims"] / examples,
                      neurons=scores["neurons"] / examples, hidden=scores["hidden"] / tokens,
                      layers=scores["layers"] / tokens, examples=examples)
