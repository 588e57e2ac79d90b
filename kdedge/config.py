"""Typed configs for every command: one dataclass per command, its fields mirror the CLI flags.

A YAML file given with ``--config`` supplies values; flags given on the command line win; an
unknown key is an error that names it. Field metadata carries the help text shown by ``--help``.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from kdedge.errors import KdedgeError
from kdedge.ngram_scopes import SCOPES
from kdedge_runtime.data import shown
from kdedge_runtime.ngram import MAX_CHAR_NGRAM, MAX_WORD_NGRAMS


@dataclass(frozen=True)
class Range:
    """The values an option accepts: [lo, hi], open at either end with `lo_open` / `hi_open`."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def accepts(self, value: float) -> bool:
        above = self.lo is None or (value > self.lo if self.lo_open else value >= self.lo)
        return above and (self.hi is None or (value < self.hi if self.hi_open else value <= self.hi))

    def __str__(self) -> str:
        low = None if self.lo is None else f"{'greater than' if self.lo_open else 'at least'} {self.lo:g}"
        if self.hi is None:
            return low or "any number"
        if self.lo is None:
            return f"{'under' if self.hi_open else 'at most'} {self.hi:g}"
        if not (self.lo_open or self.hi_open):
            return f"between {self.lo:g} and {self.hi:g}"
        return f"in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"


COUNT, NATURAL, POSITIVE, FRACTION = Range(1), Range(0), Range(0, lo_open=True), Range(0, 1)


def opt(default: Any = None, help: str = "", required: bool = False, valid: Range | None = None) -> Any:
    return field(default=default, metadata={"help": help, "required": required, "valid": valid})


class Checked:
    """Every config checks its options' ranges when it is made, whether from flags, a YAML file or Python."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            valid, value = f.metadata.get("valid"), getattr(self, f.name)
            if valid is not None and value is not None and not isinstance(value, bool) \
                    and isinstance(value, (int, float)) and not valid.accepts(value):
                raise KdedgeError(f"--{f.name.replace('_', '-')} must be {valid}, not {value!r}")


@dataclass
class DataOptions(Checked):
    """Where the task's data comes from; shared by every command that reads training data."""

    task: str | None = opt(
        None,
        "GLUE task (sst2, cola, mrpc, stsb, qqp, mnli, qnli, rte, wnli) or, with --train-file, "
        "a name for your own task.",
    )
    data_dir: str | None = opt(
        None,
        "Local GLUE folder (the layout of GLUE's download script: SST-2/train.tsv, ...). Defaults to "
        "$KDEDGE_DATA_DIR; when neither is set, GLUE tasks load from the dataset hub.",
    )
    train_file: str | None = opt(None, "Your own training file (.csv, .tsv, .jsonl or .parquet).")
    dev_file: str | None = opt(None, "Your own dev file, same format and columns as --train-file. With a GLUE "
                                     "--task alone: a file in the task's layout (SST-2: sentence and label "
                                     "columns), evaluated instead of its dev split.")
    text_column: str = opt("text", "Column holding the text (custom files).")
    text_pair_column: str | None = opt(None, "Column holding the second text of a pair task (custom files).")
    label_column: str = opt("label", "Column holding the gold label (custom files).")
    task_type: Literal["classification", "regression"] = opt(
        "classification", "Custom files: classification (labels) or regression (a score)."
    )
    labels: str | None = opt(
        None, "Custom files: comma-separated label names in class-id order (default: sorted labels of the train file)."
    )
    max_train_samples: int | None = opt(
        None, "Use a fixed random sample of N training rows (seeded: the same rows in every command), a budget "
        "for quick runs. With --transfer: N rows of the transfer set.", valid=COUNT)
    max_eval_samples: int | None = opt(None, "Use only the first N dev rows.", valid=COUNT)
    max_length: int = opt(128, "Maximum sequence length in tokens (words, for --student ngram); longer inputs are "
                          "truncated.", valid=Range(4))

    def resolved_data_dir(self) -> str | None:
        return self.data_dir or os.environ.get("KDEDGE_DATA_DIR") or None


# What a trained model's manifest fixes about its task: commands that read a model (export, bench) take these
# from it instead of offering them again.
RECORDED_DATA_FIELDS = ("task", "train_file", "dev_file", "text_column", "text_pair_column", "label_column",
                        "task_type", "labels")


