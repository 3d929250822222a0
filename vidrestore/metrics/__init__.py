"""Metrics of restored faces and videos against their ground truth: PSNR (RGB and Y), SSIM
(``pixels``), LPIPS (``perceptual``) and the flow warping error (``temporal``).

Used by ``vidrestore evaluate`` and by training (validation, ``python -m training evaluate``);
``perceptual`` imports torch and lpips only when it is imported itself.
"""

from .pixels import PSNR_CAP, luma, psnr_rgb, psnr_y, ssim
from .temporal import FLOW_METHOD, FlowWarpingError, WarpError, non_occluded, warp

__all__ = ["FLOW_METHOD", "PSNR_CAP", "FlowWarpingError", "WarpError", "luma", "non_occluded", "psnr_rgb",
           "psnr_y", "ssim", "warp"]
