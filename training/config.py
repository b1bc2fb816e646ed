"""Typed training configuration, loaded from YAML; unknown keys are refused."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExtraSet(_Strict):
    """Another dataset in FUSeg's layout whose README allows training."""

    root: Path
    split: str = "train"
    repeats: int = Field(1, ge=1)
    """How many times each of its photos is drawn per epoch (its weight)."""

    @model_validator(mode="after")
    def _trainable(self) -> ExtraSet:
        """Never a validation split, never a set whose README says evaluation only."""
        if self.split.lower() in ("validation", "val", "test"):
            raise ValueError(f"{self.root}: the {self.split!r} split is for reporting")
        readme = self.root / "README.md"
        if readme.exists() and "evaluation only" in readme.read_text().lower():
            raise ValueError(f"{self.root}: its README marks it evaluation only")
        return self


class DataConfig(_Strict):
    root: Path = Path("../shared/datasets/fuseg2021")
    train_split: str = "train"
    val_split: str = "validation"
    max_train_photos: int | None = None
    max_val_photos: int | None = None
    extra_train: list[ExtraSet] = Field(default_factory=list)
    """More training sets (never an evaluation-only set, never a validation split)."""


class ModelConfig(_Strict):
    name: str = "ulcerseg"
    version: str = "0.1.0"
    encoder: str = "lite0"
    pretrained: bool = True
    decoder_channels: list[int] = Field(default_factory=lambda: [128, 64, 48])
    head_stride: int = 4
    input_size: int = 512
    init_checkpoint: Path | None = None
    """Start from this checkpoint's weights (a new schedule; not a resume)."""


class TrainConfig(_Strict):
    epochs: int = 20
    batch_size: int = 8
    crop_px: int = 256
    wound_crop_prob: float = 0.7
    reframe_prob: float = 0.0
    """Share of samples re-framed so the wound fills a fraction drawn from reframe_fill."""
    reframe_fill: tuple[float, float] = (0.003, 0.5)
    strong_photometric: bool = False
    """White balance, exposure, wider colour jitter and perspective (other cameras)."""
    soft_prob: float = 0.0
    """Share of samples made soft: a 160-640 px source upscaled, blur, JPEG, noise, halos."""
    soft_source_px: tuple[int, int] = (160, 640)
    freeze_batchnorm: bool = False
    """Keep every BatchNorm layer in eval mode (its running statistics and affine
    parameters as loaded): for fine-tuning a trained model with small batches."""
    lr: float = 1e-3
    encoder_lr_mult: float = 0.5
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    bce_weight: float = 1.0
    dice_weight: float = 1.0
    seed: int = 0
    num_workers: int = 1
    threads: int = 0
    amp: bool = True
    channels_last: bool = True
    max_steps_per_epoch: int | None = None
    eval_every: int = 2
    log_every: int = 20


class Config(_Strict):
    run_dir: Path = Path("runs/ulcerseg")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)


def load_config(path: Path, overrides: dict | None = None) -> Config:
    raw = yaml.safe_load(Path(path).read_text()) or {}
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return Config.model_validate(raw)


def dump_config(cfg: Config, path: Path) -> None:
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
