"""The `kdedge` command line: parse flags and config files, then call the library. Nothing else lives here."""

from __future__ import annotations

import dataclasses
import functools
import os
import typing
from typing import Literal

import click

from kdedge import __version__
from kdedge.config import (AugmentConfig, BenchConfig, DistillConfig, ExportConfig, TeacherConfig, TuneConfig,
                           build_config, field_types)
from kdedge.errors import KdedgeError
from kdedge.hub import go_offline_if_unreachable, hub_sources
from kdedge.defaults import with_defaults
from kdedge.quiet import VERBOSE_ENV


def _click_type(tp):
    if typing.get_origin(tp) is Literal:
        return click.Choice([str(c) for c in typing.get_args(tp)])
    return {int: click.INT, float: click.FLOAT, str: click.STRING}[tp]


def config_options(cls, skip: tuple[str, ...] = (), defaults_for: str | None = None, **fixed):
    """Add one flag per config field (help from the field), plus --config; call the command with a built config.
    Fields in `skip` get no flag (their value comes from `fixed`). With `defaults_for` (a command name), the config is
    rebuilt on the preset its --defaults picks (kdedge/defaults/), and the choice is said on stderr."""

    def decorate(fn):
        types_ = field_types(cls)

        @functools.wraps(fn)
        def wrapper(config, **flags):
            flags = {k: (v or None) if isinstance(v, tuple) else v for k, v in flags.items()}  # () = not given
            try:
                cfg = build_config(cls, config, **flags, **fixed)
                if hub_sources(cfg):  # only then: a command on local files never contacts the hub
                    go_offline_if_unreachable()  # fail at once, not after a minute of retries, when it is out of reach
                if defaults_for:  # after that check: `--defaults auto` reads the task
                    cfg, said = with_defaults(cls, defaults_for, cfg, config, {**flags, **fixed})
                    if said:
                        _say(said, err=True)
                return fn(cfg)
            except KdedgeError as e:
                raise click.ClickException(str(e)) from None

        for f in reversed(dataclasses.fields(cls)):
            if f.name in skip:
                continue
            flag = "--" + f.name.replace("_", "-")
            tp = types_[f.name]
            shown = " [required]" if f.metadata.get("required") else (
                "" if f.default is None else f" [default: {f.default}]")
            help_ = f.metadata.get("help", "") + shown
            if tp is bool:
                wrapper = click.option(f"{flag}/--no-{flag[2:]}", f.name, default=None, help=help_)(wrapper)
            elif typing.get_origin(tp) is tuple:
                wrapper = click.option(flag, f.name, multiple=True, help=help_)(wrapper)
            else:
                wrapper = click.option(flag, f.name, type=_click_type(tp), default=None, help=help_)(wrapper)
        wrapper = click.option(
            "--config", type=click.Path(exists=True, dir_okay=False),
            help="YAML file whose keys mirror these flags; flags given here win.",
        )(wrapper)
        return wrapper

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="kdedge")
@click.option("--verbose", "-v", is_flag=True, help="Show the library warnings kdedge silences as known and harmless.")
def main(verbose: bool):
    """kdedge: fine-tune a teacher, distil it into a small student, export it to ONNX, benchmark it.

    Every command reads the previous stage's folder and writes its own, with a manifest.json.
    Offline: `source scripts/offline-env.sh`, or set HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE and HF_HUB_OFFLINE=1,
    and KDEDGE_DATA_DIR to a GLUE folder.
    """
    if verbose:
        os.environ[VERBOSE_ENV] = "1"  # an environment variable, so the bench's worker processes see it too


def _say(message: str, err: bool = False) -> None:
    """Print once per run, not once per process under `accelerate launch`."""
    from kdedge.processes import launch_state

    if launch_state().is_main_process:
        click.echo(message, err=err)


