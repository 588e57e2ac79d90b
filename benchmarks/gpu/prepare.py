"""The folder that travels to the GPU machine (issue 46), and its unpacking there.

    python benchmarks/gpu/prepare.py build CARRY [--smoke]   # here: teacher base in fp16, SST-2, word vectors
    python benchmarks/gpu/prepare.py unpack CARRY INPUTS     # there (run.sh): GLUE folder, GloVe text file, model

The GPU machine reaches nothing, and at most 64 MiB travel with the working tree, so everything a run reads that is
not in the repository goes here, as small as it stays exact:
- `teacher-base/`: all-MiniLM-L6-v2 (the hub cache in ../shared) with every tensor cast to float16, key for key,
  plus its config and tokenizer files; `kdedge teacher` loads it into float32 master weights (models/teacher.py:
  float32_weights), so the fine-tuning starts from the CPU runs' weights rounded to half precision;
- `data.tar.xz`: SST-2's train.tsv and dev.tsv, unchanged, in the GLUE folder layout;
- `vectors.npz`: the GloVe vectors (float16) of the most frequent words of SST-2 train, which the BiLSTM's
  8,000-word vocabulary is drawn from; written back as a GloVe text file there.
`--imdb` (fast_end.sh) adds the shared IMDB sample split as the CPU's IMDB_HALF runs split it
(benchmarks/split_labelled.py, seed 0): `imdb/unlabeled.txt` (1,000 reviews, labels dropped) and `imdb/eval.tsv` (the
held-out half) in `data.tar.xz`, and the vectors of the words of SST-2 train and those reviews, the words GloVe
replacement rewrites: the most frequent 20,000 (18,598 are in the 60,000-word file), which is what fits. The CPU
draws neighbours from all 60,000, so set (b) built there is not the same rows.
`--smoke` builds the same layout from a tiny BERT made from a config and a few hundred rows (tests/test_gpu_script.py).
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

TEACHER_ID = "sentence-transformers/all-MiniLM-L6-v2"
TOKENIZER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
SMOKE_ROWS = {"train.tsv": 240, "dev.tsv": 64, "imdb": 80}


def shared_dir() -> Path:
    return Path(os.environ.get("KDEDGE_SHARED") or Path(__file__).resolve().parents[3] / "shared")


def _hub_snapshot(model_id: str) -> Path:
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(model_id, local_files_only=True))


def _half_teacher(out: Path) -> None:
    """The hub checkpoint's tensors cast to float16 under the same names (no model class in between: nothing is
    added, dropped or initialised)."""
    from safetensors.torch import load_file, save_file

    snapshot = _hub_snapshot(TEACHER_ID)
    out.mkdir(parents=True)
    tensors = load_file(snapshot / "model.safetensors")
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in tensors.items()},
              out / "model.safetensors", metadata={"format": "pt"})
    for name in TOKENIZER_FILES:
        if (snapshot / name).is_file():
            shutil.copyfile(snapshot / name, out / name)
    config = json.loads((out / "config.json").read_text())
    config["torch_dtype"] = config["dtype"] = "float16"
    (out / "config.json").write_text(json.dumps(config, indent=2))


def _tiny_teacher(out: Path, texts: list[str]) -> None:
    """A 2-layer, hidden-32 BERT (random weights) with a WordPiece vocabulary trained on `texts`, in float16."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out.mkdir(parents=True)
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(texts, vocab_size=800, min_frequency=1)
    wordpiece.save_model(str(out))
    tokenizer = BertTokenizerFast.from_pretrained(str(out), do_lower_case=True)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=256)
    torch.manual_seed(0)
    BertModel(config).half().save_pretrained(out)
    tokenizer.save_pretrained(out)


def _rows(path: Path, limit: int | None) -> str:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    return "".join(lines if limit is None else lines[: limit + 1])  # the header, then the rows


def _words(texts: list[str]) -> collections.Counter:
    """Lowercased words of the texts as the BiLSTM's tokenizer splits them (BERT's pre-tokenizer)."""
    from tokenizers import pre_tokenizers

    split = pre_tokenizers.BertPreTokenizer()
    counts = collections.Counter()
    for text in texts:
        counts.update(word for word, _ in split.pre_tokenize_str(text.lower()))
    return counts


