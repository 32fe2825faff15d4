"""Imports a published DDPM in the diffusers `UNet2DModel` format as a gen_jax DDPM run.

    python -m gen_jax.tools.import_diffusers <folder> --workdir=runs/x
    python -m gen_jax.main --config=runs/x/config.py --workdir=runs/x --mode=sample

`<folder>` is what diffusers' `save_pretrained` writes (e.g. a download of
google/ddpm-cifar10-32): `config.json` (the UNet), `diffusion_pytorch_model.safetensors`
(read with the safetensors package's numpy API; no torch) and `scheduler_config.json` (a
DDPMScheduler). The importer

1. maps the UNet config onto gen_jax's DDPM `UNet` (`gen_jax/nets/unet.py`) and the
   scheduler onto the DDPM method (beta schedule, T, prediction, sampler variance and
   clipping), refusing anything it cannot represent with the list of every offending field;
2. renames and transposes every tensor (OIHW -> HWIO convolutions, [out, in] -> [in, out]
   dense kernels), checking that each gen_jax parameter is filled exactly once and no tensor
   is left over;
3. writes, only when all of that succeeded, a normal gen_jax workdir with the trainer's own
   writers: `checkpoints/0/` (a `TrainState` whose params and EMA params are the imported
   weights and whose optimiser state is fresh), `config.json`, and `config.py`, the config
   file to pass to `--config` (it rebuilds the same config from the two diffusers configs
   it embeds). The source folder, the weights' SHA-256 and the diffusers version are kept
   in the checkpoint's metadata.

The imported run has no training data: `data` points at `placeholder_data.npz`, one black
image of the model's shape, so that `--mode=sample` runs anywhere. For `--mode=eval`
point `data` at the real dataset (e.g. `--config.data.source=tfds --config.data.name=cifar10`).

Settings of diffusers that map onto options of gen_jax's UNet: `attention_head_dim`
(`attn_head_dim`; None = one head), `downsample_padding` 0/1 (`downsample_padding`
"same"/"symmetric"), `flip_sin_to_cos`, `freq_shift`, `norm_eps`. The sampler is the
ancestral one of the scheduler (DDPMScheduler's), over all T steps; `timestep_spacing`
and `steps_offset` only choose DDPMScheduler's shortened inference grids and are ignored,
as are `dynamic_thresholding_ratio` and `sample_max_value` (read only with `thresholding`,
which is refused). Missing fields take diffusers' defaults, as diffusers does.

Deviations from diffusers' forward pass: none in the supported settings (tested to 1e-4 on
stored outputs; the measured difference is ~3e-6, float32 round-off). gen_jax's GroupNorm
uses min(norm_num_groups, C) groups where diffusers would refuse C < norm_num_groups.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import pathlib
import pprint
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags, logging
from flax import traverse_util
from ml_collections import config_dict

from gen_jax.diffusion.schedules import MAX_BETA

UNET_CONFIG = "config.json"
WEIGHTS = "diffusion_pytorch_model.safetensors"
SCHEDULER_CONFIG = "scheduler_config.json"
PLACEHOLDER_DATA = "placeholder_data.npz"

# diffusers' UNet2DModel defaults, used for fields an (older) config.json leaves out, as
# diffusers itself does when loading it.
UNET_DEFAULTS = dict(
    sample_size=None, in_channels=3, out_channels=3, center_input_sample=False,
    time_embedding_type="positional", time_embedding_dim=None, freq_shift=0,
    flip_sin_to_cos=True,
    down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
    up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(224, 448, 672, 896), layers_per_block=2, mid_block_scale_factor=1,
    downsample_padding=1, downsample_type="conv", upsample_type="conv", dropout=0.0,
    act_fn="silu", attention_head_dim=8, norm_num_groups=32, attn_norm_num_groups=None,
    norm_eps=1e-5, resnet_time_scale_shift="default", add_attention=True,
    class_embed_type=None, num_class_embeds=None, num_train_timesteps=None,
    mid_block_type="UNetMidBlock2D", attention_legacy_order=False)

# diffusers' DDPMScheduler defaults.
SCHEDULER_DEFAULTS = dict(
    num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
    trained_betas=None, variance_type="fixed_small", clip_sample=True,
    prediction_type="epsilon", thresholding=False, dynamic_thresholding_ratio=0.995,
    clip_sample_range=1.0, sample_max_value=1.0, timestep_spacing="leading", steps_offset=0,
    rescale_betas_zero_snr=False)

# Fields gen_jax has exactly one value for: field -> (accepted values, why).
_UNET_FIXED = {
    "act_fn": (("silu", "swish"), "gen_jax's UNet uses swish (SiLU)"),
    "add_attention": ((True,), "the middle block always has attention"),
    "attention_legacy_order": ((False,), "q/k/v are split before the heads"),
    "center_input_sample": ((False,), "inputs are not rescaled"),
    "class_embed_type": ((None,), "class embeddings are not supported"),
    "num_class_embeds": ((None,), "class embeddings are not supported"),
    "downsample_type": (("conv",), "downsampling is a stride-2 convolution"),
    "upsample_type": (("conv",), "upsampling is nearest + convolution"),
    "mid_block_type": (("UNetMidBlock2D",), "the middle block is resnet-attention-resnet"),
    "mid_block_scale_factor": ((1,), "residual sums are not rescaled"),
    "resnet_time_scale_shift": (("default",), "the time embedding is added, not a "
                                "scale-shift"),
    "time_embedding_type": (("positional",), "the time embedding is sinusoidal"),
}
_DOWN_BLOCKS = {"DownBlock2D": False, "AttnDownBlock2D": True}
_UP_BLOCKS = {"UpBlock2D": False, "AttnUpBlock2D": True}
_PREDICTIONS = {"epsilon": "eps", "sample": "x0", "v_prediction": "v"}
_VARIANCES = ("fixed_small", "fixed_large")
_SCHEDULER_FIXED = {
    "thresholding": ((False,), "dynamic thresholding is not implemented"),
    "rescale_betas_zero_snr": ((False,), "zero-terminal-SNR rescaling is not implemented"),
    "trained_betas": ((None,), "explicit betas are not supported"),
}


class UnsupportedConfigError(ValueError):
  """The diffusers checkpoint uses settings gen_jax cannot represent (all are listed)."""

  def __init__(self, source: str, problems: list[str]):
    self.problems = list(problems)
    lines = "\n".join(f"  - {p}" for p in problems)
    super().__init__(
        f"Cannot import {source}: gen_jax's DDPM cannot represent {len(problems)} of its "
        f"settings, so nothing was written:\n{lines}")


def _with_defaults(cfg: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
  out = dict(defaults)
  out.update({k: v for k, v in cfg.items() if not k.startswith("_")})
  return out


def _check_fixed(cfg, fixed, file, problems) -> None:
  for field, (accepted, why) in fixed.items():
    if cfg[field] not in accepted:
      problems.append(f"{file}: {field}={cfg[field]!r} (gen_jax supports only "
                      f"{' or '.join(repr(a) for a in accepted)}: {why})")


def _check_unknown(raw, known, file, problems) -> None:
  for field in sorted(set(raw) - set(known)):
    if not field.startswith("_"):
      problems.append(f"{file}: {field}={raw[field]!r} (a field this importer does not know)")


def unet_kwargs(raw: Mapping[str, Any], problems: list[str]) -> tuple[dict, tuple]:
  """gen_jax `UNet` keyword arguments and the image shape (H, W, C) of a UNet2DModel config.

  Appends one line per unsupported field to `problems` (then the result is incomplete).
  """
  f = UNET_CONFIG
  if raw.get("_class_name", "UNet2DModel") != "UNet2DModel":
    problems.append(f"{f}: _class_name={raw['_class_name']!r} (only UNet2DModel is supported)")
  cfg = _with_defaults(raw, UNET_DEFAULTS)
  _check_unknown(raw, set(UNET_DEFAULTS), f, problems)
  _check_fixed(cfg, _UNET_FIXED, f, problems)

  channels = [int(c) for c in cfg["block_out_channels"]]
  down, up = list(cfg["down_block_types"]), list(cfg["up_block_types"])
  levels = len(channels)
  ch = channels[0]
  if any(c % ch for c in channels):
    problems.append(f"{f}: block_out_channels={channels} (each must be a multiple of the "
                    f"first, gen_jax's ch * ch_mult)")
  if len(down) != levels or len(up) != levels:
    problems.append(f"{f}: down_block_types / up_block_types need {levels} entries (one per "
                    f"block_out_channels), got {len(down)} / {len(up)}")
  for i, name in enumerate(down):
    if name not in _DOWN_BLOCKS:
      problems.append(f"{f}: down_block_types[{i}]={name!r} (supported: "
                      f"{', '.join(_DOWN_BLOCKS)})")
  for i, name in enumerate(up):
    if name not in _UP_BLOCKS:
      problems.append(f"{f}: up_block_types[{i}]={name!r} (supported: {', '.join(_UP_BLOCKS)})")
  down_attn = [_DOWN_BLOCKS.get(n) for n in down]
  up_attn = [_UP_BLOCKS.get(n) for n in reversed(up)]
  if len(down) == len(up) and None not in down_attn + up_attn and down_attn != up_attn:
    problems.append(f"{f}: up_block_types={up} (attention must sit at the same resolutions "
                    f"as in down_block_types={down})")

  size = cfg["sample_size"]
  if isinstance(size, (list, tuple)):
    size = size[0] if len(set(size)) == 1 else None
  if not isinstance(size, int) or size <= 0 or size % 2 ** (levels - 1):
    problems.append(f"{f}: sample_size={cfg['sample_size']!r} (need a square size divisible "
                    f"by 2**{levels - 1})")
    size = None
  if cfg["in_channels"] != cfg["out_channels"]:
    problems.append(f"{f}: out_channels={cfg['out_channels']!r} (gen_jax's DDPM outputs as "
                    f"many channels as the input, in_channels={cfg['in_channels']!r}; "
                    f"learned variances are not supported)")
  if cfg["time_embedding_dim"] not in (None, 4 * ch):
    problems.append(f"{f}: time_embedding_dim={cfg['time_embedding_dim']!r} (gen_jax uses "
                    f"4 * block_out_channels[0] = {4 * ch})")
  if cfg["attn_norm_num_groups"] not in (None, cfg["norm_num_groups"]):
    problems.append(f"{f}: attn_norm_num_groups={cfg['attn_norm_num_groups']!r} (attention "
                    f"uses norm_num_groups={cfg['norm_num_groups']!r})")
  padding = {0: "same", 1: "symmetric"}.get(cfg["downsample_padding"])
  if padding is None:
    problems.append(f"{f}: downsample_padding={cfg['downsample_padding']!r} (supported: 0, 1)")
  head_dim = cfg["attention_head_dim"]
  if isinstance(head_dim, (list, tuple)):
    problems.append(f"{f}: attention_head_dim={head_dim!r} (one head width for all blocks)")
    head_dim = None
  attn_channels = [c for c, a in zip(channels, down_attn) if a] + channels[-1:]  # + middle
  if head_dim is not None and any(c % head_dim for c in attn_channels):
    problems.append(f"{f}: attention_head_dim={head_dim!r} (must divide the channels of every "
                    f"attention block, {sorted(set(attn_channels))})")

  attn_resolutions = tuple(size // 2 ** i for i, a in enumerate(down_attn) if a) if size else ()
  kwargs = dict(
      ch=ch, ch_mult=tuple(c // ch for c in channels), num_res_blocks=int(cfg["layers_per_block"]),
      attn_resolutions=attn_resolutions, dropout=float(cfg["dropout"]),
      num_groups=int(cfg["norm_num_groups"]), num_heads=1, resamp_with_conv=True,
      norm_eps=float(cfg["norm_eps"]), attn_head_dim=head_dim, downsample_padding=padding,
      flip_sin_to_cos=bool(cfg["flip_sin_to_cos"]), freq_shift=float(cfg["freq_shift"]))
  return kwargs, (size, size, int(cfg["in_channels"]))


def method_settings(raw: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
  """gen_jax DDPM method and sampler settings of a DDPMScheduler config.

  Appends one line per unsupported field to `problems`.
  """
  f = SCHEDULER_CONFIG
  if raw.get("_class_name", "DDPMScheduler") != "DDPMScheduler":
    problems.append(f"{f}: _class_name={raw['_class_name']!r} (only DDPMScheduler is "
                    f"supported)")
  cfg = _with_defaults(raw, SCHEDULER_DEFAULTS)
  _check_unknown(raw, set(SCHEDULER_DEFAULTS), f, problems)
  _check_fixed(cfg, _SCHEDULER_FIXED, f, problems)
  steps = cfg["num_train_timesteps"]
  if not isinstance(steps, int) or steps < 1:
    problems.append(f"{f}: num_train_timesteps={steps!r} (need a positive integer)")
    steps = 1000
  schedule = cfg["beta_schedule"]
  if schedule == "linear":
    # gen_jax's "linear" is linspace(1e-4, 0.02) * 1000 / T (improved DDPM's rescaling).
    start, end = cfg["beta_start"] * steps / 1000, cfg["beta_end"] * steps / 1000
    if not (math.isclose(start, 1e-4, rel_tol=1e-6) and math.isclose(end, 0.02, rel_tol=1e-6)):
      problems.append(
          f"{f}: beta_start={cfg['beta_start']!r}, beta_end={cfg['beta_end']!r} with "
          f"num_train_timesteps={steps} (gen_jax's linear schedule is 1e-4..0.02 times "
          f"1000/T, i.e. {1e-4 * 1000 / steps:g}..{0.02 * 1000 / steps:g} here)")
    if 0.02 * 1000 / steps > MAX_BETA:
      problems.append(f"{f}: num_train_timesteps={steps} (gen_jax's linear schedule clips "
                      f"betas above {MAX_BETA} when T < 21; diffusers does not)")
  elif schedule == "squaredcos_cap_v2":
    schedule = "cosine"
  else:
    problems.append(f"{f}: beta_schedule={schedule!r} (supported: 'linear', "
                    f"'squaredcos_cap_v2')")
  prediction = _PREDICTIONS.get(cfg["prediction_type"])
  if prediction is None:
    problems.append(f"{f}: prediction_type={cfg['prediction_type']!r} (supported: "
                    f"{', '.join(_PREDICTIONS)})")
  if cfg["variance_type"] not in _VARIANCES:
    problems.append(f"{f}: variance_type={cfg['variance_type']!r} (supported: "
                    f"{', '.join(_VARIANCES)})")
  if cfg["clip_sample"] and cfg["clip_sample_range"] != 1.0:
    problems.append(f"{f}: clip_sample_range={cfg['clip_sample_range']!r} (gen_jax clips "
                    f"x0 to [-1, 1])")
  return dict(num_timesteps=steps, beta_schedule=schedule, prediction=prediction or "eps",
              variance=cfg["variance_type"], clip_x0=bool(cfg["clip_sample"]))


def check_supported(unet_config: Mapping[str, Any], scheduler_config: Mapping[str, Any],
                    source: str = "the checkpoint") -> tuple[dict, tuple, dict]:
  """(UNet kwargs, image shape, method settings); raises UnsupportedConfigError listing
  every field of either config that gen_jax cannot represent."""
  problems: list[str] = []
  kwargs, image_shape = unet_kwargs(unet_config, problems)
  method = method_settings(scheduler_config, problems)
  if problems:
    raise UnsupportedConfigError(source, problems)
  return kwargs, image_shape, method


def build_config(unet_config: Mapping[str, Any], scheduler_config: Mapping[str, Any],
                 workdir: str | pathlib.Path) -> ml_collections.ConfigDict:
  """The locked gen_jax DDPM config of a diffusers UNet2DModel + DDPMScheduler pair.

  The base is `configs/ddpm/_ddpm.py`'s; data is the workdir's placeholder image file.
  """
  from configs.ddpm import _ddpm  # pylint: disable=g-import-not-at-top
  kwargs, _, method = check_supported(unet_config, scheduler_config)
  model = dict(name="unet", **kwargs)
  model["attn_head_dim"] = (config_dict.placeholder(int) if kwargs["attn_head_dim"] is None
                            else int(kwargs["attn_head_dim"]))
  c = _ddpm.ddpm_config_with_model(ml_collections.ConfigDict(model))
  c.method.num_timesteps = method["num_timesteps"]
  c.method.beta_schedule = method["beta_schedule"]
  c.method.prediction = method["prediction"]
  c.sample.sampler = "ancestral"
  c.sample.ancestral.variance = method["variance"]
  c.sample.clip_x0 = method["clip_x0"]
  placeholder = str(pathlib.Path(workdir).absolute() / PLACEHOLDER_DATA)
  c.data.source = "npz"
  c.data.path = placeholder
  c.data.eval_path = placeholder
  c.lock()
  return c


def convert_weights(tensors: Mapping[str, np.ndarray], abstract_params: Any,
                    num_levels: int, source: str = WEIGHTS) -> dict:
  """The gen_jax UNet parameter tree (nested dict of float32 arrays) from diffusers tensors.

  Args:
    tensors: diffusers state-dict name -> array (PyTorch layouts).
    abstract_params: the gen_jax UNet's parameter tree (shapes only are read).
    num_levels: len(block_out_channels); diffusers counts up blocks from the bottom.

  Raises:
    ValueError: a parameter without a tensor, a shape mismatch, or left-over tensors.
  """
  remaining = dict(tensors)
  # Deprecated attention names of older conversions (e.g. the google/ddpm-* checkpoints).
  for old, new in (("query", "to_q"), ("key", "to_k"), ("value", "to_v"),
                   ("proj_attn", "to_out.0")):
    for name in [n for n in remaining if ".attentions." in n and f".{old}." in n]:
      remaining[name.replace(f".{old}.", f".{new}.")] = remaining.pop(name)
  errors, out = [], {}
  for path, leaf in traverse_util.flatten_dict(abstract_params).items():
    name = _diffusers_name(path, num_levels)
    array = remaining.pop(name, None)
    if array is None:
      errors.append(f"no tensor {name!r} for parameter {'/'.join(path)}")
      continue
    array = np.asarray(array, np.float32)
    if array.ndim == 4:
      array = array.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    elif array.ndim == 2:
      array = array.T  # [out, in] -> [in, out]
    if array.shape != tuple(leaf.shape):
      errors.append(f"{name}: shape {array.shape} (after transposing) but "
                    f"{'/'.join(path)} has {tuple(leaf.shape)}")
      continue
    out[path] = array
  errors += [f"tensor {name!r} has no gen_jax parameter" for name in sorted(remaining)]
  if errors:
    raise ValueError(f"The weights in {source} do not fit the UNet built from its config:\n"
                     + "\n".join(f"  - {e}" for e in errors))
  return traverse_util.unflatten_dict(out)


_LEAVES = {"kernel": "weight", "scale": "weight", "bias": "bias"}
_RESNET = {"norm1": "norm1", "conv1": "conv1", "emb_proj": "time_emb_proj", "norm2": "norm2",
           "conv2": "conv2", "skip": "conv_shortcut"}
_ATTENTION = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v",
              "proj_out": "to_out.0"}
_TOP = {"time_dense_0": "time_embedding.linear_1", "time_dense_1": "time_embedding.linear_2",
        "conv_in": "conv_in", "norm_out": "conv_norm_out", "conv_out": "conv_out"}


def _diffusers_name(path: tuple[str, ...], num_levels: int) -> str:
  """diffusers' state-dict name of the gen_jax UNet parameter at `path`."""
  module, leaf = path[0], _LEAVES[path[-1]]
  inner = path[1:-1]
  if module in _TOP:
    return f"{_TOP[module]}.{leaf}"
  parts = module.split("_")
  if module.startswith("mid_"):
    prefix = "mid_block.attentions.0" if module == "mid_attn" else \
        f"mid_block.resnets.{int(parts[-1]) - 1}"
  else:
    side, level, kind = parts[0], int(parts[1]), parts[2]
    block = level if side == "down" else num_levels - 1 - level
    if kind in ("downsample", "upsample"):
      return f"{side}_blocks.{block}.{kind}rs.0.conv.{leaf}"
    prefix = f"{side}_blocks.{block}.{'resnets' if kind == 'block' else 'attentions'}." \
             f"{parts[3]}"
  table = _ATTENTION if "attn" in module else _RESNET
  return f"{prefix}.{table[inner[0]]}.{leaf}"


