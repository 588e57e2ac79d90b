"""Loading teachers (any `AutoModelForSequenceClassification`), checking them against a task, and the
adaptor that maps a batch to the teacher's inputs."""

from __future__ import annotations

import hashlib
import re

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from kdedge.data.batching import hf_inputs
from kdedge.data.tasks import Task
from kdedge.errors import KdedgeError
from kdedge.hub import offline_hint
from kdedge.quiet import NEW_HEAD_NOISE, known_noise


def _load_error(what: str, name: str, e: Exception) -> KdedgeError:
    return KdedgeError(
        f"cannot load {what} '{name}': {type(e).__name__}: {str(e).splitlines()[0].rstrip('.') if str(e) else ''}. "
        f"{offline_hint()}."
    )


def load_tokenizer(name: str):
    try:
        tok = AutoTokenizer.from_pretrained(name, use_fast=True)
    except Exception as e:
        raise _load_error("tokenizer", name, e) from None
    if not tok.is_fast:
        raise KdedgeError(f"'{name}' has no fast tokenizer (tokenizer.json); kdedge needs one for export")
    return tok


def float32_weights() -> dict:
    """from_pretrained's argument that loads the weights as float32 whatever dtype they were saved in: transformers 5
    keeps a checkpoint's own dtype (dtype="auto"), so a half-precision checkpoint would train in fp16 without fp32
    master weights and run slowly (or not at all) on a CPU. Mixed precision is autocast's job (kdedge.training)."""
    import transformers

    return {"dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype": torch.float32}


def new_classifier(name: str, task: Task):
    """A pretrained encoder with a fresh classification head sized for `task`, in float32 (`float32_weights`)."""
    kw = {"num_labels": task.num_labels, **float32_weights()}
    if task.is_regression:
        kw["problem_type"] = "regression"
    else:
        kw["problem_type"] = "single_label_classification"
        kw["id2label"] = dict(enumerate(task.label_names))
        kw["label2id"] = {n: i for i, n in enumerate(task.label_names)}
    try:
        with known_noise(logs=NEW_HEAD_NOISE):
            return AutoModelForSequenceClassification.from_pretrained(name, **kw)
    except Exception as e:
        raise _load_error("model", name, e) from None


_GENERIC_LABEL = re.compile(r"^LABEL_\d+$")


def load_encoder(name: str):
    """Any encoder (a pretrained one, or a fine-tuned classifier) as a sequence classifier, for distilling its
    layers without a task: an encoder without a head gets a fresh one, which nothing reads."""
    try:
        with known_noise(logs=NEW_HEAD_NOISE):
            model = AutoModelForSequenceClassification.from_pretrained(name)
    except Exception as e:
        raise _load_error("teacher", name, e) from None
    return model.eval(), load_tokenizer(name)


def load_teacher(name: str, task: Task):
    """A fine-tuned classifier whose label set must match the task (generic LABEL_i names match by count)."""
    try:
        model = AutoModelForSequenceClassification.from_pretrained(name, **float32_weights())
    except Exception as e:
        raise _load_error("teacher", name, e) from None
    check_labels(model.config, task, name)
    model.eval()
    return model, load_tokenizer(name)


def check_labels(config, task: Task, name: str) -> None:
    if config.num_labels != task.num_labels:
        raise KdedgeError(
            f"teacher '{name}' has {config.num_labels} output(s) but task '{task.name}' needs {task.num_labels}; "
            "use a teacher fine-tuned on this task"
        )
    if task.is_regression:
        return
    names = [config.id2label[i] for i in range(config.num_labels)]
    if all(_GENERIC_LABEL.match(str(n)) for n in names):
        return
    if [n.lower() for n in names] != [n.lower() for n in task.label_names]:
        raise KdedgeError(
            f"teacher '{name}' predicts labels {names} but task '{task.name}' has {list(task.label_names)} "
            "(in class-id order); use a teacher fine-tuned on this task, or pass --labels in the teacher's order"
        )


def hf_logits(model, batch: dict) -> torch.Tensor:
    return model(**hf_inputs(batch)).logits


def model_fingerprint(model: torch.nn.Module) -> str:
    """A hash of the weights, so cached teacher outputs follow the model, wherever it was loaded from."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