@dataclass
class ModelDataOptions(Checked):
    """Where the data of an already trained model is on this machine. The task, its columns and labels come from
    the model's manifest; these say only where the files are now and how much of dev to use."""

    data_dir: str | None = opt(
        None, "Local GLUE folder (the layout of GLUE's download script). Defaults to $KDEDGE_DATA_DIR; when "
        "neither is set, GLUE tasks load from the dataset hub.")
    train_file: str | None = opt(None, "Custom tasks: the training file, if it is not where the model was trained.")
    dev_file: str | None = opt(None, "The dev file to score on: for custom tasks, if it is not where the model was "
                                     "trained; for GLUE tasks, a file in the task's layout (SST-2: sentence and "
                                     "label columns), e.g. an out-of-domain test set, instead of the dev split.")
    max_eval_samples: int | None = opt(None, "Use only the first N dev rows.", valid=COUNT)


@dataclass
class TrainOptions(Checked):
    """The shared training loop's knobs."""

    out: str | None = opt(None, "Output folder.", required=True)
    epochs: int = opt(3, "Training epochs.", valid=COUNT)
    batch_size: int = opt(32, "Training batch size (per device).", valid=COUNT)
    eval_batch_size: int = opt(128, "Evaluation and inference batch size.", valid=COUNT)
    lr: float = opt(5e-5, "Peak learning rate of AdamW (linear warm-up, then linear decay).", valid=POSITIVE)
    warmup_ratio: float = opt(0.1, "Fraction of the steps used for linear warm-up.", valid=FRACTION)
    weight_decay: float = opt(0.01, "AdamW weight decay (not applied to biases and LayerNorm).", valid=NATURAL)
    max_grad_norm: float = opt(1.0, "Gradient clipping norm (0 disables).", valid=NATURAL)
    patience: int | None = opt(None, "Early stopping: stop after N evaluations without dev improvement.", valid=COUNT)
    eval_steps: int | None = opt(None, "Evaluate every N steps as well as at each epoch end.", valid=COUNT)
    save_steps: int = opt(500, "Write a resumable checkpoint every N optimizer steps (and at every epoch end).",
                          valid=COUNT)
    log_steps: int = opt(50, "Write the mean training loss to train_log.jsonl every N steps.", valid=COUNT)
    ema_decay: float | None = opt(None, "Evaluate and keep an exponential moving average of the weights, updated "
                                        "after every step with this decay (e.g. 0.999: about the last 1,000 steps), "
                                        "instead of the weights of the step itself (Polyak and Juditsky 1992).",
                                  valid=Range(0, 1, lo_open=True, hi_open=True))
    seed: int = opt(42, "Random seed (data order, initialisation, dropout).")
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = opt(
        "auto", "Mixed precision; auto = fp16 on CUDA, none on CPU. bf16 also runs on CPUs with bfloat16 "
        "instructions (AVX512_BF16, AMX, ARM BF16).")
    resume: bool = opt(False, "Continue an interrupted run from its last checkpoint.")
    overwrite: bool = opt(False, "Replace an existing output folder.")


@dataclass
class TeacherConfig(TrainOptions, DataOptions):
    model: str = opt(
        "sentence-transformers/all-MiniLM-L6-v2", "Hub id or local folder of the encoder to fine-tune."
    )


