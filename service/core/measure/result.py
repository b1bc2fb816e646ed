"""One wound measured on one photo: the numbers, the flags, and the wire JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.core.measure.calibration import CalibrationMethod
from service.core.measure.quality import QualityFlag


@dataclass(frozen=True)
class Measurement:
    """One wound measured on one photo. cm values are None when uncalibrated."""

    area_px: int
    components: int
    calibration: CalibrationMethod
    area_cm2: float | None = None
    area_cm2_low: float | None = None
    area_cm2_high: float | None = None
    perimeter_cm: float | None = None
    length_cm: float | None = None
    width_cm: float | None = None
    tilt_deg: float | None = None
    px_per_mm: float | None = None
    quality: list[QualityFlag] = field(default_factory=list)
    marker_id: int | None = None
    markers_found: int = 0
    marker_corners_px: list[list[float]] | None = None
    """The marker's refined corners (ArUco order), for drawing and audit."""
    calibration_pct: float | None = None
    """95 % half-width of the area from the calibration (marker corners, scale), %."""
    segmentation_pct: float | None = None
    """95 % half-width of the area from the outline (the model's calibrated
    uncertainty), %; None for a clinician's outline or an uncalibrated model."""

    @property
    def calibrated(self) -> bool:
        return self.calibration != "none"

    @property
    def length_x_width_cm2(self) -> float | None:
        if self.length_cm is None or self.width_cm is None:
            return None
        return self.length_cm * self.width_cm

    @property
    def severe(self) -> bool:
        """True when a flag keeps this measurement out of the endpoints."""
        return any(f.severe for f in self.quality)

    def to_json(self) -> dict[str, Any]:
        """Exactly the keys of ``woundscope measure --json`` (DESIGN.md)."""

        def r(value: float | None, digits: int) -> float | None:
            return None if value is None else round(float(value), digits)

        return {
            "area_cm2": r(self.area_cm2, 4),
            "area_cm2_low": r(self.area_cm2_low, 4),
            "area_cm2_high": r(self.area_cm2_high, 4),
            "area_px": int(self.area_px),
            "components": int(self.components),
            "perimeter_cm": r(self.perimeter_cm, 3),
            "length_cm": r(self.length_cm, 3),
            "width_cm": r(self.width_cm, 3),
            "length_x_width_cm2": r(self.length_x_width_cm2, 4),
            "tilt_deg": r(self.tilt_deg, 1),
            "px_per_mm": r(self.px_per_mm, 3),
            "calibrated": self.calibrated,
            "calibration": self.calibration,
            "uncertainty": {
                "calibration_pct": r(self.calibration_pct, 1),
                "segmentation_pct": r(self.segmentation_pct, 1),
            },
            "quality": [f.to_json() for f in self.quality],
        }
