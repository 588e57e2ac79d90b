"""Word replacement (TinyBERT's data augmentation, Jiao et al. 2020): each word, with probability p, becomes
one of its top-K candidates. Candidates come from a masked LM (single-piece words: the word is masked and the
LM's top-K fillers are kept) or from the nearest neighbours of its word vector (whole words, cosine).

Candidates are computed once per distinct word (vectors) or per word position (masked LM), in batched matrix
form; the N variants of an example then only draw from them."""

from __future__ import annotations

import numpy as np
import torch

from kdedge.augment.words import is_word, one_side_variants, split_words
from kdedge.errors import KdedgeError


class VectorNeighbours:
    """Top-K cosine neighbours of words, from a GloVe/word2vec text file, computed in blocks of words at once."""

    def __init__(self, path: str, top_k: int, block: int = 2048):
        from kdedge.models.word_vectors import read_word_vectors

        self.words, vectors = read_word_vectors(path)
        self.index = {w: i for i, w in enumerate(self.words)}
        self.unit = torch.from_numpy(vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-8))
        self.top_k, self.block = top_k, block
        self.cache: dict[str, list[str]] = {}

    def candidates(self, words: set[str]) -> dict[str, list[str]]:
        todo = sorted(w for w in words if w not in self.cache and w in self.index)
        for start in range(0, len(todo), self.block):
            chunk = todo[start:start + self.block]
            rows = torch.tensor([self.index[w] for w in chunk])
            scores = self.unit[rows] @ self.unit.T
            scores[torch.arange(len(chunk)), rows] = -2.0  # a word is not its own replacement
            top = scores.topk(self.top_k, dim=1).indices.tolist()
            for word, ids in zip(chunk, top):
                self.cache[word] = [self.words[i] for i in ids]
        return {w: self.cache.get(w, []) for w in words}


class MaskedLMCandidates:
    """Top-K fillers of a masked LM for each single-piece word of a sentence (one masked copy per word, batched)."""

    def __init__(self, name: str, top_k: int, batch_size: int = 64):
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name)
            self.model = AutoModelForMaskedLM.from_pretrained(name).eval()
        except Exception as e:
            raise KdedgeError(f"--mlm {name}: cannot load a masked LM ({type(e).__name__}: {e})") from None
        if self.tokenizer.mask_token_id is None:
            raise KdedgeError(f"--mlm {name}: its tokenizer has no mask token")
        self.top_k, self.batch_size = top_k, batch_size
        vocab = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
        # Whole words only: no special tokens, no continuation pieces, no punctuation-only pieces.
        self.allowed = torch.tensor([t.isalpha() and not t.startswith("##") and t not in self.tokenizer.all_special_tokens
                                     for t in vocab])

    @torch.no_grad()
    def candidates(self, sentences: list[list[str]]) -> list[dict[int, list[str]]]:
        """For each sentence, word position -> candidate words."""
        enc = self.tokenizer(sentences, is_split_into_words=True, truncation=True, max_length=128)
        jobs = []  # (sentence, word position, token position)
        for s, ids in enumerate(enc["input_ids"]):
            word_ids = enc.word_ids(s)
            for w in set(i for i in word_ids if i is not None):
                positions = [t for t, i in enumerate(word_ids) if i == w]
                if len(positions) == 1 and is_word(sentences[s][w]):
                    jobs.append((s, w, positions[0]))
        out: list[dict[int, list[str]]] = [{} for _ in sentences]
        for start in range(0, len(jobs), self.batch_size):
            batch = jobs[start:start + self.batch_size]
            rows = [list(enc["input_ids"][s]) for s, _, _ in batch]
            for row, (_, _, t) in zip(rows, batch):
                row[t] = self.tokenizer.mask_token_id
            padded = self.tokenizer.pad({"input_ids": rows}, return_tensors="pt")
            logits = self.model(**padded).logits
            at_mask = logits[torch.arange(len(batch)), torch.tensor([t for _, _, t in batch])]
            at_mask[:, ~self.allowed] = float("-inf")
            for (s, w, t), row, ids in zip(batch, rows, at_mask.topk(self.top_k + 1, dim=1).indices.tolist()):
                original = sentences[s][w].lower()
                words = [x for x in self.tokenizer.convert_ids_to_tokens(ids) if x.lower() != original]
                out[s][w] = words[: self.top_k]
        return out


class WordReplacement:
    name = "replace"

    def __init__(self, cfg):
        if not (cfg.word_vectors or cfg.mlm):
            raise KdedgeError("--method replace needs candidates: --word-vectors FILE (GloVe neighbours) and/or "
                              "--mlm MODEL (a masked LM)")
        if not 0.0 <= cfg.p_replace <= 1.0:
            raise KdedgeError("--p-replace must be in [0, 1]")
        self.p, self.n = cfg.p_replace, cfg.variants
        self.vectors = VectorNeighbours(cfg.word_vectors, cfg.top_k) if cfg.word_vectors else None
        self.mlm = MaskedLMCandidates(cfg.mlm, cfg.top_k) if cfg.mlm else None

    def describe(self) -> dict:
        return {"variants": self.n, "p_replace": self.p,
                "candidates": ("masked LM, single-piece words" if self.mlm else "")
                + (" + " if self.mlm and self.vectors else "")
                + ("word-vector neighbours, whole words" if self.vectors else "")}

    def _sentence_candidates(self, sentences: list[list[str]]) -> list[dict[int, list[str]]]:
        per_sentence = self.mlm.candidates(sentences) if self.mlm else [{} for _ in sentences]
        if self.vectors:
            table = self.vectors.candidates({w.lower() for s in sentences for w in s if is_word(w)})
            for s, words in enumerate(sentences):
                for i, w in enumerate(words):
                    # The masked LM's candidates win for single-piece words; vectors cover the rest (TinyBERT).
                    if i not in per_sentence[s] and table.get(w.lower()):
                        per_sentence[s][i] = table[w.lower()]
        return per_sentence

    def _vary(self, words: list[str], candidates: dict[int, list[str]], rng: np.random.Generator) -> list[str]:
        out = list(words)
        for i, options in candidates.items():
            if options and rng.random() < self.p:
                out[i] = options[rng.integers(len(options))]
        return out

    def variants(self, chunk, rng: np.random.Generator):
        """(index of the original, text, pair) for N variants of each example (a pair's: one side at a time)."""
        sides = [[split_words(t) for t in texts] for texts in (chunk.text, chunk.text_pair) if texts is not None]
        candidates = [self._sentence_candidates(side) for side in sides]
        yield from one_side_variants(sides[0], sides[1] if len(sides) > 1 else None, self.n,
                                     lambda side, i, words: self._vary(words, candidates[side][i], rng))
