"""Generative augmentation (the GPT-2 transfer-set pipeline of tahaShm/knowledge-distillation): fine-tune a
causal LM on the task's training text, optionally label-conditioned ("positive: <text>"), then sample new
examples with top-k / top-p / temperature. Pair tasks: the LM learns "<first> => <second>" and writes a new
second sentence for each original first sentence. Batched; on the GPU when there is one.

The fine-tuned generator is saved in the transfer set's `generator/` folder: a resumed run samples from the same
model, and `--generator DIR/generator --generator-epochs 0` samples from it again without fine-tuning.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from kdedge.errors import KdedgeError

PAIR_SEPARATOR = " => "


def load_generator(name: str, gguf_file: str | None):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **kw)
        model = AutoModelForCausalLM.from_pretrained(name, **kw)
    except Exception as e:
        raise KdedgeError(f"--generator {name}{f' --gguf-file {gguf_file}' if gguf_file else ''}: cannot load a "
                          f"causal LM ({type(e).__name__}: {e})") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model


class GenerativeAugmentation:
    name = "generative"

    def __init__(self, cfg, train, task, work: Path, device: torch.device):
        if not cfg.generator:
            raise KdedgeError("--method generative needs --generator (a causal LM hub id or folder, e.g. gpt2)")
        self.cfg, self.task, self.device = cfg, task, device
        self.conditioned = cfg.label_conditioned and not task.is_regression
        folder = work / "generator"
        log = folder / "fine_tuning.json"  # written last: its presence means the fine-tuned generator is complete
        if cfg.generator_epochs <= 0:  # sample from the generator as given (e.g. one fine-tuned by an earlier run)
            self.tokenizer, self.model = load_generator(cfg.generator, cfg.gguf_file)
            self.train_log = {"examples": 0, "steps": 0}
        elif log.is_file():  # fine-tuned before an interruption
            self.tokenizer, self.model = load_generator(str(folder), None)
            self.train_log = json.loads(log.read_text())
        else:
            self.tokenizer, self.model = load_generator(cfg.generator, cfg.gguf_file)
            self.train_log = self._fine_tune(train)
            self.model.save_pretrained(folder)
            self.tokenizer.save_pretrained(folder)
            log.write_text(json.dumps(self.train_log, indent=2))
        self.model.to(device).eval()

    def _prefix(self, label) -> str:
        return f"{self.task.label_names[int(label)]}: " if self.conditioned else ""

    @property
    def _bos(self) -> str:
        return self.tokenizer.bos_token or self.tokenizer.eos_token

    def _training_text(self, text: str, pair: str | None, label) -> str:
        # Written out in full (and tokenized without special tokens) so training and sampling see the same start,
        # whether or not the tokenizer adds a BOS itself (GPT-2's does not).
        body = text if pair is None else f"{text}{PAIR_SEPARATOR}{pair}"
        return self._bos + self._prefix(label) + body + self.tokenizer.eos_token

    def _prompt(self, text: str, label, paired: bool) -> str:
        """The start of a training text, up to where the LM writes. No trailing space: BPE vocabularies fold a
        word's leading space into its token, so a prompt ending in " " asks for a space-less continuation the LM
        never saw there in training (it then writes digits and quotes)."""
        return self._bos + (self._prefix(label) + (f"{text}{PAIR_SEPARATOR}" if paired else "")).rstrip()

    def _fine_tune(self, train) -> dict:
        cfg = self.cfg
        rng = np.random.default_rng(cfg.seed)
        rows = np.arange(len(train))
        if cfg.generator_train_samples is not None and cfg.generator_train_samples < len(rows):
            rows = np.sort(rng.choice(rows, cfg.generator_train_samples, replace=False))
        texts = [self._training_text(train.text[i], None if train.text_pair is None else train.text_pair[i],
                                     train.labels[i]) for i in rows]
        model = self.model.to(self.device).train()
        self.tokenizer.padding_side = "right"  # positions count from each text's start (sampling pads left)
        batch_size = cfg.generator_batch_size
        steps = max(1, math.ceil(cfg.generator_epochs * len(texts) / batch_size))
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.generator_lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 - s / steps)
        torch.manual_seed(cfg.seed)
        start = time.perf_counter()
        order, losses = np.concatenate([rng.permutation(len(texts)) for _ in range(math.ceil(cfg.generator_epochs))]), []
        for step in range(steps):
            batch = [texts[i] for i in order[step * batch_size:(step + 1) * batch_size]] or [texts[0]]
            enc = self.tokenizer(batch, return_tensors="pt", padding=True, truncation=True, max_length=128,
                                 add_special_tokens=False).to(self.device)
            labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
            loss = model(**enc, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        return {"examples": len(texts), "steps": steps, "first_loss": losses[0], "last_loss": losses[-1],
                "wall_time_s": round(time.perf_counter() - start, 2)}

    def describe(self) -> dict:
        cfg = self.cfg
        return {"generator": cfg.generator, "gguf_file": cfg.gguf_file, "label_conditioned": self.conditioned,
                "per_example": cfg.generated_per_example, "top_k": cfg.sample_top_k, "top_p": cfg.sample_top_p,
                "temperature": cfg.sample_temperature, "min_new_tokens": cfg.min_new_tokens,
                "max_new_tokens": cfg.max_new_tokens, "fine_tuning": self.train_log}

    @torch.no_grad()
    def variants(self, chunk, rng: np.random.Generator):
        """Samples for this shard: generated_per_example per original; each takes an original as its parent (its
        label as the condition, its first sentence as the prompt for pairs)."""
        texts, pairs, labels = chunk.text, chunk.text_pair, chunk.labels
        count = int(round(self.cfg.generated_per_example * len(texts)))
        parents = rng.choice(len(texts), size=count, replace=count > len(texts)) if count else []
        prompts = [self._prompt(texts[i], labels[i], paired=pairs is not None) for i in parents]
        torch.manual_seed(int(rng.integers(2**31)))
        self.tokenizer.padding_side = "left"
        for start in range(0, len(prompts), self.cfg.generator_batch_size):
            batch = prompts[start:start + self.cfg.generator_batch_size]
            enc = self.tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            out = self.model.generate(**enc, do_sample=True, top_k=self.cfg.sample_top_k, top_p=self.cfg.sample_top_p,
                                      temperature=self.cfg.sample_temperature, min_new_tokens=self.cfg.min_new_tokens,
                                      max_new_tokens=self.cfg.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id,
                                      eos_token_id=self.tokenizer.eos_token_id)  # what each training text ended in
            new = self.tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            for k, sample in enumerate(new):
                parent = int(parents[start + k])
                sample = sample.split("\n")[0].strip()
                if pairs is None:
                    yield parent, sample, None
                else:
                    yield parent, texts[parent], sample