@dataclass
class DistillConfig(TrainOptions, DataOptions):
    defaults: str = opt("auto", "Where the options neither --config nor a flag sets come from: small-data (a recipe "
                                "for a few thousand labelled rows, kdedge/defaults/), small-data-assisted (the same "
                                "with a teacher assistant), built-in (the defaults shown here), or auto: small-data "
                                "when the task has fewer than 10,000 labelled training rows and the run is a TinyBERT "
                                "two-stage one (--student, --recipe), small-data-assisted when such a run also has "
                                "an --intermediate-teacher.")
    # Student-friendly defaults for fields shared with the teacher.
    epochs: int = opt(10, "Training epochs.", valid=NATURAL)
    batch_size: int = opt(64, "Training batch size (per device).", valid=COUNT)
    lr: float | None = opt(None, "Peak learning rate of AdamW (default: 1e-3 for bilstm, 1e-4 for tinybert, 1e-2 "
                                "for ngram).",
                           valid=POSITIVE)
    teacher: str | None = opt(None, "Teacher folder (from `kdedge teacher`) or hub id of a fine-tuned classifier.", required=True)
    transfer: str | None = opt(None, "Train on a transfer set from `kdedge augment` (its stored teacher logits; gold "
                                     "labels where known) instead of the task's training rows.")
    intermediate_teacher: str | None = opt(
        None, "A second fine-tuned classifier (folder or hub id) that the student's layers come from (--init prune/"
              "teacher-layers) and are matched to (--recipe two-stage/joint), in place of --teacher: a smaller model "
              "whose forward pass is cheaper (a teacher assistant, Mirzadeh et al. 2020). --teacher's logits (or "
              "--transfer's stored ones) stay the soft labels.")
    student: Literal["bilstm", "tinybert", "ngram"] = opt(
        "bilstm", "Student architecture: bilstm (Tang et al. 2019), tinybert (a BERT encoder, Jiao et al. 2020) or "
        "ngram (fastText's bag of word and hashed n-gram embeddings, Joulin et al. 2017).")
    soft_loss: Literal["mse", "kl", "soft_ce"] = opt(
        "mse", "Prediction-layer soft loss: mse on logits (Tang et al. 2019), kl or soft_ce at temperature T "
        "scaled by T^2 (Hinton et al. 2015; TinyBERT uses soft_ce).")
    alpha: float = opt(0.0, "Weight of the gold-label loss; the soft loss gets 1 - alpha.", valid=FRACTION)
    alpha_end: float | None = opt(None, "Anneal alpha linearly to this value over training.", valid=FRACTION)
    temperature: float = opt(2.0, "Softmax temperature of the kl/soft_ce soft losses.", valid=POSITIVE)
    temperature_end: float | None = opt(None, "Anneal the temperature linearly to this value over training.",
                                        valid=POSITIVE)
    word_vectors: str | None = opt(
        None,
        "GloVe/word2vec text file: the bilstm student gets a word-level vocabulary built from the data and these "
        "vectors (without it, the teacher's WordPiece tokenizer and embedding matrix); the ngram student's words "
        "start from them, reduced to --ngram-dim by PCA.",
    )
    lstm_hidden: int = opt(300, "BiLSTM hidden size per direction.", valid=COUNT)
    mlp_hidden: int = opt(400, "Size of the ReLU hidden layer of the classifier.", valid=COUNT)
    dropout: float = opt(0.1, "Dropout on embeddings and the classifier.", valid=Range(0, 0.99))
    freeze_embeddings: bool = opt(False, "Keep the embedding matrix fixed.")
    min_word_freq: int = opt(1, "Word-level vocabulary: keep words seen at least N times.", valid=COUNT)
    max_vocab: int | None = opt(None, "Word-level vocabulary: keep at most the N most frequent words (its "
                                      "embedding table is most of a BiLSTM bundle).", valid=COUNT)
    # --- n-gram (fastText-style) students; their word vocabulary takes --min-word-freq and --max-vocab
    ngram_dim: int = opt(50, "ngram: embedding size of words and n-grams.", valid=COUNT)
    ngram_hidden: int = opt(0, "ngram: size of a ReLU hidden layer before the logits (0: none, as fastText).",
                            valid=NATURAL)
    ngram_hidden_layers: int = opt(1, "ngram: how many ReLU hidden layers of --ngram-hidden are stacked (DAN used "
                                      "up to 3, Iyyer et al. 2015).", valid=COUNT)
    ngram_word_dropout: float = opt(0.0, "ngram: while training, leave each word and n-gram out of a text's mean "
                                         "with this probability (word dropout, as in DAN).", valid=Range(0, 0.99))
    ngram_buckets: int = opt(20000, "ngram: hash buckets shared by the word n-grams and character n-grams (with the "
                                    "vocabulary, the rows of the embedding table).", valid=Range(1, 2**31 - 1))
    ngram_words: int = opt(2, "ngram: longest word n-gram hashed (1: words alone, 2: and bigrams).",
                           valid=Range(1, MAX_WORD_NGRAMS))
    ngram_chars: str | None = opt(None, "ngram: also hash the character n-grams of every word, MIN-MAX characters "
                                        "long (e.g. 3-5; default: none).")
    ngram_scopes: str | None = opt(None, "ngram: comma-separated scopes whose words become features of their own "
                                         f"(the word after 'not' as 'not_good'): {', '.join(SCOPES)} (default: none).")
    # --- transformer (tinybert) students
    layers: int = opt(4, "tinybert: number of encoder layers.", valid=COUNT)
    hidden: int | None = opt(None, "tinybert: hidden size (default: the teacher's).", valid=COUNT)
    heads: int | None = opt(None, "tinybert: attention heads (default: the teacher's).", valid=COUNT)
    intermediate: int | None = opt(None, "tinybert: feed-forward size (default: 4 x hidden).", valid=COUNT)
    init: str = opt(
        "teacher-layers", "tinybert initialisation: random, teacher-layers (copy embeddings and the mapped "
        "teacher layers; widths must match), prune (the mapped teacher layers pruned to --hidden/--heads/"
        "--intermediate, keeping the heads, neurons and hidden channels that matter most on the task's data) or "
        "pretrained:<hub id or folder> (e.g. a BERT-Tiny).")
    init_layers: str | None = opt(None, "teacher-layers and prune inits: comma-separated teacher layers to copy "
                                        "(default: the mapping's).")
    trim_vocab: bool = opt(False, "tinybert: keep only the vocabulary the training (and transfer) texts use, plus "
                                  "the special tokens (other words are spelled with the kept pieces, or [UNK]). "
                                  "Shrinks the embedding table.")
    trim_min_count: int = opt(1, "--trim-vocab: keep tokens seen at least N times.", valid=COUNT)
    prune_samples: int = opt(1024, "prune init: training rows the importance of heads, neurons and hidden channels "
                                   "is measured on.", valid=COUNT)
    recipe: Literal["prediction", "two-stage", "joint", "general"] = opt(
        "prediction", "prediction: logits only; two-stage: TinyBERT's intermediate-layer stage "
        "(--intermediate-epochs) then the prediction stage (--epochs); joint: all losses in one stage; general: "
        "task-agnostic distillation of the teacher's encoder (embeddings, hidden states, attention; no head) on "
        "the --unlabeled text for --epochs, a student any task then starts from with --init pretrained:OUT.")
    unlabeled: tuple[str, ...] | None = opt(
        None, "--recipe general: NAME=FILE (or FILE) of plain text to distil on (repeatable): .txt one text a line, "
              "or .csv/.tsv/.jsonl/.parquet with --unlabeled-column; --max-train-samples samples its rows.")
    unlabeled_column: str = opt("text", "--unlabeled .csv/.tsv/.jsonl/.parquet: the column holding the text.")
    intermediate_epochs: int = opt(3, "two-stage: epochs of the intermediate-layer stage.", valid=NATURAL)
    intermediate_lr: float | None = opt(None, "two-stage: learning rate of the intermediate stage (default: --lr).",
                                        valid=POSITIVE)
    intermediate_samples: int | None = opt(
        None, "two-stage: train the intermediate stage on a fixed random sample of N training (transfer) rows; the "
              "teacher runs in every step of that stage, so on a large transfer set this is where the time goes.",
        valid=COUNT)
    mapping: Literal["uniform", "last", "explicit", "mean", "learnable"] = opt(
        "uniform", "Layer mapping: uniform (every k-th layer), last (top layers), explicit (--layer-map), "
        "mean (mean of a block of layers) or learnable (softmax-weighted block).")
    layer_map: str | None = opt(None, "explicit mapping: one teacher layer per student layer, e.g. 2,4,6.")
    mapping_lr: float = opt(1e-2, "learnable mapping: learning rate of the layer weights.", valid=POSITIVE)
    hidden_loss: Literal["mse", "cosine"] = opt("mse", "Hidden-state loss (through a learned projection when widths differ).")
    attention_loss: Literal["mse", "kl"] = opt(
        "mse", "Attention loss: mse on masked pre-softmax scores (TinyBERT) or kl between attention distributions.")
    w_emb: float = opt(1.0, "Weight of the embedding-layer loss.", valid=NATURAL)
    w_hid: float = opt(1.0, "Weight of the hidden-state loss.", valid=NATURAL)
    w_att: float = opt(1.0, "Weight of the attention loss.", valid=NATURAL)
    w_pred: float = opt(1.0, "joint recipe: weight of the prediction-layer loss.", valid=NATURAL)
    qat: bool = opt(
        False, "Finish with quantization-aware fine-tuning (teacher still in the loss) that emulates the int8 "
        "scheme of `kdedge export --quantize qat` (tinybert students).")
    qat_epochs: int = opt(1, "--qat: epochs of quantization-aware fine-tuning.", valid=COUNT)
    qat_lr: float | None = opt(None, "--qat: learning rate (default: a fifth of --lr).", valid=POSITIVE)
    rep_ratio: float | None = opt(
        None, "Single ratio r instead of --w-emb/--w-hid/--w-att: 2r * (emb + hidden) + (2 - 2r) * attention.",
            valid=FRACTION)
    cache_dir: str | None = opt(None, "Where teacher logits and pruning importance are cached "
                                      "(default $KDEDGE_CACHE_DIR or ~/.cache/kdedge).")
    eval_file: tuple[str, ...] | None = opt(
        None, "NAME=FILE: a labelled file scored beside dev at every evaluation (the dev file's columns; e.g. text "
              "from where the model will run), with the teacher's score and the retention in metrics.json "
              "(repeatable).")
    select_on: str = opt("dev", "The set whose metric picks the best checkpoint: dev, or an --eval-file NAME.")

    def __post_init__(self) -> None:
        super().__post_init__()
        char_ngram_sizes(self.ngram_chars)  # a malformed --ngram-chars is one clear error when the config is made
        ngram_scope_names(self.ngram_scopes)


