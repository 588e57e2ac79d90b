"""The command line end to end on 200 real SST-2 rows, with a tiny teacher built from a config."""

import os
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from kdedge.cli import main
from kdedge.outputs import read_json
from tests.conftest import GLUE_DIR


def test_teacher_then_distill_on_200_sst2_rows(tiny_teacher, glue_dir, glove_path, tmp_path):
    runner = CliRunner()
    common = ["--task", "sst2", "--data-dir", str(glue_dir), "--max-train-samples", "200", "--max-eval-samples", "100"]
    teacher_out = tmp_path / "teacher"
    result = runner.invoke(main, ["teacher", "--model", str(tiny_teacher), *common, "--epochs", "1",
                                  "--lr", "1e-3", "--out", str(teacher_out)])
    assert result.exit_code == 0, result.output
    for name in ("config.json", "model.safetensors", "tokenizer.json", "metrics.json", "manifest.json",
                 "train_log.jsonl"):
        assert (teacher_out / name).is_file(), name
    assert not (teacher_out / "checkpoint").exists()
    manifest = read_json(teacher_out / "manifest.json")
    assert manifest["inputs"]["train"]["rows"] == 200 and manifest["inputs"]["dev"]["rows"] == 100
    assert manifest["config"]["max_train_samples"] == 200 and "torch" in manifest["versions"]

    config = tmp_path / "student.yaml"
    config.write_text(f"task: sst2\nword-vectors: {glove_path}\nlstm-hidden: 16\nmlp-hidden: 16\nepochs: 2\n")
    student_out = tmp_path / "student"
    result = runner.invoke(main, ["distill", "--config", str(config), *common[2:], "--data-dir", str(glue_dir),
                                  "--teacher", str(teacher_out), "--epochs", "1", "--out", str(student_out)])
    assert result.exit_code == 0, result.output
    metrics = read_json(student_out / "metrics.json")
    assert metrics["steps"] == 4  # flag (1 epoch) beat the file (2 epochs): ceil(200 / 64) steps
    assert 0.0 <= metrics["dev"]["accuracy"] <= 1.0 and metrics["teacher_dev"]["accuracy"] > 0
    assert read_json(student_out / "student.json")["model"]["lstm_hidden"] == 16  # from the file

    # a second run into the same folder is refused without --overwrite, with a one-line error
    result = runner.invoke(main, ["distill", "--config", str(config), *common[2:], "--data-dir", str(glue_dir),
                                  "--teacher", str(teacher_out), "--out", str(student_out)])
    assert result.exit_code == 1
    assert "already exists; pass --overwrite" in result.output and "Traceback" not in result.output


def test_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: sst2\nepoch: 3\n")
    result = CliRunner().invoke(main, ["teacher", "--config", str(bad), "--out", str(tmp_path / "t")])
    assert result.exit_code == 1
    assert "unknown key 'epoch' (did you mean 'epochs'?)" in result.output


def test_every_option_has_help():
    for command in ("teacher", "distill"):
        result = CliRunner().invoke(main, [command, "--help"])
        assert result.exit_code == 0
        for line in ("--task", "--data-dir", "--max-train-samples", "--resume", "--overwrite", "--config"):
            assert line in result.output
    cmd = main.commands["distill"]
    assert all(p.help for p in cmd.params if p.name != "help")


def test_unreachable_hub_fails_at_once_naming_the_variables(tmp_path):
    """No retry loop: with the hub out of reach and no offline switch set, kdedge goes offline itself."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "KDEDGE_DATA_DIR", "HTTPS_PROXY", "https_proxy",
                        "ALL_PROXY", "all_proxy")}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf"), HF_HUB_CACHE=str(tmp_path / "hub"),
               HUGGINGFACE_HUB_CACHE=str(tmp_path / "hub"), HF_DATASETS_CACHE=str(tmp_path / "datasets"))
    for i, args in enumerate((["--model", "no-such-org/no-such-model"],  # GLUE from the dataset hub
                 ["--model", "no-such-org/no-such-model", "--data-dir", str(GLUE_DIR)])):  # the model from the hub
        proc = subprocess.run([sys.executable, "-m", "kdedge.cli", "teacher", "--task", "sst2", *args,
                               "--out", str(tmp_path / f"t{i}")], env=env, capture_output=True, text=True, timeout=300)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 1, output
        assert "Retry" not in output and "Traceback" not in output, output
        assert "The hub cannot be reached from here" in output, output
        assert ("KDEDGE_DATA_DIR" if "--data-dir" not in args else "HF_HUB_OFFLINE=1") in output, output


def test_commands_on_local_files_never_contact_the_hub(tiny_teacher, glue_dir, tmp_path, monkeypatch):
    from kdedge import hub
    from kdedge.config import DistillConfig, TeacherConfig, build_config

    local = build_config(DistillConfig, None, teacher=str(tiny_teacher), data_dir=str(glue_dir), out="o")
    assert hub.hub_sources(local) == []
    remote = build_config(TeacherConfig, None, model="org/model", task="sst2", out="o")
    monkeypatch.delenv("KDEDGE_DATA_DIR", raising=False)
    assert hub.hub_sources(remote) == ["org/model", "GLUE task sst2 from the dataset hub"]

    def no_network():
        raise AssertionError("the hub was contacted for a command on local files")

    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub, "hub_reachable", no_network)
    (tmp_path / "out").mkdir()
    result = CliRunner().invoke(main, ["distill", "--teacher", str(tiny_teacher), "--task", "sst2", "--data-dir",
                                       str(glue_dir), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "already exists" in result.output, result.output


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_the_tests_cannot_reach_the_network():
    """pyproject.toml's --allow-hosts: a connection off this machine fails the test that makes it, before any packet
    leaves (192.0.2.1 is TEST-NET-1, routed nowhere)."""
    from pytest_socket import SocketConnectBlockedError

    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("192.0.2.1", 443), timeout=1)
    with socket.socket() as server:  # this machine stays reachable: the HTTP server tests run on it
        server.bind(("127.0.0.1", 0))
        server.listen()
        socket.create_connection(server.getsockname(), timeout=1).close()


def test_teacher_under_bf16_is_refused_on_a_cpu_without_bfloat16(tiny_teacher, glue_dir, tmp_path, monkeypatch):
    """The issue's case from the command line: `kdedge teacher --mixed-precision bf16` on an AVX2 CPU stops with one
    line naming the flag and what to use instead (PyTorch would emulate bfloat16, slower than fp32), before a step."""
    from kdedge import training

    monkeypatch.setattr(training.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(training, "read_cpu", lambda: ("x86_64", {"avx2", "fma"}))
    out = tmp_path / "teacher"
    result = CliRunner().invoke(main, ["teacher", "--model", str(tiny_teacher), "--task", "sst2", "--data-dir",
                                       str(glue_dir), "--max-train-samples", "50", "--max-eval-samples", "20",
                                       "--mixed-precision", "bf16", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "--mixed-precision bf16" in result.output and "no bfloat16 instructions" in result.output, result.output
    assert "use 'no'" in result.output, result.output
    assert "Traceback" not in result.output, result.output
    assert list(tmp_path.iterdir()) == []  # no output folder, not even a partial one
