"""The int8 preset chosen from a CPU's flags (`--preset auto`), and the bench's warning when a bundle's preset
does not suit the CPU it is timed on."""

import json

import numpy as np
import pytest

from kdedge_runtime.cpu import preset_for, preset_mismatch

# flags as /proc/cpuinfo lists them on each kind of machine
EPYC_VNNI = {"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni"}
SKYLAKE_SP = {"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw"}
ALDER_LAKE = {"sse4_2", "avx", "avx2", "fma", "avx_vnni"}
HASWELL = {"sse4_2", "avx", "avx2", "fma"}
OLD_X86 = {"sse4_2"}
GRAVITON = {"fp", "asimd", "asimddp", "i8mm"}


@pytest.mark.parametrize("machine, flags, preset", [
    ("x86_64", EPYC_VNNI, "avx512_vnni"), ("x86_64", ALDER_LAKE, "avx512_vnni"), ("x86_64", SKYLAKE_SP, "avx512"),
    ("x86_64", HASWELL, "avx2"), ("x86_64", OLD_X86, "avx2"), ("aarch64", GRAVITON, "arm64"), ("arm64", set(), "arm64"),
])
def test_auto_picks_the_preset_of_the_cpu(machine, flags, preset):
    assert preset_for(machine, flags) == preset


def test_a_preset_that_does_not_suit_the_cpu_is_named_with_the_fix():
    assert preset_mismatch("avx512_vnni", "x86_64", EPYC_VNNI) is None
    assert preset_mismatch("arm64", "x86_64", EPYC_VNNI) is None  # the same int8-weight scheme
    slow = preset_mismatch("avx2", "x86_64", EPYC_VNNI)
    assert "uint8 weights" in slow and "runs slower" in slow and "--preset avx512_vnni" in slow
    risky = preset_mismatch("avx512_vnni", "x86_64", HASWELL)
    assert "may lose accuracy" in risky and "--preset avx2" in risky


def test_bilstm_follows_the_preset_weight_dtype(tiny_bilstm_student, glue_dir, tmp_path):
    """The head's weights follow the preset; the LSTMs' are int8 whatever it says (ONNX Runtime's
    DynamicQuantizeLSTM takes no other), with 7-bit ranges for a CPU without VNNI. The manifest says which."""
    import onnx
    from onnx import numpy_helper

    from tests.conftest import export_tiny

    for preset, weights in (("avx2", "uint8"), ("avx512_vnni", "int8")):
        bundle = export_tiny(tiny_bilstm_student, glue_dir, tmp_path / preset, quantize="dynamic", preset=preset)
        q = json.loads((bundle / "manifest.json").read_text())["quantization"]
        assert q["preset"] == preset and q["weights"].startswith(f"LSTMs int8, the rest {weights}, ")
        assert q["ops"].get("DynamicQuantizeLSTM") == 2 and q["reduce_range"] is (preset == "avx2")
        graph = onnx.load(str(bundle / "model.onnx")).graph
        initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        lstm = [initializers[n.input[i]] for n in graph.node if n.op_type == "DynamicQuantizeLSTM" for i in (1, 2)]
        head = [initializers[n.input[1]] for n in graph.node if n.op_type == "MatMulInteger"]
        assert lstm and all(w.dtype == np.int8 and np.abs(w).max() <= (64 if preset == "avx2" else 127) for w in lstm)
        assert head and {w.dtype.name for w in head} == {weights}


def test_auto_records_the_preset_and_the_cpu_it_was_chosen_for(tiny_tinybert_student, glue_dir, tmp_path, monkeypatch):
    from kdedge.onnx import bundle as bundle_module
    from tests.conftest import export_tiny

    monkeypatch.setattr(bundle_module, "read_cpu", lambda: ("x86_64", HASWELL))
    bundle = export_tiny(tiny_tinybert_student, glue_dir, tmp_path / "b", quantize="dynamic")
    q = json.loads((bundle / "manifest.json").read_text())["quantization"]
    assert q["preset"] == "avx2" and q["weights"].startswith("uint8")
    assert q["preset_chosen_for"] == {"machine": "x86_64", "flags": ["avx2"]}


