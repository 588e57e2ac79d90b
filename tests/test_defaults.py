"""`--defaults`: the small-data preset is chosen for tasks under 10,000 labelled rows (its assisted form when the run
has a teacher assistant), refused by name when unknown, and always below --config and the flags."""

import click
import pytest
from click.testing import CliRunner

from kdedge.cli import config_options
from kdedge.config import AugmentConfig, DistillConfig, TuneConfig, load_yaml
from kdedge.errors import KdedgeError
from kdedge.defaults import PRESETS_DIR, SMALL_DATA_ROWS, build_with_defaults, preset_names


def _task(tmp_path, rows: int):
    path = tmp_path / f"train-{rows}.tsv"
    path.write_text("text\tlabel\n" + "".join(f"row {i} reads {'well' if i % 2 else 'badly'}\t{i % 2}\n"
                                                  for i in range(rows)))
    return dict(train_file=str(path), dev_file=str(path), teacher="t", out=str(tmp_path / "out"))


def test_small_task_takes_the_small_data_preset(tmp_path):
    cfg, said = build_with_defaults(DistillConfig, "distill", **_task(tmp_path, 40))
    preset = load_yaml(DistillConfig, PRESETS_DIR / "distill-small-data.yaml")
    assert cfg.defaults == "small-data"
    assert {k: getattr(cfg, k) for k in preset} == preset
    assert (cfg.student, cfg.layers, cfg.hidden, cfg.recipe, cfg.trim_vocab) == ("tinybert", 3, 256, "two-stage", True)
    assert "40 labelled training rows, fewer than 10,000" in said and "--defaults built-in" in said
    assert "as --intermediate-teacher, the small-data-assisted preset's student is more accurate" in said


def test_small_task_with_a_teacher_assistant_takes_the_assisted_preset(tmp_path):
    cfg, said = build_with_defaults(DistillConfig, "distill", **_task(tmp_path, 40), intermediate_teacher="a")
    preset = load_yaml(DistillConfig, PRESETS_DIR / "distill-small-data-assisted.yaml")
    assert cfg.defaults == "small-data-assisted"
    assert {k: getattr(cfg, k) for k in preset} == preset
    assert (cfg.layers, cfg.hidden, cfg.heads, cfg.intermediate_epochs, cfg.epochs, cfg.trim_min_count) == \
        (4, 224, None, 3, 3, 15)  # heads follow the assistant's width (students.tinybert.student_shape)
    assert "fewer than 10,000, and an --intermediate-teacher; distill-small-data-assisted.yaml" in said
    # a large task keeps the built-in defaults, assistant or not
    cfg, said = build_with_defaults(DistillConfig, "distill", **_task(tmp_path, SMALL_DATA_ROWS), intermediate_teacher="a")
    assert (cfg.defaults, said) == ("built-in", None)