@main.command()
@config_options(TeacherConfig)
def teacher(cfg: TeacherConfig):
    """Fine-tune an encoder (hub id or folder) on a task; the best dev checkpoint becomes the teacher."""
    from kdedge.teacher import fine_tune_teacher

    _say(f"teacher written to {fine_tune_teacher(cfg)}")


@main.command()
@config_options(AugmentConfig, defaults_for="augment")
def augment(cfg: AugmentConfig):
    """Build a transfer set: the training rows plus generated (causal LM), word-replaced (masked LM or word
    vectors) and rule-based (mask, POS swap, n-gram) variants, cleaned (lengths, duplicates, dev leaks) and
    labelled by the teacher, as Parquet shards. `kdedge distill --transfer DIR` trains on it."""
    import json

    from kdedge.augment.run import augment_transfer_set

    out = augment_transfer_set(cfg)
    m = json.loads((out / "manifest.json").read_text())["metrics"]
    _say(f"transfer set written to {out}: {m['rows']} rows {m['rows_by_source']}, removed "
               f"{m['removed_by_filter']}, {m['examples_per_s']} examples/s")


@main.command()
@config_options(DistillConfig, defaults_for="distill")
def distill(cfg: DistillConfig):
    """Distil a teacher into a small student: a BiLSTM (Tang et al. 2019) or a TinyBERT-style transformer
    (prediction-layer, two-stage or joint recipes with intermediate-layer losses)."""
    from kdedge.distill.run import distill_student

    _say(f"student written to {distill_student(cfg)}")


@main.command()
@config_options(TuneConfig, defaults_for="distill")
def tune(cfg: TuneConfig):
    """Search the distillation recipe (--space) for the best int8 bundle on --backend: an Optuna study in which every
    trial distils, exports int8 and times the bundle in a bench worker. Budget mode maximises retention under
    --max-latency-ms/--max-size-mb/--min-speedup; pareto mode keeps the retention/latency front. Rerun to continue."""
    from kdedge.tune.run import tune as run_tune

    out = run_tune(cfg)
    click.echo((out / "report.md").read_text())
    click.echo(f"study written to {out} (trials.csv, report.md, pareto.png, best/)")


@main.command()
@config_options(ExportConfig)
def export(cfg: ExportConfig):
    """Export a student to an ONNX bundle (model.onnx, tokenizer, manifest.json), optionally int8 or fp16,
    verified against the PyTorch student on dev examples."""
    from kdedge.onnx.bundle import export_bundle

    out = export_bundle(cfg)
    import json

    m = json.loads((out / "manifest.json").read_text())
    parity = m["parity"]
    click.echo(f"bundle written to {out}: {m['precision']}, {m['files']['model.onnx']['bytes'] / 1e6:.2f} MB, "
               f"max |logit diff| {parity['max_abs_diff']:.2e} on {parity['examples']} dev examples, "
               f"dev {m['dev']['onnx']} (PyTorch {m['dev']['pytorch']})")


@main.command()
@config_options(BenchConfig)
def bench(cfg: BenchConfig):
    """Latency (p50/p90/p99, throughput) and dev accuracy of bundles, students and the teacher on each backend
    (torch-cpu/cuda, ONNX Runtime CPU/CUDA/TensorRT/OpenVINO), each in its own process; writes report.json,
    report.md and report.png. --min-retention and --max-p99-ms make it exit non-zero, naming the failing rows."""
    from kdedge.bench.run import run_bench

    out, failures = run_bench(cfg)
    click.echo((out / "report.md").read_text())
    click.echo(f"report written to {out}")
    if failures:
        raise click.ClickException("gates failed:\n  " + "\n  ".join(failures))


@main.command()
def doctor():
    """Which benchmark backends are usable here (and why not the others), CPU flags, GPU, versions."""
    from kdedge.bench.environment import doctor_report

    click.echo(doctor_report())


