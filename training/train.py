"""Training loop: ``train(cfg) -> metrics``. Single process, or DDP under torchrun."""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler

from service.core.contract import InputSpec, ModelSpec, postprocess, preprocess, probability
from service.core.segmetrics import SplitScore, score_photo
from training.config import Config, dump_config
from training.data import (
    CropDataset,
    Pair,
    manifest,
    read_mask,
    read_rgb,
    split_pairs,
    weighted_pairs,
)
from training.model import WoundNet, count_parameters


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - Dice over the whole batch (pooled, like the metric that ranks FUSeg)."""
    p = torch.sigmoid(logits.float())
    inter = (p * target).sum()
    return 1 - (2 * inter + eps) / (p.sum() + target.sum() + eps)


def build_model(cfg: Config, pretrained: bool | None = None) -> WoundNet:
    m = cfg.model
    return WoundNet(
        encoder=m.encoder,
        decoder_channels=tuple(m.decoder_channels),
        head_stride=m.head_stride,
        pretrained=m.pretrained if pretrained is None else pretrained,
    )


def model_spec(cfg: Config) -> ModelSpec:
    """The contract this training run's model obeys (written into model.json at export)."""
    return ModelSpec(
        name=cfg.model.name,
        version=cfg.model.version,
        input=InputSpec(size=cfg.model.input_size),
        architecture={
            "family": "WoundNet (U-Net decoder to stride 4 on EfficientNet-Lite)",
            "encoder": cfg.model.encoder,
            "decoder_channels": list(cfg.model.decoder_channels),
            "head_stride": cfg.model.head_stride,
        },
    )


