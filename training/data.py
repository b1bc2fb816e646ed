"""FUSeg-layout datasets (images/ + labels/), wound-biased crops and augmentation."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from service.core.contract import InputSpec, normalize
from service.core.imaging import read_mask as service_read_mask
from service.core.imaging import read_photo
from service.core.reframe import reframe
from service.runtime.evaluation import pairs


@dataclass(frozen=True)
class Pair:
    image: Path
    label: Path


def find_pairs(images_dir: Path, labels_dir: Path) -> list[Pair]:
    """Photos matched by stem to masks: the same rule as ``woundscope evaluate``."""
    return [Pair(image, label) for image, label in pairs(images_dir, labels_dir)]


def split_pairs(root: Path, split: str) -> list[Pair]:
    return find_pairs(Path(root) / split / "images", Path(root) / split / "labels")


def weighted_pairs(sets: list[tuple[Path, str, int]]) -> list[Pair]:
    """The training list of several datasets, each (root, split, repeats): a set's
    photos appear ``repeats`` times per epoch, so a small set from another clinic can
    weigh more without FUSeg's domain being lost."""
    out: list[Pair] = []
    for root, split, repeats in sets:
        out.extend(split_pairs(root, split) * repeats)
    return out


def manifest(pairs: list[Pair]) -> tuple[list[dict], str]:
    """Per-file sha256 rows and one hash over the whole list (recorded with every run)."""
    rows = []
    whole = hashlib.sha256()
    for p in pairs:
        hi = hashlib.sha256(p.image.read_bytes()).hexdigest()
        hl = hashlib.sha256(p.label.read_bytes()).hexdigest()
        rows.append(
            {"image": p.image.name, "label": p.label.name, "image_sha256": hi, "label_sha256": hl}
        )
        whole.update(f"{p.image.name}:{hi}:{p.label.name}:{hl}\n".encode())
    return rows, whole.hexdigest()


def read_rgb(path: Path) -> np.ndarray:
    """The photo as the service sees it (one decoder: EXIF orientation, colour modes)."""
    return read_photo(path).rgb


def read_mask(path: Path) -> np.ndarray:
    """A 0/255 mask -> 0/1 uint8 (the service's mask reader, so the threshold is one)."""
    return (service_read_mask(path) > 0).astype(np.uint8)


def geometric_augment(perspective: bool = False) -> A.Compose:
    return A.Compose(
        [
            A.Affine(
                scale=(0.7, 1.4),
                rotate=(-45, 45),
                shear=(-8, 8),
                border_mode=cv2.BORDER_REFLECT_101,
                p=0.8,
            ),
            # A phone held at an angle; the aspect of the wound changes with it.
            A.Perspective(scale=(0.02, 0.08), border_mode=cv2.BORDER_REFLECT_101, p=0.3)
            if perspective
            else A.NoOp(),
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomRotate90(p=0.5),
        ]
    )


def photometric_augment(strong: bool = False) -> A.Compose:
    """The variety of phone photos: colour, light, blur, noise, compression.

    ``strong`` adds what other clinics' cameras do: white balance (per-channel gain),
    exposure (gamma), and wider colour jitter, for eschar, slough and darker skin."""
    extra = (
        [
            A.RGBShift(r_shift_limit=20, g_shift_limit=15, b_shift_limit=20, p=0.4),
            A.RandomGamma(gamma_limit=(60, 150), p=0.4),
            A.ToGray(p=0.03),
        ]
        if strong
        else []
    )
    jitter = (0.4, 0.4, 0.45, 0.06) if strong else (0.3, 0.3, 0.3, 0.04)
    return A.Compose(
        [
            *extra,
            A.ColorJitter(*jitter, p=0.8),
            A.OneOf([A.GaussianBlur(blur_limit=(3, 7)), A.MotionBlur(blur_limit=(3, 9))], p=0.3),
            A.GaussNoise(std_range=(0.01, 0.06), p=0.3),
            A.ImageCompression(quality_range=(40, 95), p=0.4),
        ]
    )


def soften(rgb: np.ndarray, source_px: int, rng: np.random.Generator) -> np.ndarray:
    """The photo as a camera of ``source_px`` pixels across (for a 512 px frame) would
    have delivered it, brought back to its own size: downscaled (area average), then
    upscaled with a bilinear or bicubic filter, as a phone or a PACS viewer does.

    Only the photo changes; the mask keeps every pixel, so the pair stays aligned."""
    h, w = rgb.shape[:2]
    factor = min(1.0, source_px / 512)
    if factor >= 1.0:
        return rgb
    small = (max(8, round(w * factor)), max(8, round(h * factor)))
    down = cv2.resize(rgb, small, interpolation=cv2.INTER_AREA)
    up = cv2.INTER_CUBIC if rng.random() < 0.5 else cv2.INTER_LINEAR
    return cv2.resize(down, (w, h), interpolation=up)


