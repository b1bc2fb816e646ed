"""Rebuild a trainable PyTorch checkpoint from a released ONNX model (fp32 or int8 QDQ).

A released model folder holds only ONNX; its training checkpoint may be gone (run
folders are not committed). ``torch.onnx.export`` folds every BatchNorm into the
convolution before it, so the ONNX holds, per convolution, a fused weight ``W`` and
bias ``b``. This module puts them back into a ``WoundNet`` so that training can go on
from the released weights (``model.init_checkpoint``):

- each convolution gets ``W`` (dequantized when the model is int8);
- its BatchNorm is set so that, in eval mode, it adds ``b`` and nothing else, with
  running statistics equal to the statistics of its input measured on real photos:
  ``mean = m``, ``var = v``, ``gamma = sqrt(v + eps)``, ``beta = m + b``. In eval mode
  the network computes exactly the ONNX function; in train mode batch statistics
  replace ``m`` and ``v`` and the layer stays close to it.

``python -m training.recover models/ulcerseg-1.2.0 --out FILE [--data DATASET_ROOT]``
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
import typer
from onnx import numpy_helper
from torch import nn

from service.core.contract import ModelSpec, load_spec, preprocess
from training.config import Config, DataConfig, ModelConfig
from training.data import read_rgb, split_pairs
from training.train import build_model


def _dequantize(tensor: np.ndarray, scale: np.ndarray, zero: np.ndarray) -> np.ndarray:
    shape = (-1,) + (1,) * (tensor.ndim - 1) if scale.ndim else ()
    return (tensor.astype(np.float64) - zero.reshape(shape)) * scale.reshape(shape)


def onnx_convolutions(path: Path) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """(node name, weight, bias) of every Conv in graph order, dequantized to float32."""
    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}

    def value(name: str) -> np.ndarray:
        if name in inits:
            return inits[name].astype(np.float32)
        node = producers[name]
        if node.op_type != "DequantizeLinear":
            raise ValueError(f"unexpected {node.op_type} feeding a convolution weight")
        q, scale, *zero = (inits[i] for i in node.input)
        zp = zero[0] if zero else np.zeros_like(scale)
        return _dequantize(q, scale, zp).astype(np.float32)

    convs = []
    for node in graph.node:
        if node.op_type == "Conv":
            bias = value(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            convs.append((node.name, value(node.input[1]), bias))
    return convs


def _conv_bn_pairs(model: nn.Module, size: int) -> list[tuple[nn.Conv2d, nn.BatchNorm2d | None]]:
    """Convolutions in execution order, each with the BatchNorm that consumes its output."""
    order: list[nn.Conv2d] = []
    outputs: dict[int, nn.Conv2d] = {}
    bn_of: dict[nn.Conv2d, nn.BatchNorm2d] = {}
    hooks = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):

            def after_conv(mod, _inp, out):
                order.append(mod)
                outputs[id(out)] = mod

            hooks.append(module.register_forward_hook(after_conv))
        elif isinstance(module, nn.BatchNorm2d):

            def before_bn(mod, inp):
                conv = outputs.get(id(inp[0]))
                if conv is not None:
                    bn_of[conv] = mod

            hooks.append(module.register_forward_pre_hook(before_bn))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    return [(conv, bn_of.get(conv)) for conv in order]


def recover(
    onnx_path: Path, cfg: Config, photos: list[np.ndarray]
) -> tuple[nn.Module, dict[str, float]]:
    """A WoundNet carrying the ONNX model's weights; ``photos`` (RGB) set BN statistics."""
    model = build_model(cfg, pretrained=False)
    spec = load_spec(onnx_path.parent)
    pairs = _conv_bn_pairs(model, spec.input.size)
    convs = onnx_convolutions(onnx_path)
    if len(pairs) != len(convs):
        raise ValueError(f"{len(convs)} ONNX convolutions for {len(pairs)} in the network")
    fused_bias: dict[nn.BatchNorm2d, torch.Tensor] = {}
    for (conv, bn), (name, weight, bias) in zip(pairs, convs, strict=True):
        if tuple(conv.weight.shape) != weight.shape:
            raise ValueError(f"{name}: ONNX weight {weight.shape} vs {tuple(conv.weight.shape)}")
        b = torch.from_numpy(bias) if bias is not None else torch.zeros(weight.shape[0])
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(weight))
            if bn is None:
                if conv.bias is None:
                    raise ValueError(f"{name}: a bias with no BatchNorm and no conv bias")
                conv.bias.copy_(b)
                continue
            if conv.bias is not None:
                conv.bias.zero_()
            # Identity plus bias in eval mode, until the statistics are measured.
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
            bn.weight.fill_(1.0)
            bn.bias.copy_(b)
        fused_bias[bn] = b

    # Measure each BatchNorm's input statistics (the network is exact in eval mode).
    sums: dict[nn.BatchNorm2d, list[torch.Tensor]] = {bn: [] for bn in fused_bias}
    hooks = [
        bn.register_forward_pre_hook(
            lambda mod, inp: sums[mod].append(
                torch.stack([inp[0].mean((0, 2, 3)), (inp[0] ** 2).mean((0, 2, 3))])
            )
        )
        for bn in fused_bias
    ]
    model.eval()
    with torch.no_grad():
        for rgb in photos:
            x, _ = preprocess(rgb, spec)
            model(torch.from_numpy(x))
    for hook in hooks:
        hook.remove()
    with torch.no_grad():
        for bn, b in fused_bias.items():
            mean, sq = torch.stack(sums[bn]).mean(0)
            var = (sq - mean**2).clamp_min(1e-6)
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.weight.copy_(torch.sqrt(var + bn.eps))
            bn.bias.copy_(mean + b)
    return model, {"convolutions": len(convs), "batchnorms": len(fused_bias)}


