"""Training configs: YAML presets read into frozen, validated dataclasses.

The seed's ``configs/train.yml``/``test.yml``, done properly (chapter 9 and the command line).
A config file has the sections below; every field has a default, so a file only lists what it
changes. :func:`load_config` reads a preset name (``cifar10``, ``cifar10-small``, ``digits``,
``toy2d``, shipped in ``ddpm_edu/configs/``) or a path, applies ``--set``-style overrides such as
``"train.steps=2000"`` and validates everything at once: unknown keys (with the nearest valid
key suggested), wrong types and out-of-range values all end up in ONE :class:`ConfigError` that
names the file and every offending key.

YAML is read with a ``yaml.SafeLoader`` subclass that also reads ``1e-4`` as a float (plain
YAML 1.1 reads an exponent without a dot as a string).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Union

import yaml

__all__ = [
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "DiffusionConfig",
    "TrainConfig",
    "SampleConfig",
    "WandbConfig",
    "Config",
    "load_config",
    "config_from_dict",
    "config_to_dict",
    "config_hash",
    "dump_config",
    "preset_names",
    "preset_path",
    "cache_root",
    "YamlLoader",
]

CONFIG_DIR = Path(__file__).with_name("configs")


class ConfigError(ValueError):
    """A config that cannot be used. The message lists every problem, one per line."""


# --------------------------------------------------------------------------- YAML loading
class YamlLoader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-4``, ``2E5`` and ``.5`` as floats (YAML 1.2 style)."""


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


# --------------------------------------------------------------------------- the dataclasses
@dataclass(frozen=True)
class DataConfig:
    dataset: Literal["cifar10", "digits", "toy2d"] = "cifar10"  # which data set to train on
    root: str = "~/.cache/ddpm_edu/data"  # CIFAR-10 lives in <root>/cifar-10-batches-py/
    download: bool = True  # try to download CIFAR-10 when it is missing (needs internet)
    verify_md5: bool = True  # check CIFAR-10's published md5 sums; false only for re-packed copies or test fixtures
    hflip: bool = True  # random horizontal flips (CIFAR-10 only; digits and 2-D points are never flipped)
    toy: str = "moons"  # the 2-D data set when dataset = toy2d (see ddpm_edu.toy.TOY_DATASETS)
    toy_n: int = 8192  # how many 2-D points make up the toy training set
    batch_size: int = 128  # images (or points) per optimiser step
    device_resident: Union[Literal["auto"], bool] = "auto"  # keep the whole set on the device; auto: on CUDA only


@dataclass(frozen=True)
class ModelConfig:
    kind: Literal["unet", "mlp"] = "unet"  # U-Net for images, MLP for 2-D points
    preset: Union[str, None] = None  # a name from ddpm_edu.unet.PRESETS; the fields below override it
    ch: Union[int, None] = None  # U-Net base channel count (None: the preset's, else 128)
    ch_mult: Union[tuple[int, ...], None] = None  # channel multiplier per resolution level
    num_res_blocks: Union[int, None] = None  # residual blocks per level
    attn_resolutions: Union[tuple[int, ...], None] = None  # feature-map sizes with self-attention
    dropout: Union[float, None] = None  # dropout in residual blocks (the paper: 0.1 on CIFAR-10)
    num_heads: Union[int, None] = None  # attention heads
    hidden: int = 128  # MLP width (kind = mlp)
    layers: int = 3  # MLP hidden layers (kind = mlp)
    t_dim: int = 64  # MLP time-embedding size (kind = mlp)


@dataclass(frozen=True)
class DiffusionConfig:
    schedule: Literal["linear", "cosine", "quadratic", "sigmoid"] = "linear"  # beta_t schedule (cosine ignores beta_1, beta_T)
    T: int = 1000  # number of diffusion steps
    beta_1: float = 1e-4  # first variance
    beta_T: float = 0.02  # last variance
    target: Literal["eps", "v"] = "eps"  # what the network predicts (Ho et al.: eps)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 800_000  # optimiser steps; training stops exactly here
    lr: float = 2e-4  # peak learning rate
    optimizer: Literal["adam", "adamw"] = "adam"  # Ho et al. use Adam
    weight_decay: float = 0.0  # (decoupled for adamw)
    warmup: int = 5000  # linear learning-rate warmup over this many steps
    grad_clip: Union[float, None] = 1.0  # clip the global grad norm to this (None: no clipping)
    ema_decay: float = 0.9999  # EMA of the weights, used for sampling
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 / fp16+GradScaler on GPUs, fp32 on CPU
    compile: bool = False  # torch.compile the model
    channels_last: bool = False  # channels_last memory format (faster convs on recent GPUs)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"  # auto: cuda, then mps, then cpu
    log_every: int = 100  # steps between lines of metrics.jsonl
    sample_every: int = 10_000  # steps between sample grids + trajectory GIFs (0: only at the end)
    ckpt_every: int = 5000  # steps between checkpoints (0: only at the end)
    keep_last: int = 3  # checkpoints kept on disk
    resume: str = "auto"  # auto: latest checkpoint of the run dir if any; never; or a checkpoint path
    run_root: str = "runs"  # runs go to <run_root>/<name>/ (on Colab: a Google Drive folder)
    progress: bool = True  # show a tqdm progress bar


