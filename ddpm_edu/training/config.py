"""Training configs: YAML presets read into frozen, validated dataclasses.

The seed's ``configs/train.yml``/``test.yml``, done properly (chapter 9 and the command line).
A config file has the sections below; every field has a default, so a file only lists what it
changes. :func:`load_config` reads a preset name (``cifar10``, ``cifar10-small``, ``digits``,
``digits-guided``, ``toy2d``, ``folder``, shipped in ``ddpm_edu/training/configs/``) or a path, applies
``--set``-style overrides such as ``"train.steps=2000"`` and validates everything at once: unknown keys
(with the nearest valid key suggested), wrong types and out-of-range values all end up in ONE
:class:`ConfigError` that names the file and every offending key.

The dataclasses are pydantic dataclasses, so every way of making one validates it: the
constructor, :meth:`Config.replace` and ``dataclasses.replace``. Schedule and U-Net arguments are
checked by :func:`ddpm_edu.schedules.schedule_problems` and :func:`ddpm_edu.nets.unet.unet_problems`,
and the valid names come from the modules that use them. The sampler's settings are checked
by :func:`ddpm_edu.sampling.sampler_problems`, and an image folder's by
:func:`ddpm_edu.data.folder.folder_problems`. Checks that relate several fields (beta_1 <= beta_T, the
model kind and U-Net depth for the data set, micro-batches that split the batch, DDIM steps <= T)
run once those fields are valid themselves. YAML 1.1 reads ``1e-4`` as a string; float fields parse it.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import os
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Literal, Sequence

import pydantic
import yaml
from pydantic import AfterValidator, BeforeValidator, Field, StrictBool, ValidationError

from ddpm_edu.data import CLASSES, DEFAULT_ROOT, example_shape
from ddpm_edu.data.folder import folder_problems
from ddpm_edu.data.toy import TOY_DATASETS
from ddpm_edu.losses import TARGETS
from ddpm_edu.nets.unet import PRESETS, unet_problems
from ddpm_edu.sampling import sampler_problems
from ddpm_edu.schedules import KINDS, schedule_problems
from ddpm_edu.training.configs import CONFIG_DIR, preset_names

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
    "apply_overrides",
    "config_to_dict",
    "dump_config",
    "preset_names",
    "preset_path",
]

class ConfigError(ValueError):
    """A config that cannot be used. The message lists every problem, one per line."""

    def __init__(self, message: str, problems: Sequence[str] = ()):
        super().__init__(message)
        self.problems = list(problems)  # "dotted.key: what is wrong" lines, when the message lists them

    @classmethod
    def listing(cls, source: str, problems: Sequence[str]) -> ConfigError:
        """The error for ``problems`` found in the config from ``source`` (a file, or how it was made)."""
        n = len(problems)
        lines = "\n".join(f"  - {p}" for p in problems)
        return cls(f"Invalid config {source}: {n} problem{'s' if n > 1 else ''}:\n{lines}", problems)


# --------------------------------------------------------------------------- value types
def _checked_by(problems: Callable[..., dict[str, str]], arg: str) -> AfterValidator:
    """A field check that asks the library's own ``*_problems`` function about argument ``arg``."""

    def check(value: Any) -> Any:
        bad = None if value is None else problems(**{arg: value}).get(arg)
        if bad:
            raise ValueError(bad)
        return value

    return AfterValidator(check)


def _folder_name(name: str) -> str:
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"must be a non-empty folder name without '/', got {name!r}")
    return name


def _whole_number(value: Any) -> Any:
    """YAML 1.1 reads ``8e5`` as a string and ``true`` as a bool: the first is the integer 800000, the second no integer."""
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {value!r}")
    if isinstance(value, str):
        try:
            return float(value)  # pydantic then takes a whole float as an int and refuses 0.5
        except ValueError:
            pass
    return value