def test_bench_warns_when_a_bundle_preset_does_not_fit_the_cpu(tiny_tinybert_student, glue_dir, tmp_path,
                                                               monkeypatch):
    from kdedge.bench import run as bench_run
    from kdedge.bench.run import run_bench
    from kdedge.config import BenchConfig, build_config
    from tests.conftest import export_tiny

    bundle = export_tiny(tiny_tinybert_student, glue_dir, tmp_path / "vnni", quantize="dynamic", preset="avx512_vnni")
    monkeypatch.setattr(bench_run, "read_cpu", lambda: ("x86_64", HASWELL))  # timed on an AVX2-only CPU
    out, _ = run_bench(build_config(BenchConfig, None, bundle=(str(bundle),), backends="ort-cpu",
                                    data_dir=str(glue_dir), max_eval_samples=20, batch_sizes="1", seq_lens="8",
                                    warmup=1, min_runs=3, min_time=0.0, out=str(tmp_path / "r")))
    report = json.loads((out / "report.json").read_text())
    assert len(report["warnings"]) == 1 and report["warnings"][0].startswith("vnni: int8 preset avx512_vnni")
    assert "re-export with --preset avx2" in (out / "report.md").read_text()
    monkeypatch.setattr(bench_run, "read_cpu", lambda: ("x86_64", EPYC_VNNI))  # the CPU it was made for
    out, _ = run_bench(build_config(BenchConfig, None, bundle=(str(bundle),), backends="ort-cpu",
                                    data_dir=str(glue_dir), max_eval_samples=20, batch_sizes="1", seq_lens="8",
                                    warmup=1, min_runs=3, min_time=0.0, out=str(tmp_path / "r2")))
    assert json.loads((out / "report.json").read_text())["warnings"] == []


@pytest.mark.parametrize("machine, cpuinfo, emulated, preset, identity", [
    ("aarch64", "processor\t: 0\nFeatures\t: fp asimd asimddp i8mm\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n",
     False, "arm64", "implementer 0x41 part 0xd0c"),
    ("aarch64", "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: avx2 fma\n", True, "arm64", None),  # qemu-user
    ("x86_64", "processor\t: 0\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\nstepping\t: 1\n"
     "flags\t\t: avx2 fma avx512f avx512_vnni\n", False, "avx512_vnni", "family 25 model 17 stepping 1"),
    ("x86_64", "processor\t: 0\ncpu family\t: 6\nmodel\t\t: 167\nmodel name\t: Intel(R) Xeon(R) Processor\n"
     "stepping\t: 1\nflags\t\t: avx2 hypervisor avx512_vnni amx_int8\n", False, "avx512_vnni",
     "family 6 model 167 stepping 1, virtual machine"),
])
def test_device_description_reads_the_cpu_and_names_emulation(machine, cpuinfo, emulated, preset, identity, tmp_path,
                                                               monkeypatch):
    from kdedge_runtime import cpu

    fake = tmp_path / "cpuinfo"
    fake.write_text(cpuinfo)
    real_path = cpu.Path
    monkeypatch.setattr(cpu, "Path", lambda p: fake if p == "/proc/cpuinfo" else real_path(p))
    monkeypatch.setattr(cpu.platform, "machine", lambda: machine)
    described = cpu.describe()
    assert (described["emulated"], described["int8_preset"]) == (emulated, preset)
    assert described["flags"]["asimddp"] == ("asimddp" in cpuinfo) and described["flags"]["avx2"] == ("avx2" in cpuinfo)
    assert ("emulated" in cpu.verdict(described)) == emulated
    # the model name alone does not tell two cloud CPUs apart
    assert described["identity"] == identity
    assert cpu.cpu_name(described) == "{}{}".format(described["model"], f" ({identity})" if identity else "")
    # a device report's CPU is untrusted JSON: any value prints, none raises
    assert cpu.cpu_name({"model": 7, "identity": ["x"]}) == "7 (['x'])" and cpu.cpu_name({}) == "None"