@dataclass(frozen=True)
class SampleConfig:
    sampler: Literal["ddpm", "ddim"] = "ddpm"  # Algorithm 2, or DDIM
    steps: int = 100  # DDIM model calls (ignored by ddpm, which takes T)
    eta: float = 0.0  # DDIM stochasticity (0: deterministic)
    variance: Literal["beta_tilde", "beta"] = "beta_tilde"  # DDPM sigma_t^2
    clip_x0: Union[float, None] = 1.0  # clamp x0_hat to [-c, c] while sampling (None: off)
    num_samples: int = 64  # images (or points) per sample grid
    frames: int = 30  # frames in a trajectory GIF
    fps: float = 10.0  # GIF frames per second


@dataclass(frozen=True)
class WandbConfig:
    enabled: bool = False  # log to Weights & Biases (a no-op when wandb is missing or WANDB_MODE=disabled)
    project: Union[str, None] = None  # None: $WANDB_PROJECT, else "ddpm-edu"
    entity: Union[str, None] = None  # None: $WANDB_ENTITY, else your default entity


@dataclass(frozen=True)
class Config:
    name: str = "run"  # the run's name: its folder is <train.run_root>/<name>/
    seed: int = 0  # seeds the model init, data order, t and eps draws, dropout
    data: DataConfig = field(default_factory=DataConfig)  # what to train on
    model: ModelConfig = field(default_factory=ModelConfig)  # the network
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)  # the forward process
    train: TrainConfig = field(default_factory=TrainConfig)  # the optimisation
    sample: SampleConfig = field(default_factory=SampleConfig)  # how samples are drawn
    wandb: WandbConfig = field(default_factory=WandbConfig)  # optional experiment tracking
    source: str = field(default="<dict>", compare=False)  # where the config came from (not a YAML key)

    def replace(self, **sections: Any) -> "Config":
        """A copy with whole fields replaced, e.g. ``cfg.replace(train=dataclasses.replace(cfg.train, steps=10))``."""
        return dataclasses.replace(self, **sections)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "diffusion": DiffusionConfig,
            "train": TrainConfig, "sample": SampleConfig, "wandb": WandbConfig}
TOP_LEVEL = ("name", "seed")