@main.command()
@click.option("--bundle", required=True, type=click.Path(), help="A bundle folder from `kdedge export`.")
@click.option("--pair", "pairs", multiple=True, help="Second sentence for pair tasks (once per text, in order).")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1), help="Texts per model call.")
@click.argument("texts", nargs=-1)
def predict(bundle, pairs, batch_size, texts):
    """Classify TEXTS with a bundle through the torch-free runtime (kdedge_runtime); one JSON line per text.
    With no TEXTS, classifies the lines of stdin (pair tasks: the two sentences separated by a tab). Text is read
    as UTF-8: bytes that are not (a Latin-1 terminal, say) are replaced by U+FFFD, in the text classified and in
    the text echoed."""
    import json
    import sys
    from dataclasses import asdict

    from kdedge_runtime import BundleError, Classifier
    from kdedge_runtime.classifier import valid_text

    texts, pairs = tuple(map(valid_text, texts)), tuple(map(valid_text, pairs))  # argv's bytes that are not UTF-8

    try:
        classifier = Classifier(bundle)
    except BundleError as e:
        raise click.ClickException(str(e)) from None
    task = classifier.manifest["task"]["name"]
    if texts:
        _check_pair_flags(classifier.is_pair, task, len(texts), len(pairs))
        chunks = [(list(texts), list(pairs) or None)]
    elif pairs:
        raise click.UsageError("--pair goes with TEXTS; on stdin, put the two sentences on one line, tab-separated")
    elif sys.stdin.isatty():
        raise click.UsageError("give TEXTS, or pipe one text per line into stdin")
    else:
        chunks = _stdin_chunks(classifier.is_pair, task)
    for chunk_texts, chunk_pairs in chunks:
        predictions = classifier.predict(chunk_texts, chunk_pairs, batch_size=batch_size)
        for i, p in enumerate(predictions):
            given = {"text": chunk_texts[i], **({"pair": chunk_pairs[i]} if chunk_pairs else {})}
            click.echo(json.dumps({**given, **asdict(p)}, ensure_ascii=False))


def _check_pair_flags(is_pair: bool, task: str, n_texts: int, n_pairs: int) -> None:
    if is_pair and n_pairs != n_texts:
        raise click.UsageError(f"this bundle's task ({task}) classifies sentence pairs: give --pair once per text "
                               f"({n_texts} texts, {n_pairs} --pair)")
    if not is_pair and n_pairs:
        raise click.UsageError(f"this bundle's task ({task}) classifies single sentences: drop --pair")


def _stdin_chunks(is_pair: bool, task: str, size: int = 1024):
    """stdin's lines in chunks (texts, pairs), so long streams are answered as they are read."""
    import io
    import sys

    texts, pairs = [], []
    buffer = getattr(sys.stdin, "buffer", None)  # read as UTF-8, bytes that are not replaced (as argv's are)
    lines = io.TextIOWrapper(buffer, encoding="utf-8", errors="replace") if buffer is not None else sys.stdin
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if is_pair:
            if "\t" not in line:
                raise click.ClickException(f"stdin line {number}: this bundle's task ({task}) classifies sentence "
                                           "pairs: give the two sentences separated by a tab")
            line, pair = line.split("\t", 1)
            pairs.append(pair)
        texts.append(line)
        if len(texts) == size:
            yield texts, pairs or None
            texts, pairs = [], []
    if texts:
        yield texts, pairs or None


_RUN_ONLY = ("out", "resume", "overwrite", "max_eval_samples", "cache_dir", "eval_steps", "save_steps", "log_steps",
             "mixed_precision", "eval_batch_size", "patience")


@main.command()
@config_options(DistillConfig, skip=_RUN_ONLY, defaults_for="distill", out="-")
def inspect(cfg: DistillConfig):
    """Print what a distillation config resolves to: the layer pairs, projections and loss terms of each stage.
    Takes `kdedge distill`'s --config and its options but those of the run itself, which do not change the plan
    (a --config may still hold them). With --init prune it measures the teacher on the task's data and shows
    what would be kept."""
    from kdedge.distill.inspect import describe_distillation

    click.echo(describe_distillation(cfg))


if __name__ == "__main__":
    main()
