"""What the cascade configs share: a base stage, super-resolution stages, the pipeline.

A cascade file's `get_config(arg)` takes `stage=<name>` (one stage's own config, trained
in its own workdir) or `stage=cascade` (the pipeline over every stage, see
gen_jax/train/cascade.py), and `smoke`. The low-resolution data of the base stage and the
conditions of each super-resolution stage come from the same named operator
(`data.pairs`): `DOWNSAMPLE` of the high-resolution images.
"""

from __future__ import annotations

import copy

import ml_collections

from configs import common
from configs.ddpm import _ddpm

DOWNSAMPLE = "area"  # a name in gen_jax.data.pairs.DOWNSAMPLERS


def unet(*, ch: int, ch_mult, num_res_blocks: int = 2, attn_resolutions=(),
         dropout: float = 0.0) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      name="unet", ch=ch, ch_mult=tuple(ch_mult), num_res_blocks=num_res_blocks,
      attn_resolutions=tuple(attn_resolutions), dropout=dropout, num_groups=32, num_heads=1,
      resamp_with_conv=True, remat=False))


def set_data(c: ml_collections.ConfigDict, data: dict, *, factor: int = 1) -> None:
  """The high-resolution `data` fields, downsampled by `factor` when > 1 (the base stage)."""
  for k, v in data.items():
    c.data[k] = v
  if factor > 1:
    c.data.downsample_source = c.data.source
    c.data.source = "downsampled"
    c.data.downsample_factor = factor
    c.data.downsample_method = DOWNSAMPLE


def base_stage(data: dict, *, factor: int, model: ml_collections.ConfigDict,
               smoke: bool) -> ml_collections.ConfigDict:
  """An unconditional DDPM (cosine chain, eps, DDIM sampling) of the downsampled images."""
  c = _ddpm.ddpm_config_with_model(copy.deepcopy(model))
  set_data(c, data, factor=factor)
  c.method.beta_schedule = "cosine"
  c.sample.sampler = "ddim"
  c.sample.ddim.num_steps = 100
  _common_training(c)
  if smoke:
    _smoke(c)
  return c


def sr_stage(data: dict, *, factor: int, model: ml_collections.ConfigDict, smoke: bool,
             max_level: float = 0.5, sample_level: float = 0.1,
             upsample: str = "bicubic") -> ml_collections.ConfigDict:
  """A super-resolution diffusion model (methods/super_resolution.py) of the images."""
  c = common.base_config()
  c.model = copy.deepcopy(model)
  set_data(c, data)
  c.method = ml_collections.ConfigDict(dict(
      name="super_resolution", process="chain", beta_schedule="cosine", num_timesteps=1000,
      prediction="eps", loss="mse", weighting="simple",
      factor=factor, downsample=DOWNSAMPLE, upsample=upsample,
      noise_aug=ml_collections.ConfigDict(dict(enabled=True, max_level=max_level,
                                               sample_level=sample_level)),
  ))
  _ddpm.diffusion_sample_fields(c, sampler="ddim")
  c.sample.clip_x0 = True
  c.sample.ddim = ml_collections.ConfigDict(dict(num_steps=100, eta=0.0, spacing="uniform"))
  c.sample.ancestral = ml_collections.ConfigDict(dict(variance="fixed_large"))
  _common_training(c)
  if smoke:
    _smoke(c)
  return c


def _common_training(c: ml_collections.ConfigDict) -> None:
  c.batch_size = 128
  c.num_train_steps = 400_000
  c.optim.learning_rate = 2e-4
  c.optim.warmup_steps = 5000
  c.ema.decay = 0.9999


def _smoke(c: ml_collections.ConfigDict) -> None:
  _ddpm.smoke_ddpm(c)  # tiny UNet, 20-step chain, 5 DDIM steps
  c.model.attn_resolutions = ()


def cascade(stages: dict[str, ml_collections.ConfigDict], *,
            smoke: bool) -> ml_collections.ConfigDict:
  """The pipeline config over `stages` (base first; gen_jax/train/cascade.py)."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.cascade = ml_collections.ConfigDict(dict(
      order=tuple(stages),
      stages=ml_collections.ConfigDict({k: copy.deepcopy(v) for k, v in stages.items()}),
      workdirs=ml_collections.ConfigDict({k: "" for k in stages}),  # "": <workdir>/<name>
  ))
  c.sample = ml_collections.ConfigDict(dict(num_samples=64, batch_size=64))
  c.eval = copy.deepcopy(common.base_config().eval)
  c.eval.feature_extractor = "inception"
  if smoke:
    c.sample.num_samples = 8
    c.sample.batch_size = 8
    c.eval.num_samples = 16
    c.eval.reference_count = 64
    c.eval.kid_subsets = 5
  return c


def get(arg, *, data: dict, factor: int, base_model, sr_model, smoke_data: dict | None = None,
        smoke_factor: int | None = None, **sr_options) -> ml_collections.ConfigDict:
  """The config of `arg` (`stage=base|sr|cascade`, `smoke`) of a two-stage cascade."""
  args = common.parse_arg(arg, smoke=False, stage="sr")
  if args.smoke and smoke_data is not None:
    data, factor = smoke_data, smoke_factor or factor
  build = dict(
      base=lambda: base_stage(data, factor=factor, model=base_model, smoke=args.smoke),
      sr=lambda: sr_stage(data, factor=factor, model=sr_model, smoke=args.smoke,
                          **sr_options))
  if args.stage == "cascade":
    c = cascade({name: make() for name, make in build.items()}, smoke=args.smoke)
  elif args.stage in build:
    c = build[args.stage]()
  else:
    raise ValueError(f"stage={args.stage!r}; choose base, sr or cascade.")
  c.lock()
  return c