def torch_segment(
    model: torch.nn.Module, spec: ModelSpec, device: torch.device | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """rgb -> 0/255 mask by the PyTorch network, with the service's own preprocess and
    postprocess (``contract``): one whole-photo look, as the ONNX model's first."""
    device = device or torch.device("cpu")

    @torch.no_grad()
    def segment(rgb: np.ndarray) -> np.ndarray:
        x, box = preprocess(rgb, spec)
        logits = model(torch.from_numpy(x).to(device)).float().cpu().numpy()[0, 0]
        return postprocess(probability(logits, spec), box, spec)

    return segment


def evaluate_torch(
    model: torch.nn.Module, pairs: Sequence[Pair], spec: ModelSpec, device: torch.device
) -> dict[str, float | int]:
    """Whole-photo evaluation with the same preprocess/postprocess as the service."""
    model.eval()
    segment = torch_segment(model, spec, device)
    score = SplitScore()
    for pair in pairs:
        score.add(
            score_photo(pair.image.name, read_mask(pair.label), segment(read_rgb(pair.image)))
        )
    return score.summary()


def freeze_batchnorm(model: torch.nn.Module) -> None:
    """Every BatchNorm layer of ``model`` to eval mode, its parameters frozen: batches of
    8 crops re-estimate (and drift) the statistics a trained model measured on whole
    photos."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
            for p in module.parameters():
                p.requires_grad_(False)


def lr_lambda(total_steps: int, warmup: int) -> Callable[[int], float]:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total_steps``."""

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


@dataclass(frozen=True)
class _Place:
    """Where this process trains: its rank among the DDP processes and its device."""

    distributed: bool
    rank: int
    local_rank: int
    device: torch.device

    @property
    def main_process(self) -> bool:
        """Rank 0 alone writes the run folder and evaluates."""
        return self.rank == 0


@dataclass
class _Fit:
    """The network and what steps it: optimiser, schedule, AMP scaler, memory layout."""

    model: WoundNet
    net: torch.nn.Module
    """``model``, wrapped in DistributedDataParallel under torchrun."""
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    use_amp: bool
    use_cl: bool


@dataclass
class _Data:
    """The training crops, their loader and how many steps an epoch takes."""

    dataset: CropDataset
    sampler: DistributedSampler | None
    loader: DataLoader
    steps_per_epoch: int


METRICS_FIELDS = [
    "epoch",
    "step",
    "train_loss",
    "lr",
    "seconds",
    "val_pooled_dice",
    "val_mean_dice",
]


def train(cfg: Config, resume: Path | None = None) -> dict[str, float | int]:
    """Train ``cfg`` (or resume from the checkpoint ``resume``); the last validation
    metrics (``evaluate_torch``), {} when no epoch was evaluated."""
    place = _place(cfg)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = model_spec(cfg)
    train_pairs = split_pairs(cfg.data.root, cfg.data.train_split)[: cfg.data.max_train_photos]
    train_pairs += weighted_pairs(
        [(extra.root, extra.split, extra.repeats) for extra in cfg.data.extra_train]
    )
    val_pairs = split_pairs(cfg.data.root, cfg.data.val_split)[: cfg.data.max_val_photos]
    if place.main_process:
        _record_run(cfg, run_dir, train_pairs, val_pairs)
    data = _data(cfg, train_pairs, spec, place)
    total_steps = data.steps_per_epoch * cfg.train.epochs
    fit = _fit(cfg, place, total_steps, resume)
    start_epoch, step = _resume(fit, resume) if resume else (0, 0)
    if place.distributed:
        fit.net = torch.nn.parallel.DistributedDataParallel(
            fit.model, device_ids=[place.local_rank] if place.device.type == "cuda" else None
        )
    metrics_path = run_dir / "metrics.csv"
    if place.main_process:
        _start_log(cfg, metrics_path, resume, len(train_pairs), data, fit, place)
    last: dict[str, float | int] = {}
    t_start = time.time()
    for epoch in range(start_epoch, cfg.train.epochs):
        step, losses = _train_epoch(cfg, place, data, fit, epoch, step, total_steps)
        row = _epoch_row(epoch, step, losses, fit, t_start)
        if place.main_process:
            if _evaluates(cfg, epoch):
                last = evaluate_torch(fit.model, val_pairs, spec, place.device)
                row["val_pooled_dice"] = round(last["pooled_dice"], 4)
                row["val_mean_dice"] = round(last["mean_dice"], 4)
            with open(metrics_path, "a", newline="") as fh:
                csv.DictWriter(fh, METRICS_FIELDS).writerow(row)
            _save_checkpoint(cfg, run_dir, fit, epoch, step)
            print(f"epoch {epoch} done: {row}", flush=True)
    if place.distributed:
        dist.destroy_process_group()
    return last


def _place(cfg: Config) -> _Place:
    """Join the process group under torchrun, pick the device, seed this rank.

    Each rank gets its own seed (``seed + rank``) so that DDP processes do not draw
    the same augmentations."""
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        rank = dist.get_rank()
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    else:
        rank, local_rank = 0, 0
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    else:
        device = torch.device("cpu")
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    seed_everything(cfg.train.seed + rank)
    return _Place(distributed, rank, local_rank, device)


def _record_run(cfg: Config, run_dir: Path, train_pairs: list[Pair], val_pairs: list[Pair]) -> None:
    """The run folder's config.yaml and manifest.json: what was trained on what data,
    so that a model can be traced back to the exact photos (their sha256)."""
    dump_config(cfg, run_dir / "config.yaml")
    rows, train_hash = manifest(train_pairs)
    _, val_hash = manifest(val_pairs)
    (run_dir / "manifest.json").write_text(
        json.dumps({"train_sha256": train_hash, "val_sha256": val_hash, "train": rows}, indent=1)
    )


def _data(cfg: Config, train_pairs: list[Pair], spec: ModelSpec, place: _Place) -> _Data:
    """Crops of the training photos; under DDP each rank reads its share (the sampler)."""
    dataset = CropDataset(
        train_pairs,
        spec.input,
        cfg.train.crop_px,
        cfg.train.wound_crop_prob,
        cfg.train.seed,
        reframe_prob=cfg.train.reframe_prob,
        reframe_fill=cfg.train.reframe_fill,
        strong_photometric=cfg.train.strong_photometric,
        soft_prob=cfg.train.soft_prob,
        soft_source_px=cfg.train.soft_source_px,
    )
    sampler = DistributedSampler(dataset, seed=cfg.train.seed) if place.distributed else None
    loader = DataLoader(
        dataset,
        batch_size=cfg.train.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=cfg.train.num_workers,
        drop_last=len(dataset) > cfg.train.batch_size,
        persistent_workers=False,
        pin_memory=place.device.type == "cuda",
    )
    steps_per_epoch = len(loader)
    if cfg.train.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.train.max_steps_per_epoch)
    return _Data(dataset, sampler, loader, steps_per_epoch)


