"""Super-resolution diffusion (SR3) with noise conditioning augmentation (CDM), as a `Method`.

A `SuperResolution` model is a `Diffusion` (methods/diffusion.py: any process,
parameterisation, loss and sampler) whose network sees the noisy high-resolution image
concatenated with the upsampled, noise-augmented low-resolution condition and its level
(`gen_jax.diffusion.super_resolution`). The only thing it adds to the diffusion core is
*which* condition the model functions are bound to (`bind`): the losses and samplers call
`model_fn` / `denoise_fn` as for any diffusion model.

* training: a batch of high-resolution images x [B, H, W, C] (any image source) gives the
  pair (D x, x) with the named downsampling D (`data.pairs`; or `batch["low_res"]` when a
  source supplies real pairs); D x is corrupted at levels s ~ U[0, s_max]; the loss is the
  configured diffusion loss of x given that condition.
* sampling: `sample_given(state, rng, low_res)` super-resolves given low-resolution images
  (e.g. a base stage's samples: `methods/cascade.py`) at the configured level;
  `sample(state, rng, n)` (the trainer's grids, `--mode=sample` of the stage alone)
  super-resolves the first images of the evaluation split, downsampled.
* evaluation: the per-example loss (and the chain's VLB) given D x at the sampling level;
  `figures` writes (upsampled input | sample | ground truth) columns.

config.method (name "super_resolution"): every field of the "diffusion" method (`FIELDS`
in methods/diffusion.py) and `factor`, `downsample` (`data.pairs.DOWNSAMPLERS`),
`upsample` (`data.pairs.UPSAMPLERS`), `noise_aug` (enabled, max_level, sample_level).

Deviations from SR3 / CDM: SR3 trains on (continuous) noise levels of its own schedule
and uses bicubic upsampling; here every process of the core is available and the
upsampler is a config field. Other deviations (the augmentation schedule, how the level
reaches the network): see `gen_jax/diffusion/super_resolution.py`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gen_jax.core.sample import SampleSpec
from gen_jax.core.state import TrainState
from gen_jax.data import pairs
from gen_jax.diffusion import super_resolution as sr
from gen_jax.methods import diffusion
from gen_jax.methods.base import METHODS, Batch, Metrics

SR_FIELDS = dict(
    factor=4, downsample="area", upsample="bicubic",
    noise_aug=dict(enabled=True, max_level=0.5, sample_level=0.0),
)
FIGURE_ROWS = 8


@dataclasses.dataclass(frozen=True)
class SuperResolution(diffusion.Diffusion):
  """A diffusion model of x [H, W, C] conditioned on a low-resolution image [H/f, W/f, C].

  Attributes (besides those of `Diffusion`; example_shape is the high-resolution shape):
    factor: f, the ratio of the resolutions.
    downsample: the operator D of the pairs, a name in `data.pairs.DOWNSAMPLERS`.
    upsample: how the condition reaches f times its size, a name in `data.pairs.UPSAMPLERS`.
    augmentation: the noise conditioning augmentation.
    grid_condition: float32 [G, h, w, C] low-resolution images `sample` super-resolves
      (cycled), or None (then only `sample_given` works).
    condition: what the network input is concatenated with, [B, H, W, C (+1)]; set by
      `bind`, None on the unbound model.
  """

  factor: int = 4
  downsample: str = "area"
  upsample: str = "bicubic"
  augmentation: sr.NoiseAugmentation = sr.NoiseAugmentation()
  grid_condition: Any = dataclasses.field(default=None, compare=False)
  condition: Any = dataclasses.field(default=None, compare=False)

  @property
  def low_res_shape(self) -> tuple[int, int, int]:
    return pairs.low_res_shape(self.example_shape, self.factor)

  @property
  def input_channels(self) -> int:
    """Channels of the network input: x_t, the upsampled condition and the level."""
    c = self.example_shape[-1]
    return 2 * c + self.augmentation.channels

  # ---------------------------------------------------------------- the condition
  def low_res_of(self, batch: Batch) -> jax.Array:
    """The low-resolution half of the pairs: batch["low_res"], else D batch["image"]."""
    if "low_res" in batch:
      return batch["low_res"].astype(jnp.float32)
    return pairs.downsample(batch["image"].astype(jnp.float32), self.factor, self.downsample)

  def bind(self, low_res: jax.Array, rng: jax.Array, *, train: bool) -> "SuperResolution":
    """This model conditioned on low_res [B, h, w, C]: levels drawn (train) or the sampling
    level, the condition corrupted, upsampled and stored for `model_fn`."""
    if tuple(low_res.shape[1:]) != self.low_res_shape:
      raise ValueError(f"The low-resolution condition has shape {tuple(low_res.shape[1:])}; "
                       f"this model super-resolves {self.low_res_shape} to "
                       f"{self.example_shape}.")
    rng_level, rng_noise = jax.random.split(rng)
    level = self.augmentation.levels(rng_level, low_res.shape[0], train=train)
    z = self.augmentation.corrupt(rng_noise, low_res.astype(jnp.float32), level)
    condition = sr.condition_input(z, level, factor=self.factor, upsampler=self.upsample,
                                   augmentation=self.augmentation)
    return dataclasses.replace(self, condition=condition)

  def model_fn(self, params, y=None, *, train: bool = False, rng=None):
    """(x_t, t) -> the network's output given the bound condition (see `bind`)."""
    if self.condition is None:
      raise ValueError("A super-resolution model needs its low-resolution condition: call "
                       "bind(low_res, rng, train=...) first, or sample_given(...).")
    return sr.conditioned(super().model_fn(params, y, train=train, rng=rng), self.condition)

  # ---------------------------------------------------------------- the contract
  def init(self, rng: jax.Array, batch: Batch) -> TrainState:
    del batch
    x = jnp.zeros((1, *self.example_shape[:-1], self.input_channels), jnp.float32)
    y = jnp.zeros((1,), jnp.int32) if self.num_classes else None
    params = self.net.init({"params": rng}, x, jnp.zeros((1,), jnp.float32), y,
                           train=False)["params"]
    return TrainState.create(params, self.optimizer.init(params))

  def loss_terms(self, params, batch: Batch, rng: jax.Array, *, train: bool) -> jax.Array:
    """Per-example loss [B] of x = batch["image"] given its (augmented) low-res pair."""
    rng_cond, rng = jax.random.split(rng)
    bound = self.bind(self.low_res_of(batch), rng_cond, train=train)
    return diffusion.Diffusion.loss_terms(bound, params, batch, rng, train=train)

  def sample_given(self, state: TrainState, rng: jax.Array, low_res: jax.Array,
                   spec: SampleSpec = SampleSpec()):
    """Super-resolves low_res [n, h, w, C] in [-1, 1]: SampleOutput of [n, H, W, C]."""
    rng_cond, rng = jax.random.split(rng)
    bound = self.bind(jnp.asarray(low_res, jnp.float32), rng_cond, train=False)
    return diffusion.Diffusion.sample(bound, state, rng, low_res.shape[0], spec)

  def sample(self, state: TrainState, rng: jax.Array, num_samples: int,
             spec: SampleSpec = SampleSpec()):
    """Super-resolves `grid_condition` (cycled to num_samples)."""
    if self.grid_condition is None:
      raise ValueError("This super-resolution model has no images to super-resolve "
                       "(grid_condition); use sample_given(state, rng, low_res).")
    grid = np.asarray(self.grid_condition, np.float32)
    low = np.resize(grid, (num_samples, *grid.shape[1:]))
    return self.sample_given(state, rng, jnp.asarray(low), spec)

  def evaluate(self, state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
    rng_cond, rng = jax.random.split(rng)
    bound = self.bind(self.low_res_of(batch), rng_cond, train=False)
    return diffusion.Diffusion.evaluate(bound, state, batch, rng)

  def figures(self, state: TrainState, batch: Batch, rng: jax.Array) -> dict[str, Any]:
    """"super_resolution": rows of (nearest-upsampled input | sample | ground truth)."""
    truth = batch["image"][:FIGURE_ROWS].astype(jnp.float32)
    low = self.low_res_of(batch)[:FIGURE_ROWS]
    out = self.sample_given(state, rng, low).samples
    up = pairs.upsample(low, self.factor, "nearest")
    rows = jnp.stack([up, out, truth], axis=1).reshape(-1, *self.example_shape)
    return {"super_resolution": (rows, 3)}


def _grid_condition(config, factor: int, method: str) -> np.ndarray:
  """D x of the first sample.grid_size images of the evaluation split, float32 in [-1, 1]."""
  from gen_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  from gen_jax.data import transforms  # pylint: disable=g-import-not-at-top
  source, _ = data_lib.build_source(config.data, "eval")
  n = max(1, min(len(source), int(config.sample.grid_size)))
  high = np.stack([transforms.to_float(source[i]["image"]) for i in range(n)])
  return pairs.downsample(high, factor, method)


@METHODS.register("super_resolution")
def build_super_resolution(config, info) -> SuperResolution:
  """SuperResolution from config.method: diffusion's FIELDS plus SR_FIELDS."""
  fields = {k: v for k, v in config.method.items() if k != "name"}
  unknown = sorted(set(fields) - set(diffusion.FIELDS) - set(SR_FIELDS))
  if unknown:
    raise ValueError(f"Unknown method field(s) {', '.join(unknown)} of method.name="
                     f"'super_resolution'; its fields: "
                     f"{', '.join(sorted({**diffusion.FIELDS, **SR_FIELDS}))}.")
  own = {**SR_FIELDS, **{k: fields.pop(k) for k in SR_FIELDS if k in fields}}
  fields = {**diffusion.FIELDS, **fields}
  factor = int(own["factor"])
  pairs.low_res_shape(info.image_shape, factor)  # checks the factor divides the size
  if own["downsample"] not in pairs.DOWNSAMPLERS:
    raise ValueError(f"method.downsample={own['downsample']!r}; choose one of "
                     f"{', '.join(pairs.DOWNSAMPLERS)}.")
  if own["upsample"] not in pairs.UPSAMPLERS:
    raise ValueError(f"method.upsample={own['upsample']!r}; choose one of "
                     f"{', '.join(pairs.UPSAMPLERS)}.")
  aug = dict(own["noise_aug"])
  augmentation = sr.NoiseAugmentation(enabled=bool(aug["enabled"]),
                                      max_level=float(aug["max_level"]),
                                      sample_level=float(aug["sample_level"]))
  clip = bool(config.sample.clip_x0) if fields["process"] == "chain" else None
  base = diffusion.build(config, info, fields, clip_x0=clip,
                         loss_kwargs={k: fields[k] for k in diffusion._LOSS_OPTIONS})  # pylint: disable=protected-access
  return SuperResolution(
      **{f.name: getattr(base, f.name) for f in dataclasses.fields(base)},
      factor=factor, downsample=own["downsample"], upsample=own["upsample"],
      augmentation=augmentation,
      grid_condition=_grid_condition(config, factor, own["downsample"]))
