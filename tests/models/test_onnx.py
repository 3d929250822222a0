"""ONNX export of CodeFormer with the fidelity weight as a graph input (official bug #252).

Exported with torch's default (dynamo) exporter, which needs onnxscript, through the
``ImageOnly`` wrapper; the batch axis of ``x`` and ``w`` is dynamic.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidrestore.models.seeded import seeded_faces
from vidrestore.models.wrappers import ImageOnly

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from vidrestore.models import build_model
    from vidrestore.models.seeded import fill_seeded

    net = fill_seeded(build_model("codeformer", tiny=True))
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.onnx.export(
        ImageOnly(net), (seeded_faces(2, 64), torch.tensor([0.5, 0.5])),
        input_names=["x", "w"], output_names=["image"], dynamo=True,
        dynamic_shapes=(({0: batch}, {0: batch}),), verbose=False,
    )
    path = tmp_path_factory.mktemp("onnx") / "codeformer_tiny.onnx"
    program.save(str(path))
    return net, ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.slow
def test_onnx_graph_takes_w_as_an_input_with_a_batch_axis(exported):
    _, session = exported
    inputs = {i.name: i.shape for i in session.get_inputs()}
    assert list(inputs) == ["x", "w"]
    assert isinstance(inputs["x"][0], str) and inputs["x"][1:] == [3, 64, 64]
    assert len(inputs["w"]) == 1 and isinstance(inputs["w"][0], str)


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_matches_eager_at_two_fidelity_weights(exported, batch):
    net, session = exported
    x = seeded_faces(batch, 64, seed=7)
    results = {}
    for w in (0.0, 0.8):
        got = session.run(None, {"x": x.numpy(), "w": np.full((batch,), w, np.float32)})[0]
        with torch.no_grad():
            expected = net(x, w).image.numpy()
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
        results[w] = got
    assert np.abs(results[0.0] - results[0.8]).max() > 1e-2  # w really reaches the graph


@pytest.mark.slow
def test_onnx_per_sample_w(exported):
    net, session = exported
    x = seeded_faces(2, 64, seed=8)
    w = np.array([0.0, 1.0], np.float32)
    got = session.run(None, {"x": x.numpy(), "w": w})[0]
    with torch.no_grad():
        expected = net(x, torch.from_numpy(w)).image.numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