def _fit(cfg: Config, place: _Place, total_steps: int, resume: Path | None) -> _Fit:
    """The model on its device (from ``init_checkpoint`` unless resuming), AdamW with a
    smaller learning rate for the pretrained encoder, warm-up then cosine decay."""
    model = build_model(cfg)
    if cfg.model.init_checkpoint and not resume:
        init = torch.load(cfg.model.init_checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(init["model"])
    model = model.to(place.device)
    use_cl = cfg.train.channels_last and place.device.type == "cuda"
    if use_cl:
        model = model.to(memory_format=torch.channels_last)
    enc_params = list(model.encoder.parameters())
    enc_ids = {id(p) for p in enc_params}
    dec_params = [p for p in model.parameters() if id(p) not in enc_ids]
    optimizer = torch.optim.AdamW(
        [
            {"params": enc_params, "lr": cfg.train.lr * cfg.train.encoder_lr_mult},
            {"params": dec_params, "lr": cfg.train.lr},
        ],
        weight_decay=cfg.train.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(total_steps, cfg.train.warmup_steps)
    )
    use_amp = cfg.train.amp and place.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    return _Fit(model, model, optimizer, scheduler, scaler, use_amp, use_cl)


def _resume(fit: _Fit, resume: Path) -> tuple[int, int]:
    """Load the checkpoint's weights, optimiser, schedule, scaler and torch RNG;
    (first epoch to run, steps done)."""
    ckpt = torch.load(resume, map_location="cpu", weights_only=False)
    fit.model.load_state_dict(ckpt["model"])
    fit.optimizer.load_state_dict(ckpt["optimizer"])
    fit.scheduler.load_state_dict(ckpt["scheduler"])
    fit.scaler.load_state_dict(ckpt["scaler"])
    torch.set_rng_state(ckpt["torch_rng"])
    return ckpt["epoch"] + 1, ckpt["step"]


def _train_epoch(
    cfg: Config, place: _Place, data: _Data, fit: _Fit, epoch: int, step: int, total_steps: int
) -> tuple[int, list[float]]:
    """One epoch of optimiser steps (at most ``steps_per_epoch``); (steps done in all,
    this epoch's losses). Loss: BCE + soft Dice, weighted by the config."""
    data.dataset.set_epoch(epoch)
    if data.sampler is not None:
        data.sampler.set_epoch(epoch)
    fit.net.train()
    if cfg.train.freeze_batchnorm:
        freeze_batchnorm(fit.net)
    losses: list[float] = []
    t_epoch = time.time()
    for i, (x, y) in enumerate(data.loader):
        if i >= data.steps_per_epoch:
            break
        x = x.to(place.device, non_blocking=True)
        y = y.to(place.device, non_blocking=True)
        if fit.use_cl:
            x = x.to(memory_format=torch.channels_last)
        with torch.autocast(place.device.type, dtype=torch.bfloat16, enabled=fit.use_amp):
            logits = fit.net(x)
        loss = cfg.train.bce_weight * F.binary_cross_entropy_with_logits(
            logits.float(), y
        ) + cfg.train.dice_weight * soft_dice_loss(logits, y)
        fit.optimizer.zero_grad(set_to_none=True)
        fit.scaler.scale(loss).backward()
        fit.scaler.step(fit.optimizer)
        fit.scaler.update()
        fit.scheduler.step()
        step += 1
        losses.append(loss.item())
        if place.main_process and cfg.train.log_every and step % cfg.train.log_every == 0:
            print(
                f"epoch {epoch} step {step}/{total_steps} loss {np.mean(losses[-20:]):.4f}"
                f" {(time.time() - t_epoch) / (i + 1):.2f}s/step",
                flush=True,
            )
    return step, losses


def _start_log(
    cfg: Config,
    metrics_path: Path,
    resume: Path | None,
    photos: int,
    data: _Data,
    fit: _Fit,
    place: _Place,
) -> None:
    """metrics.csv's header (a resumed run appends to the file it finds) and one line
    saying what is about to be trained."""
    if not (resume and metrics_path.exists()):
        with open(metrics_path, "w", newline="") as fh:
            csv.writer(fh).writerow(METRICS_FIELDS)
    print(
        f"train: {photos} photos, {data.steps_per_epoch} steps/epoch x {cfg.train.epochs}"
        f" epochs, {count_parameters(fit.model) / 1e6:.2f} M parameters, device {place.device}",
        flush=True,
    )


def _epoch_row(
    epoch: int, step: int, losses: list[float], fit: _Fit, t_start: float
) -> dict[str, float | int | str]:
    """metrics.csv's row for an epoch; the validation columns stay empty unless it
    was evaluated (``_evaluates``)."""
    return {
        "epoch": epoch,
        "step": step,
        "train_loss": float(np.mean(losses)) if losses else float("nan"),
        "lr": fit.scheduler.get_last_lr()[-1],
        "seconds": round(time.time() - t_start, 1),
        "val_pooled_dice": "",
        "val_mean_dice": "",
    }


def _evaluates(cfg: Config, epoch: int) -> bool:
    """Every ``eval_every`` epochs and after the last one (never with ``eval_every`` 0)."""
    final = epoch == cfg.train.epochs - 1
    return bool(cfg.train.eval_every) and ((epoch + 1) % cfg.train.eval_every == 0 or final)


def _save_checkpoint(cfg: Config, run_dir: Path, fit: _Fit, epoch: int, step: int) -> None:
    """``last.pt``: everything ``resume`` needs, written to a temporary file first so
    that an interrupted save never leaves a broken checkpoint."""
    ckpt = {
        "model": fit.model.state_dict(),
        "optimizer": fit.optimizer.state_dict(),
        "scheduler": fit.scheduler.state_dict(),
        "scaler": fit.scaler.state_dict(),
        "epoch": epoch,
        "step": step,
        "config": cfg.model_dump(mode="json"),
        "torch_rng": torch.get_rng_state(),
    }
    tmp = run_dir / "last.pt.tmp"
    torch.save(ckpt, tmp)
    tmp.replace(run_dir / "last.pt")