Int = Annotated[int, BeforeValidator(_whole_number)]
Bool = StrictBool  # true or false only: no 1, "yes" or "on"
PosInt = Annotated[Int, Field(ge=1)]
NonNegInt = Annotated[Int, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
NonEmptyStr = Annotated[str, Field(min_length=1)]
FolderName = Annotated[str, AfterValidator(_folder_name)]
_unet_arg = functools.partial(_checked_by, unet_problems)  # checked as UNet checks it
_schedule_arg = functools.partial(_checked_by, schedule_problems)  # checked as Schedule checks it
_sampler_arg = functools.partial(_checked_by, sampler_problems)  # checked as the samplers check it


def _validated(where: str) -> Callable[[type], type]:
    """Make a class a frozen pydantic dataclass whose constructor raises :class:`ConfigError`.

    ``where`` is the section's key ("" for :class:`Config`); problems are named ``where.field``.
    Nested sections built from plain data are validated by pydantic without this constructor;
    their problems reach the caller inside the outer ValidationError.

    Why wrap pydantic's ``__init__`` rather than use a hook of pydantic's own (checked on 2.14):
    every way of making a config, ``TrainConfig(lr=-1)`` and ``dataclasses.replace`` included, must
    raise ConfigError with dotted keys and key suggestions. Pydantic always installs its own
    ``__init__``, and any ValueError that a validator raises, a ``model_validator(mode="wrap")``
    that rewrites the problems included, leaves that ``__init__`` re-wrapped as a ValidationError
    ("Value error, ..." followed by the input), never as ConfigError. Validating with one
    ``TypeAdapter`` at the entry points leaves direct construction with pydantic's message, which
    has neither the section's key nor a suggestion. Only an exception that is not a ValueError gets
    through a validator unchanged; pydantic does not promise that, and ConfigError would have to
    stop being a ValueError.
    """
    settings = pydantic.ConfigDict(extra="forbid", allow_inf_nan=False)

    def wrap(cls: type) -> type:
        cls = pydantic.dataclasses.dataclass(frozen=True, config=settings)(cls)
        init = cls.__init__

        @functools.wraps(init)
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            try:
                init(self, *args, **kwargs)
            except ValidationError as e:
                source = kwargs.get("source", f"<{cls.__name__}>")
                raise ConfigError.listing(source, _problems(e, where)) from None

        cls.__init__ = __init__
        return cls

    return wrap


def _fail_if(problems: list[str]) -> None:
    """Raise the problems found by a ``__post_init__`` check (keys relative to the section)."""
    if problems:
        raise ConfigError("; ".join(problems), problems)


# --------------------------------------------------------------------------- the dataclasses
@_validated("data")
class DataConfig:
    """The ``data:`` section: which data set, where it lives and how it is batched."""

    dataset: Literal["cifar10", "digits", "toy2d", "folder"] = "cifar10"  # which data set to train on
    root: str = DEFAULT_ROOT  # CIFAR-10 lives in <root>/cifar-10-batches-py/; folder: the folder of your images
    download: Bool = True  # try to download CIFAR-10 when it is missing (needs internet)
    verify_md5: Bool = True  # check CIFAR-10's published md5 sums; false only for re-packed copies or test fixtures
    hflip: Bool = True  # random horizontal flips (CIFAR-10 and folders; digits and 2-D points are never flipped)
    image_size: PosInt | None = None  # folder: resize the short side and centre-crop to this (None: 32)
    channels: Literal[1, 3] | None = None  # folder: 1 (greyscale) or 3 (RGB) (None: 3)
    skip_bad: Bool = False  # folder: leave out files that cannot be read, and say how many, instead of stopping
    toy: Literal[TOY_DATASETS] = "moons"  # the 2-D data set when dataset = toy2d
    toy_n: PosInt = 8192  # how many 2-D points make up the toy training set
    batch_size: PosInt = 128  # images (or points) per optimiser step: the global batch, split evenly over torchrun's processes
    device_resident: Literal["auto", True, False] = "auto"  # keep the whole set on the device; auto: on CUDA only
    labels: Bool = False  # train a class-conditional model on the labels (digits, cifar10; chapter 10)

    def __post_init__(self) -> None:
        bad = folder_problems(self.dataset, self.root, self.image_size, self.channels, self.skip_bad)
        _fail_if([f"{k}: {msg}" for k, msg in bad.items()])


UNET_FIELDS = ("ch", "ch_mult", "num_res_blocks", "attn_resolutions", "dropout", "num_heads")


@_validated("model")
class ModelConfig:
    """The ``model:`` section: the U-Net (a preset and its overrides) or the MLP for 2-D points."""

    kind: Literal["unet", "mlp"] = "unet"  # U-Net for images, MLP for 2-D points
    preset: Literal[tuple(PRESETS)] | None = None  # a name from ddpm_edu.nets.unet.PRESETS; the fields below override it
    ch: Annotated[Int | None, _unet_arg("ch")] = None  # U-Net base channel count (None: the preset's, else 128)
    ch_mult: Annotated[tuple[Int, ...] | None, _unet_arg("ch_mult")] = None  # channel multiplier per resolution level
    num_res_blocks: Annotated[Int | None, _unet_arg("num_res_blocks")] = None  # residual blocks per level
    attn_resolutions: tuple[Int, ...] | None = None  # feature-map sizes with self-attention
    dropout: Annotated[float | None, _unet_arg("dropout")] = None  # dropout in residual blocks (the paper: 0.1 on CIFAR-10)
    num_heads: Annotated[Int | None, _unet_arg("num_heads")] = None  # attention heads
    hidden: PosInt = 128  # MLP width (kind = mlp)
    layers: PosInt = 3  # MLP hidden layers (kind = mlp)
    t_dim: PosInt = 64  # MLP time-embedding size (kind = mlp)

    def unet_overrides(self) -> dict[str, Any]:
        """The U-Net fields as keyword arguments for :func:`ddpm_edu.nets.unet.unet_kwargs` (None: the preset's)."""
        return {k: getattr(self, k) for k in UNET_FIELDS}


@_validated("diffusion")
class DiffusionConfig:
    """The ``diffusion:`` section: the beta schedule, T, and what the network predicts."""

    schedule: Literal[KINDS] = "linear"  # beta_t schedule (cosine ignores beta_1, beta_T)
    T: Annotated[Int, _schedule_arg("T")] = 1000  # number of diffusion steps
    beta_1: Annotated[float, _schedule_arg("beta_1")] = 1e-4  # first variance
    beta_T: Annotated[float, _schedule_arg("beta_T")] = 0.02  # last variance
    target: Literal[TARGETS] = "eps"  # what the network predicts (Ho et al.: eps)

    def __post_init__(self) -> None:
        bad = schedule_problems(self.T, self.beta_1, self.beta_T)  # each is fine: this is beta_1 <= beta_T
        _fail_if([f"{k}: {msg}" for k, msg in bad.items()])


@_validated("train")
class TrainConfig:
    """The ``train:`` section: the optimiser, precision, device, logging, checkpoints and resume."""

    steps: PosInt = 800_000  # optimiser steps; training stops exactly here
    accumulate: PosInt = 1  # micro-batches per optimiser step (gradient accumulation); divides each process's batch
    lr: PosFloat = 2e-4  # peak learning rate
    optimizer: Literal["adam", "adamw"] = "adam"  # Ho et al. use Adam
    weight_decay: NonNegFloat = 0.0  # (decoupled for adamw)
    warmup: NonNegInt = 5000  # linear learning-rate warmup over this many steps
    grad_clip: PosFloat | None = 1.0  # clip the global grad norm to this (None: no clipping)
    ema_decay: Annotated[float, Field(ge=0, le=1)] = 0.9999  # EMA of the weights, used for sampling
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 / fp16+GradScaler on GPUs, fp32 on CPU
    compile: Bool = False  # torch.compile the model
    channels_last: Bool = False  # channels_last memory format (faster convs on recent GPUs)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"  # auto: cuda, then mps, then cpu
    log_every: PosInt = 100  # steps between lines of metrics.jsonl
    sample_every: NonNegInt = 10_000  # steps between sample grids + trajectory GIFs (0: only at the end)
    ckpt_every: NonNegInt = 5000  # steps between checkpoints (0: only at the end)
    keep_last: PosInt = 3  # checkpoints kept on disk
    resume: NonEmptyStr = "auto"  # auto: latest checkpoint of the run dir if any; never; or a checkpoint path
    run_root: NonEmptyStr = "runs"  # runs go to <run_root>/<name>/ (on Colab: a Google Drive folder)
    progress: Bool = True  # show a tqdm progress bar
    p_uncond: Annotated[float, Field(ge=0, lt=1)] | None = None  # label dropout with data.labels (None: build.P_UNCOND, 0.1)


@_validated("sample")
class SampleConfig:
    """The ``sample:`` section: how the run's sample grids and trajectory GIFs are drawn."""

    sampler: Annotated[str, _sampler_arg("sampler")] = "ddpm"  # "ddpm" (Algorithm 2) or "ddim"
    steps: Annotated[Int, _sampler_arg("steps")] = 100  # DDIM model calls, at most diffusion.T (ddpm takes T)
    eta: Annotated[float, _sampler_arg("eta")] = 0.0  # DDIM stochasticity (0: deterministic)
    variance: Annotated[str, _sampler_arg("variance")] = "beta_tilde"  # DDPM sigma_t^2: "beta_tilde" or "beta"
    clip_x0: PosFloat | None = 1.0  # clamp x0_hat to [-c, c] while sampling (None: off)
    num_samples: PosInt = 64  # images (or points) per sample grid
    frames: Annotated[Int, Field(ge=2)] = 30  # frames in a trajectory GIF
    fps: PosFloat = 10.0  # GIF frames per second


@_validated("wandb")
class WandbConfig:
    """The ``wandb:`` section: optional logging to Weights & Biases."""

    enabled: Bool = False  # log to Weights & Biases (a no-op when wandb is missing or WANDB_MODE=disabled)
    project: str | None = None  # None: $WANDB_PROJECT, else "ddpm-edu"
    entity: str | None = None  # None: $WANDB_ENTITY, else your default entity


@_validated("")
class Config:
    """A whole config: a preset or YAML file, validated. Each field's meaning is the comment beside it in the source."""

    name: FolderName = "run"  # the run's name: its folder is <train.run_root>/<name>/
    seed: NonNegInt = 0  # seeds the model init, data order, t and eps draws, dropout
    data: DataConfig = field(default_factory=DataConfig)  # what to train on
    model: ModelConfig = field(default_factory=ModelConfig)  # the network
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)  # the forward process
    train: TrainConfig = field(default_factory=TrainConfig)  # the optimisation
    sample: SampleConfig = field(default_factory=SampleConfig)  # how samples are drawn
    wandb: WandbConfig = field(default_factory=WandbConfig)  # optional experiment tracking
    source: str = field(default="<dict>", compare=False)  # where the config came from (not a YAML key)

    def replace(self, **sections: Any) -> Config:
        """A copy with whole fields replaced, e.g. ``cfg.replace(train=dataclasses.replace(cfg.train, steps=10))``."""
        return dataclasses.replace(self, **sections)

    def __post_init__(self) -> None:
        d, m = self.data, self.model
        problems = []
        want = "mlp" if d.dataset == "toy2d" else "unet"
        if m.kind != want:
            problems.append(f"model.kind: data.dataset={d.dataset} needs model.kind={want}, got {m.kind!r}")
        elif m.kind == "unet":
            _, h, _ = example_shape(d.dataset, d.image_size, d.channels)
            bad = unet_problems(m.preset, **m.unet_overrides(), image_size=h).get("image_size")
            if bad:
                problems.append(f"model.ch_mult: {bad} (the size of data.dataset={d.dataset})")
        if d.labels and d.dataset not in CLASSES:
            problems.append(f"data.labels: data.dataset={d.dataset} has no labels; these have: {', '.join(CLASSES)}")
        if self.train.p_uncond is not None and not d.labels:
            problems.append("train.p_uncond: label dropout needs data.labels=true; leave it unset without labels")
        if d.batch_size % self.train.accumulate:
            problems.append(f"train.accumulate: {self.train.accumulate} micro-batches must split data.batch_size = "
                            f"{d.batch_size} evenly; use a divisor of it")
        sc = self.sample  # each setting is fine: this is DDIM's steps <= T
        bad = sampler_problems(sc.sampler, sc.steps, sc.eta, sc.variance, self.diffusion.T)
        problems += [f"sample.{k}: {msg}" for k, msg in bad.items()]
        _fail_if(problems)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "diffusion": DiffusionConfig,
            "train": TrainConfig, "sample": SampleConfig, "wandb": WandbConfig}