# --------------------------------------------------------------------------- presets and paths
def preset_names() -> list[str]:
    """The presets shipped with the package (file names in ddpm_edu/configs/ without .yml)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yml"))


def preset_path(name_or_path: str | os.PathLike) -> Path:
    """Resolve a preset name or a YAML path to a file; ConfigError when neither exists."""
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    if (CONFIG_DIR / f"{name_or_path}.yml").is_file():
        return CONFIG_DIR / f"{name_or_path}.yml"
    near = difflib.get_close_matches(str(name_or_path), preset_names(), n=1)
    hint = f" Did you mean '{near[0]}'?" if near else ""
    raise ConfigError(
        f"Config '{name_or_path}' is neither a file nor a preset.{hint} "
        f"Presets: {', '.join(preset_names())}; or pass the path of a YAML file."
    )


def cache_root() -> Path:
    """Where trained book models are cached: $DDPM_EDU_CACHE, else ~/.cache/ddpm_edu."""
    return Path(os.environ.get("DDPM_EDU_CACHE") or "~/.cache/ddpm_edu").expanduser()


# --------------------------------------------------------------------------- loading
def load_config(preset_or_path: str | os.PathLike, overrides: Iterable[str] = ()) -> Config:
    """Read a preset or YAML file, apply ``key.sub=value`` overrides and validate.

    Override values are parsed as YAML (``model.ch_mult=[1,2]``, ``train.grad_clip=null``).
    Raises :class:`ConfigError` listing every problem.
    """
    path = preset_path(preset_or_path)
    try:
        raw = yaml.load(path.read_text(), Loader=YamlLoader)
    except yaml.YAMLError as e:
        raise ConfigError(f"Config file {path} is not valid YAML: {e}") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of sections, got {type(raw).__name__}.")
    problems: list[str] = []
    raw = apply_overrides(raw, overrides, problems)
    return config_from_dict(raw, source=str(path), _problems=problems)


def apply_overrides(raw: dict, overrides: Iterable[str], problems: list[str]) -> dict:
    """Apply ``a.b=value`` strings to a nested dict (a copy); malformed ones are added to ``problems``."""
    raw = json.loads(json.dumps(raw, default=list))  # deep copy of plain data
    for item in overrides:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--set {item!r}: expected KEY=VALUE, e.g. train.steps=2000")
            continue
        try:
            value = yaml.load(text, Loader=YamlLoader) if text.strip() else None
        except yaml.YAMLError:
            value = text
        parts = key.split(".")
        node = raw
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        node[parts[-1]] = value
    return raw


def config_from_dict(raw: dict, source: str = "<dict>", _problems: list[str] | None = None) -> Config:
    """Build and validate a :class:`Config` from nested plain data (as YAML gives)."""
    problems = list(_problems or [])
    top: dict[str, Any] = {}
    for key, value in raw.items():
        if key in SECTIONS:
            if value is None:
                value = {}
            if not isinstance(value, dict):
                problems.append(f"{key}: must be a mapping of {SECTIONS[key].__name__} fields, got {value!r}")
                continue
            top[key] = _build_section(SECTIONS[key], value, key, problems)
        elif key in TOP_LEVEL:
            _set_field(top, key, key, value, typing.get_type_hints(Config)[key], problems)
        else:
            problems.append(f"{key}: unknown key{_suggest(key, list(SECTIONS) + list(TOP_LEVEL))}")
    cfg = Config(**top, source=source)  # fields with problems keep their defaults here
    problems += _check_ranges(cfg)
    if problems:
        raise ConfigError(
            f"Invalid config {source}: {len(problems)} problem{'s' if len(problems) > 1 else ''}:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    return cfg


def _build_section(cls: type, values: dict, prefix: str, problems: list[str]):
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in hints:
            problems.append(f"{prefix}.{key}: unknown key{_suggest(str(key), list(hints), prefix)}")
            continue
        _set_field(kwargs, key, f"{prefix}.{key}", value, hints[key], problems)
    try:
        return cls(**kwargs)
    except TypeError as e:  # pragma: no cover - every key was checked above
        problems.append(f"{prefix}: {e}")
        return cls()


def _set_field(out: dict, key: str, where: str, value: Any, tp: Any, problems: list[str]) -> None:
    """out[key] = value coerced to tp, or a problem naming ``where`` (the dotted key) and the expected type."""
    ok, v = _coerce(value, tp)
    if ok:
        out[key] = v
    else:
        problems.append(f"{where}: expected {_describe(tp)}, got {value!r}")


def _suggest(key: str, valid: list[str], prefix: str = "") -> str:
    near = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    full = f"{prefix}.{near[0]}" if (near and prefix) else (near[0] if near else "")
    return f"; did you mean '{full}'?" if near else f"; valid keys: {', '.join(valid)}"


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """(True, value converted to ``tp``) or (False, None). Integral floats count as ints."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            ok, v = _coerce(value, arg)
            if ok:
                return True, v
        return False, None
    if origin is Literal:
        return (value in typing.get_args(tp) and type(value) in {type(a) for a in typing.get_args(tp)}), value
    if tp is type(None):
        return value is None, None
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        if isinstance(value, bool):
            return False, None
        if isinstance(value, int):
            return True, value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return True, int(value)
        return False, None
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        return False, None
    if tp is str:
        return isinstance(value, str), value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False, None
        out = []
        for v in value:
            ok, c = _coerce(v, typing.get_args(tp)[0])
            if not ok:
                return False, None
            out.append(c)
        return True, tuple(out)
    raise TypeError(f"unsupported config type {tp!r}")  # pragma: no cover


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(tp)[0])}s"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def _check_ranges(c: Config) -> list[str]:
    """Every out-of-range value and inconsistent combination, as 'key: message' strings."""
    p: list[str] = []

    def need(cond: bool, key: str, msg: str, value: Any) -> None:
        if not cond:
            p.append(f"{key}: {msg}, got {value!r}")

    need(bool(c.name) and "/" not in c.name and c.name not in (".", ".."), "name", "must be a non-empty folder name without '/'", c.name)
    need(c.seed >= 0, "seed", "must be >= 0", c.seed)
    d, m, f, t, s = c.data, c.model, c.diffusion, c.train, c.sample
    need(d.batch_size >= 1, "data.batch_size", "must be >= 1", d.batch_size)
    need(d.toy_n >= 1, "data.toy_n", "must be >= 1", d.toy_n)
    if d.dataset == "toy2d":
        names = _toy_names()
        need(names is None or d.toy in names, "data.toy", f"must be one of {names}", d.toy)
    want = "mlp" if d.dataset == "toy2d" else "unet"
    need(m.kind == want, "model.kind", f"data.dataset={d.dataset} needs model.kind={want}", m.kind)
    if m.kind == "unet":
        presets = _unet_presets()
        need(m.preset is None or presets is None or m.preset in presets, "model.preset",
             f"must be one of {sorted(presets or [])} or null", m.preset)
    for key in ("ch", "num_res_blocks", "num_heads"):
        v = getattr(m, key)
        need(v is None or v >= 1, f"model.{key}", "must be >= 1", v)
    need(m.ch_mult is None or (len(m.ch_mult) > 0 and min(m.ch_mult) >= 1), "model.ch_mult", "must be a non-empty list of integers >= 1", m.ch_mult)
    need(m.dropout is None or 0.0 <= m.dropout < 1.0, "model.dropout", "must lie in [0, 1)", m.dropout)
    for key in ("hidden", "layers", "t_dim"):
        need(getattr(m, key) >= 1, f"model.{key}", "must be >= 1", getattr(m, key))
    need(f.T >= 1, "diffusion.T", "must be >= 1 (the number of diffusion steps)", f.T)
    for key in ("beta_1", "beta_T"):
        v = getattr(f, key)
        need(math.isfinite(v) and 0.0 < v < 1.0, f"diffusion.{key}", "must lie in the open interval (0, 1)", v)
    if f.beta_1 > f.beta_T:
        p.append(f"diffusion.beta_1: must be <= diffusion.beta_T (noise grows with t), got beta_1={f.beta_1!r} > beta_T={f.beta_T!r}")
    need(t.steps >= 1, "train.steps", "must be >= 1", t.steps)
    need(math.isfinite(t.lr) and t.lr > 0, "train.lr", "must be a positive number", t.lr)
    need(math.isfinite(t.weight_decay) and t.weight_decay >= 0, "train.weight_decay", "must be >= 0", t.weight_decay)
    need(t.warmup >= 0, "train.warmup", "must be >= 0", t.warmup)
    need(t.grad_clip is None or (math.isfinite(t.grad_clip) and t.grad_clip > 0), "train.grad_clip", "must be > 0 or null", t.grad_clip)
    need(0.0 <= t.ema_decay <= 1.0, "train.ema_decay", "must lie in [0, 1]", t.ema_decay)
    need(t.log_every >= 1, "train.log_every", "must be >= 1", t.log_every)
    for key in ("sample_every", "ckpt_every"):
        need(getattr(t, key) >= 0, f"train.{key}", "must be >= 0 (0: only at the end)", getattr(t, key))
    need(t.keep_last >= 1, "train.keep_last", "must be >= 1", t.keep_last)
    need(bool(t.resume), "train.resume", "must be auto, never or a checkpoint path", t.resume)
    need(bool(t.run_root), "train.run_root", "must be a folder", t.run_root)
    need(s.steps >= 1 and (s.sampler != "ddim" or s.steps <= f.T), "sample.steps", f"must lie in 1..T (T = {f.T})", s.steps)
    need(math.isfinite(s.eta) and s.eta >= 0, "sample.eta", "must be >= 0", s.eta)
    need(s.clip_x0 is None or s.clip_x0 > 0, "sample.clip_x0", "must be > 0 or null", s.clip_x0)
    need(s.num_samples >= 1, "sample.num_samples", "must be >= 1", s.num_samples)
    need(s.frames >= 2, "sample.frames", "must be >= 2", s.frames)
    need(math.isfinite(s.fps) and s.fps > 0, "sample.fps", "must be > 0", s.fps)
    return p