def _imdb_halves(tsv: Path, rows: int | None) -> dict[str, str]:
    """The sample split by benchmarks/split_labelled.py as the CPU runs call it: {"unlabeled.txt", "eval.tsv"}."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "sample.tsv"
        # split on "\n" alone, as split_labelled.py does: reviews hold characters str.splitlines() breaks at
        lines = tsv.read_text(encoding="utf-8").split("\n")
        source.write_text("\n".join(lines if rows is None else lines[: rows + 1]), encoding="utf-8")
        unlabeled = 1000 if rows is None else rows // 2
        subprocess.run([sys.executable, str(Path(__file__).parents[1] / "split_labelled.py"), str(source),
                        f"{tmp}/unlabeled.txt", f"{tmp}/eval.tsv", "--unlabeled-rows", str(unlabeled), "--seed", "0"],
                       check=True, stdout=subprocess.DEVNULL)
        return {name: (Path(tmp) / name).read_text(encoding="utf-8") for name in ("unlabeled.txt", "eval.tsv")}


def _vectors(texts: list[str], glove: Path | None, words: int, dim_if_random: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """The `words` most frequent words of the texts that GloVe has, and their vectors; without a GloVe file (smoke
    only), seeded random vectors for the most frequent words."""
    counts = _words(texts)
    if glove is None:
        chosen = [w for w, _ in counts.most_common(words)]
        return np.array(chosen), np.random.default_rng(0).normal(size=(len(chosen), dim_if_random)).astype(np.float16)
    wanted = {w for w, _ in counts.most_common(words * 2)}
    found = {}
    with glove.open(encoding="utf-8") as f:
        for line in f:
            word, rest = line.split(" ", 1)
            if word in wanted and word not in found:
                found[word] = np.array(rest.split(), dtype=np.float32)
    chosen = [w for w, _ in counts.most_common() if w in found][:words]
    return np.array(chosen), np.stack([found[w] for w in chosen]).astype(np.float16)


def build(carry: Path, smoke: bool, imdb: bool = False) -> None:
    shared = shared_dir()
    glue = Path(os.environ.get("KDEDGE_DATA_DIR") or shared / "data" / "glue") / "SST-2"
    if not (glue / "train.tsv").is_file():
        raise SystemExit(f"SST-2 not found under {glue} (set KDEDGE_DATA_DIR or KDEDGE_SHARED)")
    for name in ("teacher-base", "data.tar.xz", "vectors.npz", "carry.json"):
        target = carry / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    carry.mkdir(parents=True, exist_ok=True)
    files = {f"glue/SST-2/{name}": _rows(glue / name, SMOKE_ROWS[name] if smoke else None)
             for name in ("train.tsv", "dev.tsv")}
    texts = [line.split("\t")[0] for line in files["glue/SST-2/train.tsv"].splitlines()[1:]]
    if imdb:
        halves = _imdb_halves(glue.parent.parent / "imdb" / "test-2k.tsv", SMOKE_ROWS["imdb"] if smoke else None)
        files.update({f"imdb/{name}": text for name, text in halves.items()})
        texts += halves["unlabeled.txt"].splitlines()
    with tarfile.open(carry / "data.tar.xz", "w:xz", preset=9) as tar:
        for name, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    if smoke:
        _tiny_teacher(carry / "teacher-base", texts)
    else:
        _half_teacher(carry / "teacher-base")
    glove = Path(os.environ.get("KDEDGE_GLOVE") or shared / "vectors" / "glove.6B.100d.60k.txt")
    words, vectors = _vectors(texts, glove if glove.is_file() else None,
                              (1500 if smoke else 10000) * (2 if imdb else 1))
    np.savez_compressed(carry / "vectors.npz", words=words, vectors=vectors)
    (carry / "carry.json").write_text(json.dumps({
        "smoke": smoke, "teacher": "tiny BERT from a config" if smoke else f"{TEACHER_ID}, float16",
        "rows": {name: text.count("\n") - name.endswith(".tsv") for name, text in files.items()},
        "vector_words": int(len(words)), "vector_dim": int(vectors.shape[1]),
        "glove": str(glove) if glove.is_file() else None}, indent=2))


def unpack(carry: Path, inputs: Path) -> None:
    """GLUE folder (inputs/glue/SST-2), the IMDB halves where carried (inputs/imdb), GloVe text file
    (inputs/vectors.txt); the teacher base is read in place."""
    inputs.mkdir(parents=True, exist_ok=True)
    with tarfile.open(carry / "data.tar.xz") as tar:
        tar.extractall(inputs, filter="data")
    saved = np.load(carry / "vectors.npz")
    with (inputs / "vectors.txt").open("w", encoding="utf-8") as f:
        for word, vector in zip(saved["words"], saved["vectors"].astype(np.float32)):
            f.write(word + " " + " ".join(f"{v:.5g}" for v in vector) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("build")
    b.add_argument("carry", type=Path)
    b.add_argument("--smoke", action="store_true")
    b.add_argument("--imdb", action="store_true", help="the IMDB sample's two halves too (fast_end.sh)")
    u = commands.add_parser("unpack")
    u.add_argument("carry", type=Path)
    u.add_argument("inputs", type=Path)
    args = parser.parse_args()
    if args.command == "build":
        build(args.carry, args.smoke, args.imdb)
    else:
        unpack(args.carry, args.inputs)


if __name__ == "__main__":
    main()
