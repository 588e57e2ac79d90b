import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from kdedge.onnx.quantize import quantize_qat
from kdedge.quant.qat import (QATEmbedding, QATFirstTokenLinear, QATLinear, fake_quant_dynamic_uint8, fake_quant_weight,
                              prepare_qat, scheme_of, strip_qat)
from tests.conftest import INT8_GEMM_EXACT


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


def test_fake_quant_model_matches_onnxruntime_int8(tmp_path):
    torch.manual_seed(0)
    # Embedding -> LayerNorm as in BERT; the embedding table int8 per row, each Linear dynamic int8.
    model = torch.nn.Sequential(torch.nn.Embedding(50, 16), torch.nn.LayerNorm(16), torch.nn.Linear(16, 8),
                                torch.nn.GELU(), torch.nn.Linear(8, 3)).eval()
    with torch.no_grad():
        model[0].weight.mul_(3).add_(1)
    ids = torch.randint(0, 50, (4, 5))
    torch.onnx.export(model, (ids,), str(tmp_path / "m.onnx"), input_names=["ids"], output_names=["y"],
                      dynamic_axes={"ids": {0: "b"}}, dynamo=False, opset_version=17)
    quantize_qat(tmp_path / "m.onnx", tmp_path / "q.onnx")
    ops = {n.op_type for n in onnx.load(str(tmp_path / "q.onnx")).graph.node}
    assert {"MatMulInteger", "Gather"} <= ops and "DequantizeLinear" not in ops  # the table is not ORT's uint8 one
    tables = [i for i in onnx.load(str(tmp_path / "q.onnx")).graph.initializer if i.name.endswith("_int8")]
    assert [(list(t.dims), t.data_type) for t in tables] == [([50, 16], onnx.TensorProto.INT8)]  # rows int8
    int8 = ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"]).run(None, {"ids": ids.numpy()})[0]
    prepare_qat(model)
    assert [type(m) for m in model] == [QATEmbedding, torch.nn.LayerNorm, QATLinear, torch.nn.GELU, QATLinear]
    assert "first_token" not in scheme_of(model)  # no encoder layout: nothing ranged on the first token
    with torch.no_grad():
        fake = model(ids).numpy()
        float_ = strip_qat(model)(ids).numpy()
    assert [type(m) for m in model] == [torch.nn.Embedding, torch.nn.LayerNorm, torch.nn.Linear, torch.nn.GELU,
                                        torch.nn.Linear]
    if INT8_GEMM_EXACT:
        assert np.abs(fake - int8).max() < 1e-5  # the emulation is exact up to float accumulation order
        assert np.abs(float_ - int8).max() > 100 * np.abs(fake - int8).max()
    else:  # AVX2 without VNNI: ONNX Runtime's u8 x s8 kernel saturates its 16-bit sums (a known gap, see below)
        assert np.abs(fake - int8).max() < 0.2


@pytest.mark.parametrize("first_token", [True, False])
def test_the_last_layer_after_attention_is_ranged_on_the_first_token(first_token):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                                                     num_attention_heads=2, intermediate_size=32)).eval()
    prepare_qat(model, first_token=first_token)
    first, last = model.bert.encoder.layer
    after_attention = [last.attention.output.dense, last.intermediate.dense, last.output.dense]
    expected = QATFirstTokenLinear if first_token else QATLinear
    assert [type(m) for m in after_attention] == [expected] * 3
    assert type(last.attention.self.query) is QATLinear and type(first.output.dense) is QATLinear
    assert ("first_token" in scheme_of(model)) == first_token
    x = torch.randn(1, 6, 16)  # one sentence, as the bundle is scored
    x[:, 4] *= 40  # a large activation off the first token widens the whole tensor's range, not the first token's
    with torch.no_grad():
        out = last.attention.output.dense(x)
        one_row = QATLinear.forward(last.attention.output.dense, x[:, :1])  # what the one-row graph computes
        whole = QATLinear.forward(last.attention.output.dense, x)
    np.testing.assert_allclose(out[:, :1].numpy(), (one_row if first_token else whole[:, :1]).numpy(), atol=1e-6)
    assert not np.allclose(whole[:, :1].numpy(), one_row.numpy(), atol=1e-3)  # the two ranges differ here
    strip_qat(model)
    assert all(type(m) is torch.nn.Linear for m in after_attention)