_FROM_DATA = pydantic.TypeAdapter(Config)  # validates nested plain data as a Config


# --------------------------------------------------------------------------- problems as dotted keys
def _problems(e: ValidationError, where: str = "") -> list[str]:
    """Pydantic's errors as "dotted.key: message" lines, with a suggestion for each unknown key."""
    out = []
    for err in e.errors():
        key = _dotted(where, err["loc"])
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, ConfigError):  # a __post_init__ check: its keys are relative to ``key``
            out += [f"{key}.{p}" if key else p for p in cause.problems]
        elif err["type"] in ("unexpected_keyword_argument", "extra_forbidden", "invalid_key"):
            parent, _, name = key.rpartition(".")
            out.append(f"{key}: unknown key{_suggest(name, _keys(parent), parent)}")
        elif isinstance(cause, ValueError):  # a field's own check, e.g. name
            out.append(f"{key}: {cause}")
        else:
            out.append(f"{key}: {err['msg']}, got {err['input']!r}")
    return out


def _dotted(where: str, loc: tuple) -> str:
    """``where`` and pydantic's ``loc`` as one key, e.g. ``train.lr`` or ``model.ch_mult[1]``."""
    key = where
    for part in loc:
        if isinstance(part, int) and key:
            key += f"[{part}]"
        else:
            key = f"{key}.{part}" if key else str(part)
    return key


