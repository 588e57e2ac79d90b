"""A linear probe of a student's encoder: how much of a pair task its last layer carries before any head is trained.

Each student is given as NAME=CONFIG_DIR=WEIGHTS (a model folder's config, and a safetensors file from it or from a
stage of a `kdedge distill` run, e.g. `stage-intermediate/model.safetensors`). Its last hidden layer is read at the
first token (<s> / [CLS], what the classification head reads) and as the mean over the tokens, on the task's gold
training pairs and dev pairs; a logistic regression fitted on the training features scores the dev ones. A student
whose embedding table was cut (`--trim-min-count`) reads the teacher's tokenizer cut the same way, from the same
transfer set. Used for issue 45's general students (benchmarks/results/glue_base_small/session80).

Usage: python benchmarks/student_probe.py --task mrpc --teacher RUN/mrpc/teacher --transfer RUN/mrpc/transfer \
           --trim-min-count 5 NAME=CONFIG_DIR=WEIGHTS ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from transformers import AutoConfig, AutoModel, AutoTokenizer

from kdedge.compress.vocab import count_tokens, trim_vocabulary
from kdedge.config import DataOptions
from kdedge.data.batching import encode
from kdedge.data.loaders import load_task_data
from kdedge.data.transfer import read_shards
from kdedge.training import eval_loader, predict_logits


def trimmed_tokenizer(teacher: str, transfer: str, min_count: int):
    tokenizer = AutoTokenizer.from_pretrained(teacher)
    rows = read_shards(Path(transfer)).select(["text", "text_pair"]).to_pydict()
    return tokenizer, trim_vocabulary(tokenizer, count_tokens(tokenizer, rows["text"], rows["text_pair"]), min_count).tokenizer


def encoder(config_dir: str, weights: str):
    """The encoder alone, from a head-less folder or a sequence classifier's weights (prefix `<model_type>.`)."""
    state = load_file(weights)
    config = AutoConfig.from_pretrained(config_dir)
    prefix = f"{config.model_type}."
    state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)} or state
    config.vocab_size = state["embeddings.word_embeddings.weight"].shape[0]
    model = AutoModel.from_config(config, add_pooling_layer=False).eval()
    missing, _ = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if "position_ids" not in k]
    if missing:
        raise SystemExit(f"{weights}: no weights for {missing[0]}")
    return model


def first_and_mean(model, batch) -> torch.Tensor:
    """The last layer at the first token beside its mean over the (unpadded) tokens."""
    last = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return torch.cat([last[:, 0], (last * mask).sum(1) / mask.sum(1)], 1)


def features(model, tokenizer, split, batch: int = 64) -> np.ndarray:
    """first_and_mean per example, in the split's order, through the length-sorted batches `kdedge distill`
    evaluates with."""
    rows = [{k: v for k, v in f.items() if k != "labels"} for f in encode(tokenizer, split, max_length=128)]
    loader, order = eval_loader(rows, batch, tokenizer.pad_token_id)
    return predict_logits(model, loader, order, first_and_mean, desc="features")


def probe(train: np.ndarray, train_labels, dev: np.ndarray, dev_labels) -> dict:
    mu, sd = train.mean(0), train.std(0) + 1e-6
    fitted = LogisticRegression(max_iter=2000).fit((train - mu) / sd, train_labels)
    predicted = fitted.predict((dev - mu) / sd)
    return {"f1": round(f1_score(dev_labels, predicted), 4), "accuracy": round(accuracy_score(dev_labels, predicted), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", required=True)
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--transfer", required=True)
    ap.add_argument("--trim-min-count", type=int, required=True)
    ap.add_argument("students", nargs="+", metavar="NAME=CONFIG_DIR=WEIGHTS")
    args = ap.parse_args()
    torch.set_num_threads(1)
    full, trimmed = trimmed_tokenizer(args.teacher, args.transfer, args.trim_min_count)
    data = load_task_data(DataOptions(task=args.task))
    for spec in args.students:
        name, config_dir, weights = spec.split("=")
        model = encoder(config_dir, weights)
        tokenizer = trimmed if model.config.vocab_size == len(trimmed) else full
        train, dev = features(model, tokenizer, data.train), features(model, tokenizer, data.dev)
        width = train.shape[1] // 2
        print(json.dumps({"student": name, "vocabulary": model.config.vocab_size, **{
            where: probe(train[:, cols], data.train.labels, dev[:, cols], data.dev.labels)
            for where, cols in (("first_token", slice(0, width)), ("mean", slice(width, 2 * width)))}}), flush=True)


if __name__ == "__main__":
    main()