def char_ngram_sizes(value: str | None) -> list[int]:
    """--ngram-chars MIN-MAX as the list of sizes [MIN, ..., MAX]; [] for None."""
    if value is None:
        return []
    low, _, high = str(value).partition("-")
    if not (low.isdigit() and high.isdigit() and 1 <= int(low) <= int(high) <= MAX_CHAR_NGRAM):
        raise KdedgeError(f"--ngram-chars must be MIN-MAX with 1 <= MIN <= MAX <= {MAX_CHAR_NGRAM} (e.g. 3-5), not "
                          f"{value!r}")
    return list(range(int(low), int(high) + 1))


def ngram_scope_names(value: str | None) -> list[str]:
    """--ngram-scopes NAME,NAME as the list of names; [] for None."""
    names = [] if value is None else [n.strip() for n in str(value).split(",")]
    wrong = [n for n in names if n not in SCOPES]
    if wrong or len(set(names)) != len(names):
        raise KdedgeError(f"--ngram-scopes must be distinct names from {', '.join(SCOPES)}, separated by commas, not "
                          f"{value!r}")
    return names


@dataclass
class TuneConfig(DistillConfig):
    """`kdedge tune`: a distill recipe (every DistillConfig option, fixed unless --space varies it) plus the study."""

    out: str | None = opt(None, "Study folder: the Optuna storage (by default), every trial's student and bundle, "
                                "trials.csv/parquet, report.md, pareto.png and best/. Rerun the command to continue.",
                          required=True)
    space: str | None = opt(None, "YAML file of the options to search: OPTION: {low, high[, log, step]} or "
                                  "{choices: [...]}; `shape: {choices: [L-H-A-I, ...]}` sets layers, hidden, heads and "
                                  "intermediate together.", required=True)
    trials: int = opt(20, "The study's total number of trials (a rerun with a larger N runs only the missing ones).",
                      valid=COUNT)
    timeout: float | None = opt(None, "Stop starting trials after this many seconds (this run).", valid=POSITIVE)
    mode: Literal["budget", "pareto"] = opt(
        "budget", "budget: maximise retention, trials over --max-latency-ms/--max-size-mb/--min-speedup recorded as "
                  "infeasible; pareto: retention vs p50 latency (NSGA-II), the front kept.")
    backend: str = opt("ort-cpu", "The bench backend the bundles are timed on (an ONNX backend: ort-*, openvino-cpu).")
    preset: Literal["auto", "avx2", "avx512", "avx512_vnni", "arm64"] = opt(
        "auto", "The int8 preset every trial's bundle is exported with (auto: this CPU's).")
    max_latency_ms: float | None = opt(None, "budget: batch-1 p50 on --backend at most this.", valid=POSITIVE)
    max_size_mb: float | None = opt(None, "budget: the bundle's model.onnx at most this many MB.", valid=POSITIVE)
    min_speedup: float | None = opt(None, "budget: at least this many times faster than the int8 teacher on --backend "
                                          "(timed beside each trial's bundle).", valid=POSITIVE)
    pruner: Literal["median", "hyperband", "none"] = opt(
        "median", "Stop hopeless trials early on their dev metric at each evaluation (budget mode).")
    storage: str | None = opt(None, "Optuna storage URL (default: sqlite in --out); postgresql://user@host/db lets "
                                    "workers on many machines share one study.")
    study_name: str = opt("kdedge", "The study's name in the storage.")
    baseline: bool = opt(True, "Run the recipe as given (the hand-set one) as the first trial, for comparison.")
    threads: int | None = opt(1, "Intra-op threads when timing a bundle.", valid=COUNT)
    timing_runs: int = opt(50, "Timed batch-1 runs per bundle (after 5 untimed).", valid=COUNT)
    rounds: int = opt(3, "Each trial's bundle and the int8 teacher are timed back to back, each in a fresh process, "
                         "this many times in alternating order; each p50 is the median over rounds, and the speed-up "
                         "compares the two (a shared machine's speed drifts between trials).", valid=COUNT)


