import numpy as np
import onnxruntime as ort
import torch

from kdedge.quant.qat import QATLinear, fake_quant_dynamic_uint8, fake_quant_weight, prepare_qat, quantize_qat_onnx, strip_qat


def test_weight_fake_quant_is_symmetric_per_channel_int8():
    w = torch.tensor([[0.5, -1.0, 0.25], [2.0, 0.1, -0.3]])
    q = fake_quant_weight(w)
    scales = torch.tensor([1.0, 2.0]) / 127
    torch.testing.assert_close(q, torch.round(w / scales[:, None]).clamp(-127, 127) * scales[:, None])
    assert q[0, 1] == -1.0 and q[1, 0] == 2.0  # each row's extreme maps to +-127 exactly


def test_activation_fake_quant_follows_dynamic_uint8_and_passes_gradients():
    x = torch.tensor([-1.0, 0.31, 2.0, 0.77], requires_grad=True)
    q = fake_quant_dynamic_uint8(x)
    scale = 3.0 / 255
    zero = round(1.0 / scale)
    expected = (torch.clamp(torch.round(x.detach() / scale) + zero, 0, 255) - zero) * scale
    torch.testing.assert_close(q.detach(), expected)
    q.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones(4))  # straight-through inside the range


def test_fake_quant_linear_matches_onnxruntime_int8(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.GELU(), torch.nn.Linear(8, 3)).eval()
    x = torch.randn(4, 5, 16) * 3 + 1
    torch.onnx.export(model, (x,), str(tmp_path / "m.onnx"), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "b"}}, dynamo=False, opset_version=17)
    quantize_qat_onnx(tmp_path / "m.onnx", tmp_path / "q.onnx")
    int8 = ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    prepare_qat(model)
    assert all(type(m) is QATLinear for m in (model[0], model[2]))
    with torch.no_grad():
        fake = model(x).numpy()
        float_ = strip_qat(model)(x).numpy()
    assert np.abs(fake - int8).max() < 1e-5  # the emulation is exact up to float accumulation order
    assert np.abs(float_ - int8).max() > 100 * np.abs(fake - int8).max()