def _toy_names() -> list[str] | None:
    try:
        from .toy import TOY_DATASETS
    except ImportError:  # pragma: no cover - toy.py not present yet
        return None
    return list(TOY_DATASETS)


def _unet_presets() -> list[str] | None:
    try:
        from .unet import PRESETS
    except ImportError:  # pragma: no cover
        return None
    return list(PRESETS)


# --------------------------------------------------------------------------- writing and hashing
def config_to_dict(cfg: Config) -> dict:
    """The config as nested plain data (lists for tuples), without ``source``: what YAML would hold."""
    out = {"name": cfg.name, "seed": cfg.seed}
    for key in SECTIONS:
        out[key] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(getattr(cfg, key)).items()}
    return out


def dump_config(cfg: Config) -> str:
    """The config as YAML text that :func:`load_config` reads back to an equal config."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)


# Fields that do not change the trained weights: left out of :func:`config_hash`.
_NOT_HASHED = {
    "name": None,
    "data": ("root", "download", "verify_md5", "device_resident"),
    "train": ("device", "log_every", "sample_every", "ckpt_every", "keep_last", "resume", "run_root", "progress", "compile"),
    "sample": None,
    "wandb": None,
}


def config_hash(cfg: Config, length: int = 16) -> str:
    """A short hex digest of everything in ``cfg`` that changes the trained model (the book's cache key)."""
    d = config_to_dict(cfg)
    for key, sub in _NOT_HASHED.items():
        if sub is None:
            d.pop(key, None)
        else:
            for k in sub:
                d[key].pop(k, None)
    text = json.dumps(d, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