def test_an_assistant_named_in_the_config_file_counts(tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text("intermediate-teacher: runs/assistant\nepochs: 2\n")
    cfg, _ = build_with_defaults(DistillConfig, "distill", str(config), **_task(tmp_path, 40))
    assert (cfg.defaults, cfg.layers, cfg.epochs) == ("small-data-assisted", 4, 2)


def test_large_task_keeps_the_built_in_defaults_even_when_sampled(tmp_path):
    task = _task(tmp_path, SMALL_DATA_ROWS)
    cfg, said = build_with_defaults(DistillConfig, "distill", **task, max_train_samples=100)
    assert (cfg.defaults, said) == ("built-in", None)
    assert (cfg.student, cfg.layers, cfg.recipe) == ("bilstm", 4, "prediction")  # DistillConfig's own defaults


def test_flags_and_config_file_win_over_the_preset(tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text("epochs: 5\nhidden: 192\n")
    cfg, _ = build_with_defaults(DistillConfig, "distill", str(config), **_task(tmp_path, 40), layers=2,
                                 hidden=128)
    assert (cfg.defaults, cfg.layers, cfg.hidden, cfg.epochs, cfg.trim_min_count) == ("small-data", 2, 128, 5, 5)


@pytest.mark.parametrize("given", [{"student": "bilstm"}, {"student": "ngram"}, {"recipe": "general"},
                                   {"recipe": "prediction"}, {"recipe": "joint"}])
def test_auto_leaves_other_students_and_recipes_alone(tmp_path, given):
    cfg, said = build_with_defaults(DistillConfig, "distill", **_task(tmp_path, 40), **given)
    assert (cfg.defaults, said) == ("built-in", None)
    assert cfg.lr is None and cfg.epochs == 10  # not the preset's 3e-4 and 2
    assert cfg.intermediate_samples is None  # the preset's 20,000 would be refused outside the two-stage recipe


def test_a_prediction_run_on_a_small_task_is_not_refused_for_the_presets_options(tmp_path):
    """Distilling a small pretrained model on the teacher's labels alone (a teacher assistant) on a small task: the
    preset's intermediate-stage budget used to be refused as if the user had given --intermediate-samples."""
    from kdedge.distill.run import _validate

    cfg, _ = build_with_defaults(DistillConfig, "distill", **_task(tmp_path, 40), student="tinybert",
                                 init="pretrained:some/model", recipe="prediction")
    assert _validate(cfg).recipe == "prediction"


def test_asked_for_by_name_and_refused_when_unknown(tmp_path):
    cfg, said = build_with_defaults(DistillConfig, "distill", **_task(tmp_path, SMALL_DATA_ROWS),
                                    defaults="small-data")
    assert cfg.layers == 3 and "asked for with --defaults" in said
    cfg, said = build_with_defaults(DistillConfig, "distill", **_task(tmp_path, 40), defaults="built-in")
    assert (cfg.layers, cfg.defaults, said) == (4, "built-in", None)
    with pytest.raises(KdedgeError, match=r"--defaults tiny: kdedge distill has no such option set \(known: auto, "
                                          r"built-in, small-data, small-data-assisted\)"):
        build_with_defaults(DistillConfig, "distill", **_task(tmp_path, 40), defaults="tiny")


def test_augment_and_tune_presets(tmp_path):
    cfg, said = build_with_defaults(AugmentConfig, "augment", **_task(tmp_path, 40))
    assert (cfg.defaults, cfg.variants, cfg.method) == ("small-data", 8, "replace,rules")
    assert "intermediate-teacher" not in said  # augment has no such option to suggest
    cfg, _ = build_with_defaults(TuneConfig, "distill", **_task(tmp_path, 40), space="s.yaml")
    assert (cfg.defaults, cfg.layers, cfg.preset) == ("small-data", 3, "auto")  # tune's int8 preset untouched


def test_every_preset_file_reads_as_its_command_config():
    assert preset_names("distill") == ["small-data", "small-data-assisted"]
    assert preset_names("augment") == ["small-data"]
    for command, cls in (("distill", DistillConfig), ("augment", AugmentConfig)):
        for name in preset_names(command):
            assert load_yaml(cls, PRESETS_DIR / f"{command}-{name}.yaml")  # unknown keys would raise


def test_command_line_says_which_preset_on_stderr(tmp_path):
    seen = []

    @click.command()
    @config_options(DistillConfig, defaults_for="distill")
    def cmd(cfg):
        seen.append(cfg)

    task = _task(tmp_path, 40)
    args = [a for k, v in task.items() for a in (f"--{k.replace('_', '-')}", v)]
    result = CliRunner().invoke(cmd, [*args, "--epochs", "7"])
    assert result.exit_code == 0, result.output
    assert "options from the small-data preset (40 labelled training rows" in result.stderr
    assert (seen[0].epochs, seen[0].layers) == (7, 3)
    result = CliRunner().invoke(cmd, [*args, "--defaults", "nope"])
    assert result.exit_code == 1 and "--defaults nope: kdedge distill has no such option set" in result.stderr


def test_data_it_cannot_read_leaves_the_command_its_own_error(tmp_path, monkeypatch):
    """auto reads the task before the command does: data it cannot read (here GLUE offline with no data folder) keeps
    the built-in defaults and leaves the error to the command, after the command's own checks."""
    monkeypatch.delenv("KDEDGE_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg, said = build_with_defaults(DistillConfig, "distill", task="sst2", teacher="t", out=str(tmp_path / "o"))
    assert (cfg.defaults, said) == ("built-in", None)
    task = _task(tmp_path, 40)
    task["train_file"] = str(tmp_path / "missing.tsv")
    assert build_with_defaults(DistillConfig, "distill", **task)[0].defaults == "built-in"
