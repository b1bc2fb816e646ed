"""Training loop: ``train(cfg) -> metrics``. Single process, or DDP under torchrun."""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler

from service.core.contract import InputSpec, ModelSpec, postprocess, preprocess, probability
from service.core.segmetrics import SplitScore, score_photo
from training.config import Config, dump_config
from training.data import CropDataset, manifest, read_mask, read_rgb, split_pairs
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


@torch.no_grad()
def evaluate_torch(model: torch.nn.Module, pairs, spec: ModelSpec, device: torch.device) -> dict:
    """Whole-photo evaluation with the same preprocess/postprocess as the service."""
    model.eval()
    score = SplitScore()
    for pair in pairs:
        rgb = read_rgb(pair.image)
        x, box = preprocess(rgb, spec)
        logits = model(torch.from_numpy(x).to(device)).float().cpu().numpy()[0, 0]
        mask = postprocess(probability(logits, spec), box, spec)
        score.add(score_photo(pair.image.name, read_mask(pair.label), mask))
    return score.summary()


def lr_lambda(total_steps: int, warmup: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


def train(cfg: Config, resume: Path | None = None) -> dict:
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        rank = dist.get_rank()
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    else:
        rank, local_rank = 0, 0
    main_process = rank == 0
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    else:
        device = torch.device("cpu")
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    seed_everything(cfg.train.seed + rank)

    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = model_spec(cfg)
    train_pairs = split_pairs(cfg.data.root, cfg.data.train_split)[: cfg.data.max_train_photos]
    val_pairs = split_pairs(cfg.data.root, cfg.data.val_split)[: cfg.data.max_val_photos]
    if main_process:
        dump_config(cfg, run_dir / "config.yaml")
        rows, train_hash = manifest(train_pairs)
        _, val_hash = manifest(val_pairs)
        (run_dir / "manifest.json").write_text(
            json.dumps(
                {"train_sha256": train_hash, "val_sha256": val_hash, "train": rows}, indent=1
            )
        )

    dataset = CropDataset(
        train_pairs,
        spec.input,
        cfg.train.crop_px,
        cfg.train.wound_crop_prob,
        cfg.train.seed,
        reframe_prob=cfg.train.reframe_prob,
        reframe_fill=cfg.train.reframe_fill,
        strong_photometric=cfg.train.strong_photometric,
    )
    sampler = DistributedSampler(dataset, seed=cfg.train.seed) if distributed else None
    loader = DataLoader(
        dataset,
        batch_size=cfg.train.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=cfg.train.num_workers,
        drop_last=len(dataset) > cfg.train.batch_size,
        persistent_workers=False,
        pin_memory=device.type == "cuda",
    )
    steps_per_epoch = len(loader)
    if cfg.train.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.train.max_steps_per_epoch)
    total_steps = steps_per_epoch * cfg.train.epochs

    model = build_model(cfg)
    if cfg.model.init_checkpoint and not resume:
        init = torch.load(cfg.model.init_checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(init["model"])
    model = model.to(device)
    use_cl = cfg.train.channels_last and device.type == "cuda"
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
    use_amp = cfg.train.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_epoch, step = 0, 0
    if resume:
        ckpt = torch.load(resume, map_location="cpu", weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch, step = ckpt["epoch"] + 1, ckpt["step"]
        torch.set_rng_state(ckpt["torch_rng"])
    net = model
    if distributed:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None
        )

    metrics_path = run_dir / "metrics.csv"
    fields = ["epoch", "step", "train_loss", "lr", "seconds", "val_pooled_dice", "val_mean_dice"]
    if main_process and not (resume and metrics_path.exists()):
        with open(metrics_path, "w", newline="") as fh:
            csv.writer(fh).writerow(fields)
    if main_process:
        print(
            f"train: {len(train_pairs)} photos, {steps_per_epoch} steps/epoch x {cfg.train.epochs}"
            f" epochs, {count_parameters(model) / 1e6:.2f} M parameters, device {device}",
            flush=True,
        )

    last: dict = {}
    t_start = time.time()
    for epoch in range(start_epoch, cfg.train.epochs):
        dataset.set_epoch(epoch)
        if sampler is not None:
            sampler.set_epoch(epoch)
        net.train()
        losses = []
        t_epoch = time.time()
        for i, (x, y) in enumerate(loader):
            if i >= steps_per_epoch:
                break
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            if use_cl:
                x = x.to(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                logits = net(x)
            loss = cfg.train.bce_weight * F.binary_cross_entropy_with_logits(
                logits.float(), y
            ) + cfg.train.dice_weight * soft_dice_loss(logits, y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            losses.append(loss.item())
            if main_process and cfg.train.log_every and step % cfg.train.log_every == 0:
                print(
                    f"epoch {epoch} step {step}/{total_steps} loss {np.mean(losses[-20:]):.4f}"
                    f" {(time.time() - t_epoch) / (i + 1):.2f}s/step",
                    flush=True,
                )
        row = {
            "epoch": epoch,
            "step": step,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "lr": scheduler.get_last_lr()[-1],
            "seconds": round(time.time() - t_start, 1),
            "val_pooled_dice": "",
            "val_mean_dice": "",
        }
        if main_process:
            final = epoch == cfg.train.epochs - 1
            if cfg.train.eval_every and ((epoch + 1) % cfg.train.eval_every == 0 or final):
                last = evaluate_torch(model, val_pairs, spec, device)
                row["val_pooled_dice"] = round(last["pooled_dice"], 4)
                row["val_mean_dice"] = round(last["mean_dice"], 4)
            with open(metrics_path, "a", newline="") as fh:
                csv.DictWriter(fh, fields).writerow(row)
            ckpt = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch,
                "step": step,
                "config": cfg.model_dump(mode="json"),
                "torch_rng": torch.get_rng_state(),
            }
            tmp = run_dir / "last.pt.tmp"
            torch.save(ckpt, tmp)
            tmp.replace(run_dir / "last.pt")
            print(f"epoch {epoch} done: {row}", flush=True)
    if distributed:
        dist.destroy_process_group()
    return last
