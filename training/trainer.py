"""The shared trainer: data, optimisers, precision, EMA, data-parallel ranks, logs, checkpoints.

``Trainer(StageClass, config).run(resume=..., stop_at=...)`` trains one stage. Each step:
seed the generators from ``(seed, step, rank)``, take the step's batch (its samples are a
function of the step too, see ``data.sampler``), let the stage compute its losses and call
``optimize`` per optimiser, update the EMA, then log / validate / save on schedule. Because
everything a step draws depends on the step alone and the resume state holds every
network, the EMA, the optimisers and the scalers, a resumed run repeats the straight run
exactly (bit for bit on the same machine and world size).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import torch
import yaml
from torch import Tensor, nn
from torch.utils.data import DataLoader
from vidrestore.training.data.datasets import (
    FaceDataset,
    PairedFaceDataset,
    folder_paths,
    identity_paths,
)
from vidrestore.training.data.sampler import StreamSampler
from vidrestore.training.data.smoke import make_smoke_dataset

from vidrestore.config import to_mapping
from vidrestore.errors import ConfigError
from vidrestore.models.checkpoint import CheckpointMetadata
from vidrestore.weights import WeightStore

from . import checkpoints as ckpt
from .config import OptimConfig, TrainConfig
from .distributed import (
    World,
    all_mean,
    autocast,
    average_gradients,
    barrier,
    broadcast_module,
    close_world,
    init_world,
    main_first,
    rng_state,
    seed_step,
    set_rng_state,
)
from .ema import EMA
from .validation import Validator


@dataclass
class RunResult:
    """What ``Trainer.run`` did: the step reached, logged loss means, the files written."""

    step: int
    run_dir: Path
    history: list[dict[str, float]] = field(default_factory=list)
    validations: list[dict[str, float]] = field(default_factory=list)
    final_weights: Path | None = None
    last_state: Path | None = None


def lr_factor(opt: OptimConfig, step: int, total: int) -> float:
    """Learning-rate multiplier at ``step`` (a pure function: nothing to save for resume)."""
    warm = min(1.0, (step + 1) / opt.warmup_steps) if opt.warmup_steps else 1.0
    if opt.scheduler == "cosine":
        floor = opt.eta_min / opt.lr if opt.lr else 0.0
        return warm * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step, total) / total)))
    if opt.scheduler == "multistep":
        return warm * opt.gamma ** sum(step >= m for m in opt.milestones)
    return warm


def build_dataset(cfg: TrainConfig, root: Path, *, train: bool) -> FaceDataset:
    """The face dataset of ``root`` in the configured layout."""
    data = cfg.data
    persons = None
    if data.layout == "identity":
        paths, persons, _ = identity_paths(root)
    else:
        paths = folder_paths(root)
    return FaceDataset(
        paths, data.size, data.degradation, degradation_large=data.degradation_large if train else None,
        hflip=data.hflip and train, seed=cfg.seed, persons=persons, cache_images=data.cache_images,
    )


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


class Trainer:
    """Runs one stage (see module doc). ``log`` receives rank 0's log lines."""

    def __init__(self, stage_type: type, config: TrainConfig, *, log: Callable[[str], None] = print) -> None:
        if not isinstance(config, stage_type.config_type):
            raise ConfigError(f"stage {stage_type.name} needs a {stage_type.config_type.__name__}")
        self.stage_type, self.config, self._print = stage_type, config, log
        self.world: World | None = None
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self._params: dict[str, list[nn.Parameter]] = {}

    # -- what stages use ------------------------------------------------------------------
    def log(self, line: str) -> None:
        if self.world is None or self.world.is_main:
            self._print(line)
            if getattr(self, "_log_file", None) is not None:
                self._log_file.write(line + "\n")
                self._log_file.flush()

    def autocast(self):
        return autocast(self.device, self.config.precision)

    def optimize(self, name: str, loss: Tensor) -> None:
        """Backward ``loss``, average gradients over ranks, clip, step optimiser ``name``."""
        opt, scaler, params = self.optimizers[name], self.scalers[name], self._params[name]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        average_gradients(params, self.world)
        if self.config.grad_clip > 0:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        scaler.step(opt)
        scaler.update()

    # -- the run ---------------------------------------------------------------------------
    def run(self, *, resume: Path | str | None = None, stop_at: int | None = None) -> RunResult:
        """Train to ``total_steps`` (or ``stop_at``); ``resume``: a state file or ``"auto"``."""
        cfg = self.config
        self.world = world = init_world(cfg.device)
        self.device = world.device
        writer = None
        try:
            if cfg.threads:
                torch.set_num_threads(cfg.threads)
            self.store = WeightStore(cfg.weights_dir, allow_download=cfg.allow_download)
            run_dir, ckpt_dir = cfg.run_dir, cfg.run_dir / "checkpoints"
            if world.is_main:
                run_dir.mkdir(parents=True, exist_ok=True)
                (run_dir / "config.yaml").write_text(yaml.safe_dump(to_mapping(cfg), sort_keys=False))
                self._log_file = open(run_dir / "train.log", "a", encoding="utf-8")
            self.log(f"stage {self.stage_type.name}: {cfg.model} ({cfg.network}), {world.world_size} process(es) "
                     f"on {self.device}, precision {cfg.precision}, run folder {run_dir}")
            if cfg.data.root is None:
                raise ConfigError("data.root is not set (a folder of aligned faces)")
            root = Path(cfg.data.root)
            with main_first(world):
                if cfg.smoke and world.is_main and not root.exists() and root.name in ("faces", "persons"):
                    make_smoke_dataset(root.parent, log=self.log)
            torch.manual_seed(cfg.seed)  # identical initialisation on every rank
            stage = self.stage = self.stage_type(cfg, self)
            if stage.needs_identity_layout and cfg.data.layout != "identity":
                raise ConfigError(f"{cfg.model} trains on identity triplets: set data.layout to identity")
            for name, net in stage.trained().items():
                net.to(self.device)
                broadcast_module(net, world)
                self._params[name] = [p for p in net.parameters() if p.requires_grad]
                opt_cfg = cfg.optim_g if name == "g" else cfg.optim_d
                self.optimizers[name] = torch.optim.Adam(
                    self._params[name], lr=opt_cfg.lr, betas=opt_cfg.betas, weight_decay=opt_cfg.weight_decay)
                n = sum(p.numel() for p in self._params[name])
                self.log(f"net_{name}: {type(net).__name__}, {n / 1e6:.2f} M trained parameters")
            self.scalers = {n: torch.amp.GradScaler(self.device.type, enabled=cfg.precision == "fp16")
                            for n in self.optimizers}
            ema = EMA(stage.net, cfg.ema_decay)
            start = self._resume(resume, ckpt_dir, ema) if resume else 0
            result = RunResult(start, run_dir)
            end = min(cfg.total_steps, stop_at if stop_at is not None else cfg.total_steps)
            train_set = build_dataset(cfg, Path(cfg.data.root), train=True)
            batches = iter(self._loader(train_set, start))
            validator = None
            if world.is_main:
                writer = self._tensorboard(run_dir)
                if cfg.val_every > 0:
                    val_set = (PairedFaceDataset(cfg.data.val_lq, cfg.data.val_root, cfg.data.size)
                               if cfg.data.val_lq is not None else
                               build_dataset(cfg, Path(cfg.data.val_root or cfg.data.root), train=False))
                    if cfg.data.val_lq is not None:
                        self.log(f"validation: given LQ faces {cfg.data.val_lq} against {cfg.data.val_root}")
                    validator = Validator(stage, val_set, cfg.data.val_count, cfg.data.batch_size, self.device,
                                          self.log)
            sums: dict[str, float] = {}
            window, tick = 0, time.perf_counter()
            for step in range(start, end):
                seed_step(cfg.seed, step, world.rank)
                for name, opt in self.optimizers.items():
                    opt_cfg = cfg.optim_g if name == "g" else cfg.optim_d
                    for group in opt.param_groups:
                        group["lr"] = opt_cfg.lr * lr_factor(opt_cfg, step, cfg.total_steps)
                batch = {k: v.to(self.device, non_blocking=True) if isinstance(v, Tensor) else v
                         for k, v in next(batches).items()}
                stage.train_mode()
                losses = stage.train_step(batch, step)
                ema.update(stage.net)
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
                window += 1
                done = step + 1
                if cfg.log_every and (done % cfg.log_every == 0 or done == end):
                    means = all_mean({k: v / window for k, v in sums.items()}, world)
                    seconds = time.perf_counter() - tick
                    self._report(writer, result, done, means, window / seconds)
                    sums, window, tick = {}, 0, time.perf_counter()
                if validator is not None and (done % cfg.val_every == 0 or done == cfg.total_steps):
                    metrics, grid = validator.run(ema.module, done, run_dir / "samples")
                    result.validations.append({"step": done, **metrics})
                    self.log(f"val {done}: " + " ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
                    if writer is not None:
                        for k, v in metrics.items():
                            writer.add_scalar(f"val/{k}", v, done)
                        if grid is not None:
                            writer.add_image("val/lq_restored_gt", grid, done, dataformats="HWC")
                if (cfg.save_every and done % cfg.save_every == 0) or done == end:
                    result.last_state = self._save(done, ckpt_dir, ema)
                result.step = done
            if result.step == cfg.total_steps and world.is_main:
                last, final = ckpt_dir / f"net_g_{result.step:08d}.pth", ckpt_dir / "net_g_final.pth"
                result.final_weights = (ckpt.publish_copy(last, final) if last.is_file() else ckpt.save_atomic(
                    ckpt.runtime_checkpoint(stage.net, ema.module, self.metadata(result.step)), final))
                self.log(f"done: {result.final_weights}")
            barrier(world)
            del batches
            return result
        finally:
            if writer is not None:
                writer.close()
            if getattr(self, "_log_file", None) is not None:
                self._log_file.close()
                self._log_file = None
            close_world(world)

    # -- pieces ------------------------------------------------------------------------------
    def _loader(self, dataset: FaceDataset, start: int) -> DataLoader:
        cfg, world = self.config, self.world
        sampler = StreamSampler(len(dataset), cfg.data.batch_size, rank=world.rank, world_size=world.world_size,
                                seed=cfg.seed, start_step=start)
        workers = cfg.data.num_workers
        if workers:
            # OpenCV's thread pool does not survive fork: a worker touching it hangs. Run
            # OpenCV single-threaded in this process (its pool joined) before forking.
            cv2.setNumThreads(0)
        return DataLoader(dataset, batch_size=cfg.data.batch_size, sampler=sampler, num_workers=workers,
                          pin_memory=self.device.type == "cuda", worker_init_fn=_worker_init,
                          prefetch_factor=2 if workers else None)

    def _tensorboard(self, run_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(run_dir / "tb"))

    def _report(self, writer, result: RunResult, step: int, means: dict[str, float], steps_per_s: float) -> None:
        result.history.append({"step": step, **means})
        extra = {"it_per_s": steps_per_s,
                 "samples_per_s": steps_per_s * self.config.data.batch_size * self.world.world_size}
        if self.device.type == "cuda":
            extra["max_mem_gib"] = torch.cuda.max_memory_allocated(self.device) / 2**30
        if self.world.is_main:
            self.log(f"step {step}: " + " ".join(f"{k} {v:.4g}" for k, v in {**means, **extra}.items()))
            with open(result.run_dir / "log.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": step, **means, **extra}) + "\n")
            if writer is not None:
                for k, v in {**means, **extra}.items():
                    writer.add_scalar(f"train/{k}", v, step)

    def _save(self, step: int, folder: Path, ema: EMA) -> Path:
        cfg, path = self.config, ckpt.state_path(folder, step)
        if self.world.is_main:
            ckpt.save_atomic(ckpt.runtime_checkpoint(self.stage.net, ema.module, self.metadata(step)),
                             folder / f"net_g_{step:08d}.pth")
            ckpt.save_atomic({
                "step": step,
                "stage": self.stage_type.name,
                "nets": {n: ckpt.cpu_state(m) for n, m in self.stage.trained().items()},
                "ema": ckpt.cpu_state(ema.module),
                "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
                "scalers": {n: s.state_dict() for n, s in self.scalers.items()},
                "rng": rng_state(),
                "global_batch": cfg.data.batch_size * self.world.world_size,
                "config": to_mapping(cfg),
            }, path)
            ckpt.prune(folder, cfg.keep_checkpoints)
            self.log(f"saved {path}")
        barrier(self.world)
        return path

    def metadata(self, step: int) -> CheckpointMetadata:
        """What a runtime checkpoint of this run records (see ``checkpoints``)."""
        model, network = ckpt.network_config(self.stage.net)
        identity = self.stage.identity
        return CheckpointMetadata(
            model=model, network=to_mapping(network), stage=self.stage_type.name, run=self.config.name,
            step=step, recognizer=getattr(identity, "recognizer", None) if identity is not None else None,
            settings=to_mapping(self.config),
        )

    def _resume(self, resume: Path | str, folder: Path, ema: EMA) -> int:
        if str(resume) == "auto":
            states = ckpt.list_states(folder)
            if not states:
                self.log(f"resume auto: no state in {folder}, starting fresh")
                return 0
            resume = states[-1][1]
        state: dict[str, Any] = ckpt.load_state(Path(resume))
        if state.get("stage") != self.stage_type.name:
            raise ConfigError(f"{resume} is a {state.get('stage')} state, not {self.stage_type.name}")
        for name, net in self.stage.trained().items():
            net.load_state_dict(state["nets"][name], strict=True)
        ema.load_state_dict({k: v.to(self.device) for k, v in state["ema"].items()})
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
            self.scalers[name].load_state_dict(state["scalers"][name])
        set_rng_state(state["rng"])
        global_batch = self.config.data.batch_size * self.world.world_size
        if state["global_batch"] != global_batch:
            self.log(f"warning: global batch {global_batch} differs from the saved run's {state['global_batch']}; "
                     "the data order will not repeat the original run")
        self.log(f"resumed from {resume} at step {state['step']}")
        return int(state["step"])