def _keys(section: str) -> list[str]:
    """The valid keys of a section ("" for the top level)."""
    cls = SECTIONS.get(section, Config)
    return [f.name for f in dataclasses.fields(cls) if f.name != "source"]


def _suggest(key: str, valid: list[str], prefix: str = "") -> str:
    """"; did you mean 'prefix.nearest'?", or the list of valid keys when none is near."""
    near = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    full = f"{prefix}.{near[0]}" if (near and prefix) else (near[0] if near else "")
    return f"; did you mean '{full}'?" if near else f"; valid keys: {', '.join(valid)}"


# --------------------------------------------------------------------------- presets and paths
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



# --------------------------------------------------------------------------- loading
def load_config(preset_or_path: str | os.PathLike, overrides: Iterable[str] = ()) -> Config:
    """Read a preset or YAML file, apply ``key.sub=value`` overrides and validate.

    Override values are parsed as YAML (``model.ch_mult=[1,2]``, ``train.grad_clip=null``).
    Raises :class:`ConfigError` listing every problem.
    """
    path = preset_path(preset_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"Config file {path} is not valid YAML: {e}") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of sections, got {type(raw).__name__}.")
    return config_from_dict(raw, source=str(path), overrides=overrides)


def config_from_dict(raw: dict, source: str = "<dict>", overrides: Iterable[str] = ()) -> Config:
    """Validate nested plain data (as YAML gives), after applying ``key.sub=value`` overrides, as a :class:`Config`."""
    problems: list[str] = []
    raw = _set(raw, overrides, problems)
    if "source" in raw:
        problems.append(f"source: unknown key; valid keys: {', '.join(_keys(''))}")
    raw = {k: ({} if v is None and k in SECTIONS else v) for k, v in raw.items()}  # an empty YAML section
    raw["source"] = source
    try:
        cfg = _FROM_DATA.validate_python(raw)
    except ValidationError as e:
        problems += _problems(e)
    if problems:
        raise ConfigError.listing(source, problems)
    return cfg


def apply_overrides(cfg: Config, overrides: Iterable[str]) -> Config:
    """``cfg`` with ``key.sub=value`` overrides applied and validated, just as :func:`load_config` applies them."""
    return config_from_dict(config_to_dict(cfg), source=cfg.source, overrides=overrides)


def _set(raw: dict, overrides: Iterable[str], problems: list[str]) -> dict:
    """A copy of ``raw`` with ``a.b=value`` strings applied; malformed ones are added to ``problems``."""
    raw = json.loads(json.dumps(raw, default=list))  # deep copy of plain data
    for item in overrides:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--set {item!r}: expected KEY=VALUE, e.g. train.steps=2000")
            continue
        try:
            value = yaml.safe_load(text) if text.strip() else None
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