@dataclasses.dataclass(frozen=True)
class Imported:
  """What `import_folder` wrote: the workdir, its config and the checkpoint step."""
  workdir: pathlib.Path
  config: ml_collections.ConfigDict
  step: int


def read_folder(folder: str | pathlib.Path) -> tuple[dict, dict, pathlib.Path]:
  """(UNet config, scheduler config, weights path) of a diffusers checkpoint folder."""
  folder = pathlib.Path(folder)
  missing = [n for n in (UNET_CONFIG, WEIGHTS, SCHEDULER_CONFIG) if not (folder / n).is_file()]
  if missing:
    hint = ""
    if WEIGHTS in missing and (folder / "diffusion_pytorch_model.bin").is_file():
      hint = (" The folder has diffusion_pytorch_model.bin (a torch pickle): convert it once "
              "with diffusers, UNet2DModel.from_pretrained(folder).save_pretrained(folder, "
              "safe_serialization=True).")
    raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}; expected a diffusers "
                            f"UNet2DModel folder with a DDPM scheduler_config.json.{hint}")
  unet = json.loads((folder / UNET_CONFIG).read_text())
  scheduler = json.loads((folder / SCHEDULER_CONFIG).read_text())
  return unet, scheduler, folder / WEIGHTS


def _sha256(path: pathlib.Path) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


