import pytest

from kdedge.config import DistillConfig, TeacherConfig, build_config
from kdedge.errors import KdedgeError


def test_flags_override_file_and_dashes_are_accepted(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("task: sst2\nout: from-file\nmax-train-samples: 100\nlr: 1e-4\n")
    cfg = build_config(TeacherConfig, str(path), out="from-flag", lr=None)
    assert cfg.out == "from-flag" and cfg.max_train_samples == 100 and cfg.lr == pytest.approx(1e-4)


def test_unknown_key_is_named_with_a_suggestion(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("task: sst2\nout: x\nteacher: t\nsoft_los: kl\n")
    with pytest.raises(KdedgeError, match=r"unknown key 'soft_los' \(did you mean 'soft_loss'\?\)"):
        build_config(DistillConfig, str(path))


def test_bad_types_and_choices_are_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("out: x\nepochs: three\n")
    with pytest.raises(KdedgeError, match="'epochs' must be a int"):
        build_config(TeacherConfig, str(path))
    path.write_text("out: x\nteacher: t\nsoft_loss: cosine\n")
    with pytest.raises(KdedgeError, match="'soft_loss' must be one of mse, kl"):
        build_config(DistillConfig, str(path))


def test_missing_required_option():
    with pytest.raises(KdedgeError, match="--out"):
        build_config(TeacherConfig, None, task="sst2")


def test_shipped_recipes_load():
    from pathlib import Path

    configs = Path(__file__).resolve().parents[1] / "configs"
    for path in configs.glob("*.yaml"):
        if "teacher" in path.name:
            cfg = build_config(TeacherConfig, str(path), out="x")
        else:
            cfg = build_config(DistillConfig, str(path), out="x", teacher="t")
        # glue-* recipes serve several tasks: the task comes from --task
        assert cfg.task == (None if path.name.startswith("glue-") else "sst2"), path.name
