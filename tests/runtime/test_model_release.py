"""Every released model folder: model.json agrees with the real ONNX file and the card."""

from __future__ import annotations

import re
from pathlib import Path

import onnx
import pytest

from service.core.contract import load_spec, sha256_file
from service.runtime.artifacts import BUNDLED_MODELS_DIR, installed_models

RELEASED = sorted(p for p in BUNDLED_MODELS_DIR.iterdir() if (p / "model.json").is_file())


def test_at_least_one_model_is_released() -> None:
    assert RELEASED, "no model under models/: the service has nothing to serve"


@pytest.mark.parametrize("folder", RELEASED, ids=[p.name for p in RELEASED])
def test_model_json_matches_the_onnx_file(folder: Path) -> None:
    spec = load_spec(folder)
    assert folder.name == spec.id, "the folder must be named <name>-<version>"
    assert "-" not in spec.name
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?", spec.version)
    onnx_path = folder / spec.onnx.file
    assert spec.onnx.sha256 == sha256_file(onnx_path)
    proto = onnx.load(str(onnx_path))
    onnx.checker.check_model(proto)
    assert (
        max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == spec.onnx.opset
    )
    assert spec.onnx.opset >= 17
    (inp,) = proto.graph.input
    (out,) = proto.graph.output
    assert inp.name == spec.onnx.input_name and out.name == spec.onnx.output_name
    in_dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    out_dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    assert in_dims[1] == 3 and out_dims[1] == 1
    # dynamic batch and spatial size
    assert all(isinstance(d, str) for d in (in_dims[0], in_dims[2], in_dims[3]))
    assert spec.input.size % spec.input.multiple_of == 0
    assert 0 < spec.output.threshold < 1


@pytest.mark.parametrize("folder", RELEASED, ids=[p.name for p in RELEASED])
def test_model_card_states_the_measured_metrics_and_terms(folder: Path) -> None:
    spec = load_spec(folder)
    card = (folder / "MODEL_CARD.md").read_text()
    assert "CC BY-NC" in card and "research" in card.lower()
    pooled = spec.metrics.get("pooled_dice")
    assert pooled is not None, "model.json must carry its validation metrics"
    assert f"{pooled:.4f}" in card, "the card must quote the pooled Dice of model.json"


def test_default_model_is_the_highest_version() -> None:
    models = installed_models([BUNDLED_MODELS_DIR])
    versions = [spec.version for spec, _ in models]
    assert versions == sorted(
        versions, key=lambda v: tuple(int(x) for x in v.split("-")[0].split(".")), reverse=True
    )