@dataclass
class ExportConfig(ModelDataOptions):
    model: str | None = opt(None, "Student folder (from `kdedge distill`).", required=True)
    out: str | None = opt(None, "Bundle folder to write.", required=True)
    quantize: Literal["none", "dynamic", "static", "qat"] = opt(
        "none", "none: fp32; dynamic: ONNX Runtime dynamic int8 (per-channel weights, LSTM included, embedding tables "
        "int8 per row); static: int8 QDQ with activations calibrated on training examples; qat: the int8 scheme a "
        "`distill --qat` student was trained for.")
    preset: Literal["auto", "avx2", "avx512", "avx512_vnni", "arm64"] = opt(
        "auto", "dynamic: the target CPU's int8 scheme (avx2 stores uint8 weights, the others int8); auto picks "
        "it from the CPU the export runs on (VNNI: avx512_vnni, AVX-512: avx512, ARM: arm64, else avx2).")
    exporter: Literal["auto", "optimum", "torch"] = opt(
        "auto", "Transformer students: optimum's ONNX exporter or torch.onnx (the same inputs, outputs, axes and "
        "config.json either way); auto: optimum when it is installed, else torch.")
    calibration_size: int = opt(128, "static, --keep-float auto: number of training examples used for calibration.",
                                valid=COUNT)
    keep_float: str = opt(
        "none", "dynamic: nodes left in float. none; auto: searched on --calibration-size training examples (the few "
        "MatMuls whose float precision removes most of int8's error on the logits; minutes for a base-size model); "
        "or comma-separated parts of node names.")
    optimize: bool = opt(False, "Fuse attention/LayerNorm/GELU with ONNX Runtime's transformer optimizer.")
    first_token: bool = opt(True, "Run the nodes after the last attention on the position the classifier reads "
                                  "only (the same logits, less work); --no-first-token keeps every position.")
    fp16: bool = opt(False, "Convert weights to float16 (for GPU targets; inputs and outputs stay as they are).")
    verify: int = opt(256, "Compare ONNX and PyTorch logits on N dev examples after export.", valid=NATURAL)
    tolerance: float = opt(1e-4, "fp32 exports: the largest logit difference accepted before the export is aborted.",
                           valid=NATURAL)
    opset: int = opt(18, "ONNX opset (18: the lowest optimum recommends for BERT-class exports).", valid=Range(13, 23))
    batch_size: int = opt(64, "Batch size for verification and dev evaluation (the dynamic int8 bundle is scored "
                              "one example at a time: its scores depend on the batch's other rows).", valid=COUNT)
    seed: int = opt(42, "Seed for choosing calibration examples.")
    overwrite: bool = opt(False, "Replace an existing bundle folder.")


