"""Check vidrestore's CodeFormer / VQAutoEncoder against the official implementation.

Usage::

    python tools/verify_codeformer_official.py --official-dir /path/to/CodeFormer

``--official-dir`` is a checkout (or extracted source) of sczhou/CodeFormer holding
``basicsr/archs/codeformer_arch.py`` and ``vqgan_arch.py``. The official code is only read
from there, never copied; its basicsr helpers (registry, logger) are stubbed in memory, so
basicsr need not be installed. Both networks get the same seeded random weights and the same
seeded input; the script prints the key-set / shape comparison and the max abs differences
at w = 0 and w = 0.7 (``adain=True``, the official inference path).

``--write-manifest`` and ``--write-golden`` record facts measured on the official network
(state-dict names and shapes; output statistics) as JSON for ``tests/models/data``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
import time
import types
from pathlib import Path

import torch

from vidrestore.models import CodeFormer, VQAutoEncoder
from vidrestore.models.seeded import seeded_faces, seeded_state_dict

WEIGHTS = (0.0, 0.7)
PIXELS = ((0, 0, 0), (1, 100, 200), (2, 256, 256), (0, 400, 77), (1, 511, 511))
TINY_VQGAN = dict(img_size=64, nf=32, ch_mult=[1, 1, 2], quantizer="nearest", res_blocks=1,
                  attn_resolutions=[16], codebook_size=32, emb_dim=32)


def load_official(official_dir: Path) -> tuple[types.ModuleType, types.ModuleType]:
    """Import the official vqgan_arch / codeformer_arch with in-memory basicsr stubs."""
    archs = official_dir / "basicsr" / "archs"
    if not (archs / "codeformer_arch.py").is_file():
        raise SystemExit(f"{archs / 'codeformer_arch.py'} not found: pass the CodeFormer source root")

    class _Registry:
        def register(self, obj=None):
            return obj if obj is not None else (lambda o: o)

    stubs = {
        "basicsr": types.ModuleType("basicsr"),
        "basicsr.utils": types.ModuleType("basicsr.utils"),
        "basicsr.utils.registry": types.ModuleType("basicsr.utils.registry"),
        "basicsr.archs": types.ModuleType("basicsr.archs"),
    }
    stubs["basicsr"].__path__ = []  # type: ignore[attr-defined]
    stubs["basicsr.archs"].__path__ = []  # type: ignore[attr-defined]
    stubs["basicsr.utils"].__path__ = []  # type: ignore[attr-defined]
    stubs["basicsr.utils"].get_root_logger = lambda *a, **k: logging.getLogger("official")  # type: ignore[attr-defined]
    stubs["basicsr.utils.registry"].ARCH_REGISTRY = _Registry()  # type: ignore[attr-defined]
    sys.modules.update(stubs)
    loaded = []
    for name in ("vqgan_arch", "codeformer_arch"):
        spec = importlib.util.spec_from_file_location(f"basicsr.archs.{name}", archs / f"{name}.py")
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[spec.name] = module  # type: ignore[union-attr]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        loaded.append(module)
    return loaded[0], loaded[1]


def compare_keys(official: torch.nn.Module, ours: torch.nn.Module, label: str) -> bool:
    a = {k: tuple(v.shape) for k, v in official.state_dict().items()}
    b = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    shapes = [k for k in set(a) & set(b) if a[k] != b[k]]
    n_params = sum(p.numel() for p in official.parameters())
    print(f"[{label}] official: {len(a)} tensors, {n_params:,} parameters; "
          f"ours: {len(b)} tensors, {sum(p.numel() for p in ours.parameters()):,} parameters")
    print(f"[{label}] only in official: {only_a[:5]} ({len(only_a)}); only in ours: "
          f"{only_b[:5]} ({len(only_b)}); shape mismatches: {shapes[:5]} ({len(shapes)})")
    return not (only_a or only_b or shapes)


def manifest_json(manifest: dict) -> str:
    """JSON with one state-dict entry per line (diff-friendly)."""
    head = {k: v for k, v in manifest.items() if k != "keys"}
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in manifest["keys"].items()]
    body = json.dumps(head, indent=2)[:-2] + ',\n  "keys": {\n' + ",\n".join(lines)
    return body + "\n  }\n}\n"


def output_facts(image: torch.Tensor) -> dict:
    """Mean / std / mean |x| of a batch of images and a few pixels of its last image."""
    image = image.double()
    size = image.shape[-1]
    return {
        "mean": image.mean().item(),
        "std": image.std().item(),
        "abs_mean": image.abs().mean().item(),
        "pixels": [[c, y % size, x % size, image[-1, c, y % size, x % size].item()]
                   for c, y, x in PIXELS],
    }


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    vq_mod, cf_mod = load_official(args.official_dir)
    ok = True
    golden: dict = {"source": f"sczhou/CodeFormer {args.official_commit}", "seed_weights": args.seed,
                    "seed_input": args.seed + 1}

    # -- Stage I VQGAN, full size: keys only; tiny: keys and numbers (cheap golden facts).
    off_vq = vq_mod.VQAutoEncoder(512, 64, [1, 2, 2, 4, 4, 8], "nearest", 2, [16], 1024)
    ok &= compare_keys(off_vq, VQAutoEncoder(), "VQAutoEncoder")
    off_tiny, our_tiny = vq_mod.VQAutoEncoder(**TINY_VQGAN), VQAutoEncoder(**TINY_VQGAN)
    ok &= compare_keys(off_tiny, our_tiny, "VQAutoEncoder tiny")
    sd = seeded_state_dict(off_tiny.state_dict(), args.seed)
    off_tiny.load_state_dict(sd, strict=True)
    our_tiny.load_state_dict(sd, strict=True)
    x = seeded_faces(2, 64, args.seed + 1)
    with torch.no_grad():
        ref, ref_loss, ref_stats = off_tiny.eval()(x)
        out = our_tiny.eval()(x)
    diff = (ref - out.image).abs().max().item()
    same_idx = torch.equal(ref_stats["min_encoding_indices"].view(2, -1), out.stats.indices)
    print(f"[VQAutoEncoder tiny] max |official - ours| = {diff:.3e}; codebook loss "
          f"{ref_loss.item():.6f} vs {out.codebook_loss.item():.6f}; same codes: {same_idx}")
    ok &= diff < 1e-4 and same_idx
    golden["vqgan_tiny"] = {"config": TINY_VQGAN, "batch": 2, **output_facts(ref),
                            "codebook_loss": ref_loss.item(),
                            "indices": ref_stats["min_encoding_indices"].view(2, -1).tolist()}

    # -- CodeFormer, full official size.
    official, ours = cf_mod.CodeFormer(), CodeFormer()
    ok &= compare_keys(official, ours, "CodeFormer")
    if args.write_manifest:
        manifest = {
            "source": f"sczhou/CodeFormer {args.official_commit} basicsr/archs/codeformer_arch.py "
                      "CodeFormer() default arguments",
            "num_tensors": len(official.state_dict()),
            "num_parameters": sum(p.numel() for p in official.parameters()),
            "keys": {k: list(v.shape) for k, v in official.state_dict().items()},
        }
        args.write_manifest.write_text(manifest_json(manifest))
        print(f"wrote {args.write_manifest}")
    sd = seeded_state_dict(official.state_dict(), args.seed)
    official.load_state_dict(sd, strict=True)
    ours.load_state_dict(sd, strict=True)
    official.eval()
    ours.eval()
    x = seeded_faces(1, 512, args.seed + 1)
    golden["codeformer"] = {}
    for w in WEIGHTS:
        t0 = time.perf_counter()
        with torch.no_grad():
            ref, ref_logits, ref_lq = official(x, w=w, adain=True)
            t1 = time.perf_counter()
            out = ours(x, w)
            out_t = ours(x, torch.tensor(w))
        top2 = ref_logits.topk(2, dim=-1).values
        margin = (top2[..., 0] - top2[..., 1]).min().item()
        d_img = (ref - out.image).abs().max().item()
        d_img_t = (ref - out_t.image).abs().max().item()
        d_logits = (ref_logits - out.logits).abs().max().item()
        same = torch.equal(ref_logits.argmax(-1), out.logits.argmax(-1))
        print(f"[CodeFormer w={w}] max |official - ours| image {d_img:.3e} (w as tensor {d_img_t:.3e}), "
              f"logits {d_logits:.3e}, lq_feat {(ref_lq - out.lq_feat).abs().max().item():.3e}; "
              f"same codes: {same}; smallest top-2 logit margin {margin:.3e}; "
              f"official {t1 - t0:.1f} s")
        ok &= d_img < 1e-4 and d_img_t < 1e-4 and same
        golden["codeformer"][str(w)] = {**output_facts(ref), "min_top2_margin": margin,
                                        "indices": ref_logits.argmax(-1)[0].tolist()}
    if args.write_golden:
        args.write_golden.write_text(json.dumps(golden) + "\n")
        print(f"wrote {args.write_golden}")
    print("OK: ours matches the official network" if ok else "MISMATCH")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--official-dir", type=Path, required=True, help="CodeFormer source root")
    parser.add_argument("--official-commit", default="(commit not given)",
                        help="recorded in the written JSON files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write-manifest", type=Path, help="official state-dict names/shapes JSON")
    parser.add_argument("--write-golden", type=Path, help="official output statistics JSON")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