_CONFIG_PY = '''"""gen_jax config of the DDPM imported from {folder}.

Written by gen_jax.tools.import_diffusers; it rebuilds the config from the diffusers configs
below. Use it with this workdir, e.g.

    python -m gen_jax.main --config={workdir}/config.py --workdir={workdir} --mode=sample
"""

import pathlib

from gen_jax.tools import import_diffusers

UNET_CONFIG = {unet}

SCHEDULER_CONFIG = {scheduler}


def get_config(arg=None):
  del arg  # no variants
  return import_diffusers.build_config(UNET_CONFIG, SCHEDULER_CONFIG,
                                       pathlib.Path(__file__).absolute().parent)
'''


def import_folder(folder: str | pathlib.Path, workdir: str | pathlib.Path) -> Imported:
  """Imports a diffusers DDPM folder into a new gen_jax workdir (see the module docstring).

  Everything is checked before anything is written.

  Raises:
    UnsupportedConfigError: settings gen_jax cannot represent (each one listed).
    FileNotFoundError: missing files; FileExistsError: the workdir already has checkpoints.
    ValueError: weights that do not fit the config.
  """
  from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
  from gen_jax.data.sources import DatasetInfo  # pylint: disable=g-import-not-at-top
  from gen_jax.methods.base import build_method  # pylint: disable=g-import-not-at-top
  from gen_jax.train.checkpoint import Checkpointer  # pylint: disable=g-import-not-at-top
  from gen_jax.train.experiment import write_config  # pylint: disable=g-import-not-at-top
  from gen_jax.core.state import TrainState  # pylint: disable=g-import-not-at-top

  folder, workdir = pathlib.Path(folder), pathlib.Path(workdir)
  unet_cfg, sched_cfg, weights_path = read_folder(folder)
  kwargs, image_shape, _ = check_supported(unet_cfg, sched_cfg, str(folder))
  if (workdir / "checkpoints").is_dir() and any((workdir / "checkpoints").iterdir()):
    raise FileExistsError(f"{workdir} already holds checkpoints; import into a new --workdir.")
  config = build_config(unet_cfg, sched_cfg, workdir)
  method = build_method(config, DatasetInfo(image_shape, 0, 1))
  batch = {"image": jnp.zeros((1, *image_shape), jnp.float32),
           "label": jnp.zeros((1,), jnp.int32)}
  abstract = jax.eval_shape(method.init, jax.random.key(config.seed), batch)
  params = convert_weights(load_file(str(weights_path)), abstract.params,
                           len(kwargs["ch_mult"]), str(weights_path))
  # One jit instead of hundreds of eager dispatches for the optimiser's zeros.
  state = jax.jit(lambda p: TrainState.create(p, method.optimizer.init(p)))(params)
  if jax.tree.structure(state) != jax.tree.structure(abstract):
    raise AssertionError("the imported state does not have the structure of method.init's")

  workdir.mkdir(parents=True, exist_ok=True)
  np.savez(workdir / PLACEHOLDER_DATA, images=np.zeros((1, *image_shape), np.uint8))
  write_config(config, workdir)
  (workdir / "config.py").write_text(_CONFIG_PY.format(
      folder=folder.absolute(), workdir=workdir,
      unet=pprint.pformat(unet_cfg, indent=2, sort_dicts=True),
      scheduler=pprint.pformat(sched_cfg, indent=2, sort_dicts=True)))
  checkpointer = Checkpointer(workdir / "checkpoints", asynchronous=False)
  checkpointer.save(0, state, meta={
      "seed": config.seed, "imported_from": str(folder.absolute()),
      "weights_sha256": _sha256(weights_path),
      "diffusers_version": unet_cfg.get("_diffusers_version", "")})
  checkpointer.close()
  return Imported(workdir=workdir, config=config, step=0)


def _main(argv) -> None:
  if len(argv) != 2:
    raise app.UsageError("usage: python -m gen_jax.tools.import_diffusers <folder> "
                         "--workdir=runs/x")
  try:
    out = import_folder(argv[1], flags.FLAGS.workdir)
  except UnsupportedConfigError as e:
    raise SystemExit(str(e)) from None
  logging.info("Imported %s into %s. Sample with:\n  python -m gen_jax.main "
               "--config=%s/config.py --workdir=%s --mode=sample", argv[1], out.workdir,
               out.workdir, out.workdir)


if __name__ == "__main__":
  # Defined here only: gen_jax.main, which loads the workdir's config.py (importing this
  # module), has its own --workdir flag.
  flags.DEFINE_string("workdir", None, "New gen_jax run directory to write.")
  flags.mark_flags_as_required(["workdir"])
  app.run(_main)