def config_from_spec(spec: ModelSpec, data_root: Path) -> Config:
    """The network a released folder holds, from its ``model.json`` (the inverse of
    ``training.train.model_spec``): no second source for the architecture."""
    arch = spec.architecture
    model = ModelConfig(
        name=spec.name,
        version=spec.version,
        encoder=arch["encoder"],
        decoder_channels=list(arch["decoder_channels"]),
        head_stride=arch["head_stride"],
        input_size=spec.input.size,
    )
    return Config(data=DataConfig(root=data_root), model=model)


def main(
    model_dir: Path = typer.Argument(..., help="released model folder (model.onnx, model.json)"),
    data: Path = typer.Option(
        Path("../shared/datasets/fuseg2021"), help="dataset root; BatchNorm statistics use train/"
    ),
    out: Path = typer.Option(..., help="checkpoint to write (use as model.init_checkpoint)"),
    photos: int = typer.Option(64, help="how many photos to measure on"),
    onnx_file: str = typer.Option("model.onnx", help="which ONNX file of the folder"),
) -> None:
    spec = load_spec(model_dir)
    cfg = config_from_spec(spec, data)
    # Statistics from training photos only (never validation).
    rgbs = [read_rgb(p.image) for p in split_pairs(cfg.data.root, cfg.data.train_split)[:photos]]
    model, info = recover(model_dir / onnx_file, cfg, rgbs)
    # Same function as the ONNX model? Compare logits on one photo.
    import onnxruntime as ort

    x, _ = preprocess(rgbs[0], spec)
    sess = ort.InferenceSession(str(model_dir / onnx_file), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        got = model.eval()(torch.from_numpy(x)).numpy()
    agree = float(((ref > 0) == (got > 0)).mean())
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model": model.state_dict(),
            "config": cfg.model_dump(mode="json"),
            "source": str(model_dir),
        },
        out,
    )
    print(
        f"recovered {info['convolutions']} convolutions, {info['batchnorms']} BatchNorms from"
        f" {model_dir / onnx_file}; max |logit diff| vs ONNX {np.abs(ref - got).max():.3f},"
        f" mask agreement {agree:.4%}; wrote {out}"
    )


if __name__ == "__main__":
    typer.run(main)