@dataclass
class AugmentConfig(DataOptions):
    defaults: str = opt("auto", "Where the options neither --config nor a flag sets come from: small-data (a recipe "
                                "for a few thousand labelled rows, kdedge/defaults/), built-in (the defaults shown "
                                "here), or auto: small-data when the task has fewer than 10,000 labelled training "
                                "rows.")
    teacher: str | None = opt(None, "Teacher folder (from `kdedge teacher`) or hub id: labels the transfer set.",
                              required=True)
    out: str | None = opt(None, "Transfer-set folder to write (Parquet shards + manifest.json).", required=True)
    method: str = opt("replace,rules", "Comma-separated augmentation methods: generative, replace, rules; none "
                                       "for the rows alone (e.g. only --unlabeled text, labelled by the teacher).")
    variants: int = opt(4, "replace/rules: augmented variants per original example.", valid=COUNT)
    include_originals: bool = opt(True, "Keep the original training rows (with their gold labels) in the set.")
    # word replacement (TinyBERT)
    word_vectors: str | None = opt(None, "replace: GloVe/word2vec text file; words swap with their nearest neighbours.")
    mlm: str | None = opt(None, "replace: masked LM (hub id or folder) proposing replacements for single-piece words.")
    p_replace: float = opt(0.4, "replace: probability of replacing each word (TinyBERT: 0.4).", valid=FRACTION)
    top_k: int = opt(15, "replace: candidates per word (TinyBERT: K=15).", valid=COUNT)
    # rule-based (Tang et al. 2019)
    p_mask: float = opt(0.1, "rules: probability of masking each word.", valid=FRACTION)
    p_pos: float = opt(0.1, "rules: probability of swapping a word for another of the same part of speech.",
                       valid=FRACTION)
    p_ng: float = opt(0.25, "rules: probability of keeping only a random n-gram (n in 1..5) of the example.",
                      valid=FRACTION)
    mask_token: str = opt("[MASK]", "rules: the token a masked word becomes.")
    tagger: str = opt("auto", "rules: POS tagger: auto (spaCy en_core_web_md/sm when installed, else a fallback), "
                              "a spaCy model's package name or folder, or none (the heuristic tagger).")
    # generative
    generator: str | None = opt(None, "generative: causal LM to fine-tune and sample (hub id or folder), e.g. gpt2.")
    gguf_file: str | None = opt(None, "generative: GGUF file inside --generator to load (needs the gguf package).")
    label_conditioned: bool = opt(True, "generative: prefix each training text with its label, sample per label.")
    generator_epochs: float = opt(1.0, "generative: fine-tuning epochs of the generator (0: sample from it as is).",
                                  valid=NATURAL)
    generator_lr: float = opt(5e-5, "generative: fine-tuning learning rate.", valid=POSITIVE)
    generator_train_samples: int | None = opt(None, "generative: training rows used to fine-tune the generator.",
                                              valid=COUNT)
    generated_per_example: float = opt(1.0, "generative: samples per original example (the target count).",
                                       valid=NATURAL)
    sample_top_k: int = opt(50, "generative: top-k sampling.", valid=COUNT)
    sample_top_p: float = opt(0.95, "generative: nucleus (top-p) sampling.", valid=Range(0, 1, lo_open=True))
    sample_temperature: float = opt(1.0, "generative: sampling temperature.", valid=POSITIVE)
    min_new_tokens: int = opt(4, "generative: shortest sample, in tokens.", valid=NATURAL)
    max_new_tokens: int = opt(48, "generative: longest sample, in tokens.", valid=COUNT)
    generator_batch_size: int = opt(32, "generative: prompts per generation batch.", valid=COUNT)
    # the user's own text
    unlabeled: tuple[str, ...] | None = opt(
        None, "NAME=FILE (or FILE): unlabeled text from where the model will run, labelled by the teacher and added "
              "with source unlabeled:NAME (repeatable): .txt one example a line, or .csv/.tsv/.jsonl/.parquet with "
              "--unlabeled-column. With a --dev-file alone (no --train-file), it is all the training text there is.")
    unlabeled_column: str = opt("text", "--unlabeled .csv/.tsv/.jsonl/.parquet: the column holding the text.")
    unlabeled_pair_column: str | None = opt(None, "--unlabeled, pair tasks: the column holding the second text.")
    max_unlabeled: int | None = opt(None, "--unlabeled: keep at most N rows of it (variants included).", valid=COUNT)
    unlabeled_ratio: float | None = opt(
        None, "--unlabeled: keep at most R of its rows per row the task's own data gave the set (mixing ratio).",
        valid=POSITIVE)
    augment_unlabeled: bool = opt(False, "--unlabeled: vary its rows with --method as well, not only the task's.")
    eval_file: tuple[str, ...] | None = opt(
        None, "NAME=FILE: a labelled evaluation set (the dev file's columns) that must not leak into the set: its "
              "exact and near copies are removed, as dev's are (repeatable).")
    # cleaning
    min_words: int = opt(1, "Drop examples with fewer words.", valid=NATURAL)
    max_words: int = opt(200, "Drop examples with more words.", valid=COUNT)
    near_duplicate: float = opt(0.9, "Jaccard similarity (MinHash of word 3-grams) above which two examples are "
                                     "near duplicates; 1 disables near-duplicate removal.",
                                         valid=Range(0, 1, lo_open=True))
    # streaming and labelling
    shard_size: int = opt(2000, "Original examples per shard: each shard is augmented, cleaned, labelled and written "
                                "on its own, so memory stays flat and an interrupted run resumes at the next shard.",
                                    valid=COUNT)
    max_examples: int | None = opt(None, "Budget: stop once the transfer set holds this many rows.", valid=COUNT)
    batch_size: int = opt(128, "Teacher labelling batch size.", valid=COUNT)
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = opt(
        "auto", "Teacher inference precision: auto = fp16 on CUDA, fp32 on CPU (bf16 where the CPU has bfloat16 "
        "instructions).")
    seed: int = opt(42, "Seed of every random choice.")
    resume: bool = opt(False, "Continue an interrupted run at its next shard.")
    overwrite: bool = opt(False, "Replace an existing output folder.")

    def methods(self) -> list[str]:
        return [m.strip() for m in self.method.split(",") if m.strip() and m.strip() != "none"]


