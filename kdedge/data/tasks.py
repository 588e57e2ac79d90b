"""The task registry: what a task's data looks like and how it is scored.

A GLUE task knows its local TSV layout (the files GLUE's download script writes), its dataset-hub
name, its label set and its metrics. A custom task is built from the user's file options.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LocalLayout:
    """A GLUE TSV file: columns by header name, or by position when the file has no header (CoLA)."""

    folder: str
    text: str | int
    label: str | int
    text_pair: str | int | None = None
    header: bool = True
    dev_file: str = "dev.tsv"


@dataclass(frozen=True)
class Task:
    name: str
    label_names: tuple[str, ...]  # empty for regression
    metrics: tuple[str, ...]  # the first is the one used to pick the best checkpoint
    is_pair: bool = False
    # Raw label strings as they appear in files, in class-id order (defaults to label_names).
    label_values: tuple[str, ...] = ()
    local: LocalLayout | None = None
    hub: tuple[str, str] | None = None  # (dataset, config) on the dataset hub
    hub_columns: tuple[str, ...] = ()  # text, [text_pair]
    hub_dev_split: str = "validation"
    aliases: tuple[str, ...] = field(default=())

    @property
    def is_regression(self) -> bool:
        return not self.label_names

    @property
    def num_labels(self) -> int:
        return len(self.label_names) or 1

    @property
    def main_metric(self) -> str:
        return self.metrics[0]

    @property
    def raw_label_values(self) -> tuple[str, ...]:
        return self.label_values or self.label_names

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "label_names": list(self.label_names),
            "metrics": list(self.metrics),
            "is_pair": self.is_pair,
            "is_regression": self.is_regression,
        }


def _glue(name, folder, text, label, pair=None, *, labels, values=(), metrics, hub_cols, header=True,
          dev="dev.tsv", hub_dev="validation", aliases=()):
    return Task(
        name=name,
        label_names=labels,
        label_values=values,
        metrics=metrics,
        is_pair=pair is not None,
        local=LocalLayout(folder, text, label, pair, header=header, dev_file=dev),
        hub=("nyu-mll/glue", name),
        hub_columns=hub_cols,
        hub_dev_split=hub_dev,
        aliases=aliases,
    )


GLUE_TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        _glue("sst2", "SST-2", "sentence", "label", labels=("negative", "positive"), values=("0", "1"),
              metrics=("accuracy",), hub_cols=("sentence",), aliases=("sst-2",)),
        # CoLA ships without a header: source, label, original mark, sentence.
        _glue("cola", "CoLA", 3, 1, labels=("unacceptable", "acceptable"), values=("0", "1"),
              metrics=("matthews_correlation", "accuracy"), hub_cols=("sentence",), header=False),
        _glue("mrpc", "MRPC", "#1 String", "Quality", "#2 String", labels=("not_equivalent", "equivalent"),
              values=("0", "1"), metrics=("f1", "accuracy"), hub_cols=("sentence1", "sentence2")),
        _glue("stsb", "STS-B", "sentence1", "score", "sentence2", labels=(),
              metrics=("pearson", "spearmanr"), hub_cols=("sentence1", "sentence2"), aliases=("sts-b",)),
        _glue("qqp", "QQP", "question1", "is_duplicate", "question2", labels=("not_duplicate", "duplicate"),
              values=("0", "1"), metrics=("f1", "accuracy"), hub_cols=("question1", "question2")),
        _glue("mnli", "MNLI", "sentence1", "gold_label", "sentence2",
              labels=("entailment", "neutral", "contradiction"), metrics=("accuracy",),
              hub_cols=("premise", "hypothesis"), dev="dev_matched.tsv", hub_dev="validation_matched"),
        _glue("qnli", "QNLI", "question", "label", "sentence", labels=("entailment", "not_entailment"),
              metrics=("accuracy",), hub_cols=("question", "sentence")),
        _glue("rte", "RTE", "sentence1", "label", "sentence2", labels=("entailment", "not_entailment"),
              metrics=("accuracy",), hub_cols=("sentence1", "sentence2")),
        _glue("wnli", "WNLI", "sentence1", "label", "sentence2", labels=("not_entailment", "entailment"),
              values=("0", "1"), metrics=("accuracy",), hub_cols=("sentence1", "sentence2")),
    ]
}

_BY_ALIAS = {alias: t for t in GLUE_TASKS.values() for alias in (t.name, *t.aliases, t.local.folder.lower())}


def get_glue_task(name: str) -> Task | None:
    return _BY_ALIAS.get(name.lower())


def custom_task(name: str, *, is_pair: bool, label_names: tuple[str, ...], regression: bool) -> Task:
    if regression:
        return Task(name=name, label_names=(), metrics=("pearson", "spearmanr"), is_pair=is_pair)
    metrics = ("accuracy", "f1") if len(label_names) == 2 else ("accuracy", "macro_f1")
    return Task(name=name, label_names=label_names, metrics=metrics, is_pair=is_pair)


def file_layout(task: Task, text_column: str | None = None, text_pair_column: str | None = None,
                label_column: str | None = None) -> dict:
    """How a labelled file of this task is read, for readers without kdedge (the device bench): its columns (text,
    [second text], label; names, or positions in a file without a header), whether it has a header, and the raw
    label values in class-id order (None for regression). A GLUE task's layout is its own; a custom task's, the
    columns it was trained with."""
    if task.local is not None:
        layout = task.local
        columns = [layout.text] + ([layout.text_pair] if layout.text_pair is not None else []) + [layout.label]
        header = layout.header
    else:
        columns = [text_column] + ([text_pair_column] if text_pair_column else []) + [label_column]
        header = True
    return {"columns": columns, "header": header,
            "label_values": None if task.is_regression else list(task.raw_label_values)}
