"""Word-level vocabularies built from the data, and embedding matrices from GloVe/word2vec text files.

The vocabulary is a `tokenizers` WordLevel model with BERT's normaliser and pre-tokeniser, wrapped as a
transformers fast tokenizer: it saves as an ordinary tokenizer.json, so the exported student's runtime
(Python or Node) tokenizes exactly as training did.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel
from tokenizers.trainers import WordLevelTrainer
from transformers import PreTrainedTokenizerFast

from kdedge.errors import KdedgeError

PAD, UNK = "[PAD]", "[UNK]"


def build_word_tokenizer(texts, min_freq: int = 1, max_words: int | None = None) -> PreTrainedTokenizerFast:
    """A lowercased word-level tokenizer of the words seen at least `min_freq` times (at most the `max_words`
    most frequent), plus [PAD] and [UNK]."""
    tok = Tokenizer(WordLevel(unk_token=UNK))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = [PAD, UNK]
    size = {} if max_words is None else {"vocab_size": max_words + len(specials)}
    tok.train_from_iterator(texts, WordLevelTrainer(min_frequency=min_freq, special_tokens=specials, **size))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, unk_token=UNK)


def iter_word_vectors(path: str | Path):
    """(word, values as strings) for every line of a GloVe/word2vec text file, checking the format as it goes."""
    path = Path(path)
    if not path.is_file():
        raise KdedgeError(f"--word-vectors: file not found: {path}")
    dim = None
    with path.open(encoding="utf-8", errors="replace") as f:
        for line_num, line in enumerate(f, 1):
            parts = line.rstrip().split(" ")
            if line_num == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec text header: "<count> <dim>"
            if dim is None:
                dim = len(parts) - 1
                if dim < 1:
                    raise KdedgeError(f"{path}, line {line_num}: expected 'word v1 v2 ...'")
            if len(parts) - 1 != dim:
                raise KdedgeError(f"{path}, line {line_num}: {len(parts) - 1} values, expected {dim}")
            yield parts[0], parts[1:]
    if dim is None:
        raise KdedgeError(f"{path}: no vectors in the file")


def read_word_vectors(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Every word of the file (first occurrence) and its vector."""
    words, vectors, seen = [], [], set()
    for word, values in iter_word_vectors(path):
        if word not in seen:
            seen.add(word)
            words.append(word)
            vectors.append(np.asarray(values, dtype=np.float32))
    return words, np.stack(vectors)


def load_word_vectors(path: str | Path, vocab: dict[str, int], seed: int = 0) -> tuple[np.ndarray, float]:
    """An embedding matrix for `vocab` from a GloVe/word2vec text file, and the share of words found.

    Words missing from the file get random vectors with the file's own scale; the pad row is zero.
    """
    found: dict[int, np.ndarray] = {}
    dim = None
    for word, values in iter_word_vectors(path):
        dim = len(values)
        idx = vocab.get(word)
        if idx is not None and idx not in found:
            found[idx] = np.asarray(values, dtype=np.float32)
    known = np.stack(list(found.values())) if found else np.zeros((1, dim), np.float32)
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, float(known.std()) or 0.1, size=(len(vocab), dim)).astype(np.float32)
    for idx, vec in found.items():
        matrix[idx] = vec
    if PAD in vocab:
        matrix[vocab[PAD]] = 0.0
    return matrix, len(found) / max(len(vocab), 1)