@dataclass
class BenchConfig(ModelDataOptions):
    bundle: tuple[str, ...] | None = opt(None, "A bundle from `kdedge export` (repeat the flag for several).")
    student: tuple[str, ...] | None = opt(None, "A student folder to time in PyTorch (repeatable).")
    device_report: tuple[str, ...] | None = opt(
        None, "A report from `kdedge-device-bench` on a target device (repeatable): its rows join this report, "
              "keyed by device, with retention against this teacher; it must be for these bundles and data.")
    teacher: str | None = opt(None, "The teacher folder: timed on the same backends, the base of retention and "
                              "speed-up (for the ort-* backends, exported to fp32 ONNX once and cached under "
                              "$KDEDGE_CACHE_DIR/teacher-onnx, default ~/.cache/kdedge).")
    backends: str = opt("torch-cpu,torch-cuda,ort-cpu,ort-cuda,ort-tensorrt,ort-openvino,openvino-cpu",
                        "Comma-separated backends; those unavailable here are reported with the reason.")
    batch_sizes: str = opt("1,8,32", "Comma-separated batch sizes.")
    seq_lens: str = opt("16,64,128", "Comma-separated lengths for padded-to-length inputs.")
    threads: int | None = opt(None, "Intra-op threads of each backend (default: the library's default).", valid=COUNT)
    warmup: int = opt(10, "Untimed runs before each measurement.", valid=NATURAL)
    min_runs: int = opt(30, "Timed runs per measurement, at least.", valid=COUNT)
    min_time: float = opt(1.0, "Seconds per measurement, at least (more runs until both are reached).", valid=NATURAL)
    max_runs: int = opt(2000, "Timed runs per measurement, at most.", valid=COUNT)
    rounds: int = opt(1, "Latency rounds: every model is timed again in a fresh process, the models interleaved in "
                         "alternating order; each figure is the median over rounds (steadier speed-ups on a shared "
                         "machine).", valid=COUNT)
    eval_batch_size: int = opt(64, "Batch size of the dev-set accuracy pass (dynamic int8 bundles: 1, since their "
                                   "scores depend on the batch's other rows; the row's eval_batch_size says).",
                               valid=COUNT)
    accuracy: bool = opt(True, "Measure the task metric on the dev set through each backend.")
    eval_file: tuple[str, ...] | None = opt(
        None, "NAME=FILE: a labelled file scored beside dev (the dev file's columns; e.g. text from where the model "
              "will run), with the metric and retention per set for every row (repeatable; --max-eval-samples "
              "applies to each).")
    min_retention: tuple[str, ...] | None = opt(
        None, "Gate: exit non-zero if a model's retention is below R: R for dev, NAME=R for an --eval-file set "
              "(repeatable).")
    max_p99_ms: float | None = opt(None, "Gate: exit non-zero if a p99 latency at batch 1 (real lengths) is above this.",
                                   valid=POSITIVE)
    out: str | None = opt(None, "Report folder to write (report.json, report.md, report.png).", required=True)
    overwrite: bool = opt(False, "Replace an existing report folder.")
    resume: bool = opt(False, "Continue an interrupted bench: the model-backend pairs (and rounds) it finished are "
                              "not timed again.")

    def int_list(self, name: str) -> list[int]:
        raw = getattr(self, name)
        try:
            values = [int(v) for v in str(raw).split(",") if v.strip()]
        except ValueError:
            values = []
        if not values or min(values) < 1:
            raise KdedgeError(f"--{name.replace('_', '-')} must be comma-separated positive integers, not {raw!r}")
        return values