def soft_photo_augment() -> A.Compose:
    """What makes a photo softer than FUSeg's sharp 512 px frames: defocus and motion
    blur, hard JPEG (30-95), sensor noise, and the sharpening halos of phone cameras.
    Photometric only (the mask is untouched), applied after ``soften``."""
    return A.Compose(
        [
            A.OneOf(
                [
                    A.Defocus(radius=(1, 4), alias_blur=(0.1, 0.4)),
                    A.MotionBlur(blur_limit=(3, 11)),
                    A.GaussianBlur(blur_limit=(3, 9)),
                ],
                p=0.6,
            ),
            A.Sharpen(alpha=(0.2, 0.6), lightness=(0.8, 1.2), p=0.3),
            A.GaussNoise(std_range=(0.01, 0.05), p=0.3),
            A.ImageCompression(quality_range=(30, 95), p=0.7),
        ]
    )


def wound_biased_crop(
    rgb: np.ndarray, mask: np.ndarray, crop: int, wound_prob: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    h, w = mask.shape
    if h < crop or w < crop:
        pad_h, pad_w = max(0, crop - h), max(0, crop - w)
        rgb = cv2.copyMakeBorder(rgb, 0, pad_h, 0, pad_w, cv2.BORDER_REFLECT_101)
        mask = cv2.copyMakeBorder(mask, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=0)
        h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if len(ys) and rng.random() < wound_prob:
        i = rng.integers(len(ys))
        cy = ys[i] + rng.integers(-crop // 4, crop // 4 + 1)
        cx = xs[i] + rng.integers(-crop // 4, crop // 4 + 1)
        y0 = int(np.clip(cy - crop // 2, 0, h - crop))
        x0 = int(np.clip(cx - crop // 2, 0, w - crop))
    else:
        y0 = int(rng.integers(0, h - crop + 1))
        x0 = int(rng.integers(0, w - crop + 1))
    return rgb[y0 : y0 + crop, x0 : x0 + crop], mask[y0 : y0 + crop, x0 : x0 + crop]


def sample_fill(rng: np.random.Generator, fill_range: tuple[float, float]) -> float:
    """A wound fraction drawn log-uniformly: as many zoomed-out views as close-ups."""
    lo, hi = np.log(fill_range[0]), np.log(fill_range[1])
    return float(np.exp(rng.uniform(lo, hi)))


class CropDataset(Dataset):
    """Random, wound-biased crops of augmented photos, held in memory.

    With probability ``reframe_prob`` a photo with a wound is instead re-framed
    (``service.core.reframe``) so the wound fills a fraction drawn from ``reframe_fill``:
    from zoomed far out (reflect-padded) to a close-up that fills half the frame."""

    def __init__(
        self,
        pairs: list[Pair],
        spec: InputSpec,
        crop: int,
        wound_prob: float,
        seed: int,
        reframe_prob: float = 0.0,
        reframe_fill: tuple[float, float] = (0.003, 0.5),
        strong_photometric: bool = False,
        soft_prob: float = 0.0,
        soft_source_px: tuple[int, int] = (160, 640),
    ):
        self.images = [read_rgb(p.image) for p in pairs]
        self.masks = [read_mask(p.label) for p in pairs]
        self.spec = spec
        self.crop = crop
        self.wound_prob = wound_prob
        self.seed = seed
        self.epoch = 0
        self.reframe_prob = reframe_prob
        self.reframe_fill = reframe_fill
        self.geo = geometric_augment(perspective=strong_photometric)
        self.photo = photometric_augment(strong=strong_photometric)
        self.soft = soft_photo_augment()
        self.soft_prob = soft_prob
        self.soft_source_px = soft_source_px

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        # albumentations seeds itself from the OS unless told: give both pipelines one
        # generator drawn from (seed, epoch, photo), so a run is repeatable whatever the
        # number of loader workers (one shared generator per pipeline, not one seed per
        # transform, which would make e.g. the two flips always agree).
        for pipeline in (self.geo, self.photo, self.soft):
            child = int(rng.integers(2**63))
            pipeline.set_random_state(np.random.default_rng(child), random.Random(child))
        g = self.geo(image=self.images[i], mask=self.masks[i])
        if self.reframe_prob and g["mask"].any() and rng.random() < self.reframe_prob:
            fill = sample_fill(rng, self.reframe_fill)
            # Off-centre by up to 40 % of the room the wound leaves, so it stays in view.
            room = 0.4 * (1 - np.sqrt(fill)) / 2
            jitter = (float(rng.uniform(-room, room)), float(rng.uniform(-room, room)))
            img, mask = reframe(g["image"], g["mask"], fill, self.crop, jitter=jitter)
        else:
            img, mask = wound_biased_crop(g["image"], g["mask"], self.crop, self.wound_prob, rng)
        img = self.photo(image=np.ascontiguousarray(img))["image"]
        if self.soft_prob and rng.random() < self.soft_prob:
            # A softer photo than FUSeg's: a lower-resolution source brought to the
            # input size, then blur, compression, noise or sharpening halos.
            lo, hi = self.soft_source_px
            img = soften(img, int(rng.integers(lo, hi + 1)), rng)
            img = self.soft(image=np.ascontiguousarray(img))["image"]
        x = torch.from_numpy(normalize(img, self.spec))
        y = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None]
        return x, y
