"""``vidrestore evaluate``: a restored video scored against its reference, frame by frame
(PSNR, SSIM, LPIPS, IDS, LMD) and over time (flow warping error, whole frame and faces)."""

from .report import plot, write_csv, write_json
from .video import SUMMARY_KEYS, VideoEvaluation, evaluate_videos

__all__ = ["SUMMARY_KEYS", "VideoEvaluation", "evaluate_videos", "plot", "write_csv", "write_json"]