def _base_type(tp: Any) -> Any:
    """The non-None member of Optional[X]; X otherwise."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0]
    return tp


def field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: _base_type(hints[f.name]) for f in dataclasses.fields(cls)}


def _coerce(cls: type, key: str, value: Any, source: str) -> Any:
    tp = field_types(cls)[key]
    if value is None:
        return None
    if typing.get_origin(tp) is tuple:  # a repeatable flag; YAML gives a list or one value
        return tuple(str(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
    if typing.get_origin(tp) is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise KdedgeError(f"{source}: '{key}' must be one of {', '.join(map(str, choices))}, not {value!r}")
        return value
    try:
        if tp is bool and not isinstance(value, bool):
            raise ValueError
        if tp is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return tp(value)
    except (TypeError, ValueError):
        raise KdedgeError(f"{source}: '{key}' must be a {tp.__name__}, not {value!r}") from None


def load_yaml(cls: type, path: str | Path) -> dict[str, Any]:
    """Read a YAML config whose keys mirror the flags (dashes or underscores); reject unknown keys."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as e:
        raise KdedgeError(f"cannot read config {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise KdedgeError(f"config {path}: not valid UTF-8 (byte 0x{e.object[e.start]:02x} at offset {e.start}); "
                          "save it as UTF-8") from None
    except yaml.YAMLError as e:  # PyYAML's own message spans several lines; one line names the place
        mark = getattr(e, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise KdedgeError(f"config {path}{where}: not valid YAML ({problem})") from None
    except RecursionError:  # PyYAML composes nodes recursively: a thousand nested [ or { are enough
        raise KdedgeError(f"config {path}: not valid YAML (nested too deeply)") from None
    except ValueError as e:  # a scalar PyYAML cannot convert, e.g. an integer of more than 4300 digits
        raise KdedgeError(f"config {path}: a value cannot be read ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(raw, dict):
        raise KdedgeError(f"config {path} must be a mapping of option: value")
    known = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name not in known:
            hint = difflib.get_close_matches(name, sorted(known), n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise KdedgeError(f"config {path}: unknown key '{shown(key)}'{suggestion}")  # a key may hold a line break
        values[name] = _coerce(cls, name, value, f"config {path}")
    return values


def build_config(cls: type, config_file: str | None = None, base: dict[str, Any] | None = None, **overrides: Any):
    """Defaults < `base` (a preset's values) < YAML file < explicit overrides (None means 'not given'). Checks
    required fields."""
    values = dict(base or {})
    values.update(load_yaml(cls, config_file) if config_file else {})
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = cls(**values)
    missing = [f.name for f in dataclasses.fields(cls) if f.metadata.get("required") and getattr(cfg, f.name) is None]
    if missing:
        flags = ", ".join("--" + m.replace("_", "-") for m in missing)
        raise KdedgeError(f"missing required option(s): {flags} (on the command line or in --config)")
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
