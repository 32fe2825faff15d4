"""Adaptive discriminator augmentation (ADA; Karras et al., "Training Generative
Adversarial Networks with Limited Data", NeurIPS 2020).

Every image the discriminator sees (real and generated, in every phase, including the
R1 and generator passes) goes through `augment(rng, x, p, pipe)`: a random,
differentiable transformation in which each elementary augmentation is applied to each
image independently with probability `strength * p`. The "bgc" pipeline of the paper:

  pixel blitting   xflip (mirror), rotate90 (k * 90 degrees), xint (integer translation,
                   U(-0.125, 0.125) of the size, rounded to pixels);
  geometric        scale (isotropic 2^N(0, 0.2^2)), rotate (U(-180, 180) degrees, applied
                   before and after aniso, each with probability 1 - sqrt(1 - p)), aniso
                   (2^N(0, 0.2^2) on x and its inverse on y), xfrac (N(0, 0.125^2) of the
                   size);
  colour           brightness (+N(0, 0.2^2)), contrast (x 2^N(0, 0.5^2)), lumaflip
                   (Householder reflection about the luma axis v = (1, 1, 1) / sqrt 3),
                   hue (rotation about v by U(-180, 180) degrees), saturation (x 2^N(0, 1)
                   off the luma axis).

The geometric transformations compose into one inverse homogeneous matrix G_inv per image
(in pixel coordinates centred on the image) that maps each output pixel to the input
point it samples, bilinearly, with reflection at the borders; the colour ones compose
into one 4x4 matrix C applied as x' = C[:3, :3] x + C[:3, 3]. The result is linear in x,
hence differentiable, and p = 0 gives the identity exactly.

Adaptive p (`AdaptiveProbability`, used by `AdaptiveAugment`): the overfitting heuristic r_t = E[sign D(x_real)], its
mean over every real logit since the last adjustment; every `interval` steps
    p <- max(p + sign(r_t - target) * batch * interval / (kimg * 1000), 0),
with target 0.6, interval 4 and kimg 500 (p can move by 1 in 500k images). The state
{p, signs_sum, signs_count} lives in the train state's model_state, so it is saved in
every checkpoint and a resumed run continues exactly.

Deviations from the official code (training/augment.py, training/training_loop.py):
* No 2x supersampling with the Symlet-2 wavelet filter around the geometric warp: the
  image is resampled bilinearly at its own resolution (the blits are exact either way;
  rotations and scalings alias slightly more).
* Reflection of continuous coordinates at the borders instead of padding by the computed
  margin (the same 'reflect' extension).
* The "filter", "noise" and "cutout" groups (not in "bgc") are not implemented.
* p = 0 runs the (identity) warp anyway: under jit the computation is static.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

Array = jax.Array

# The elementary augmentations, in the official order, and the "bgc" strengths.
BLIT = ("xflip", "rotate90", "xint")
GEOM = ("scale", "rotate", "aniso", "xfrac")
COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
ALL = BLIT + GEOM + COLOR
PIPES = {"blit": BLIT, "geom": GEOM, "color": COLOR, "bg": BLIT + GEOM, "bgc": ALL}


@dataclasses.dataclass(frozen=True)
class AugmentPipe:
  """Strengths (probability multipliers) and ranges of the elementary augmentations.

  A strength of 0 disables an augmentation; `AugmentPipe.named("bgc")` enables the
  paper's default set with strength 1.
  """

  xflip: float = 0.0
  rotate90: float = 0.0
  xint: float = 0.0
  scale: float = 0.0
  rotate: float = 0.0
  aniso: float = 0.0
  xfrac: float = 0.0
  brightness: float = 0.0
  contrast: float = 0.0
  lumaflip: float = 0.0
  hue: float = 0.0
  saturation: float = 0.0
  xint_max: float = 0.125
  scale_std: float = 0.2
  rotate_max: float = 1.0
  aniso_std: float = 0.2
  xfrac_std: float = 0.125
  brightness_std: float = 0.2
  contrast_std: float = 0.5
  hue_max: float = 1.0
  saturation_std: float = 1.0

  @classmethod
  def named(cls, name: str) -> "AugmentPipe":
    """The pipeline `name` ("blit", "geom", "color", "bg", "bgc") or one augmentation."""
    if name in PIPES:
      return cls(**{k: 1.0 for k in PIPES[name]})
    if name in ALL:
      return cls(**{name: 1.0})
    raise ValueError(f"Unknown ADA pipeline {name!r}; use one of {sorted(PIPES)} or a single "
                     f"augmentation of {list(ALL)} (method.ada.pipe).")


# ------------------------------------------------------------------- matrices [B, 3, 3]


def _mat3(rows) -> Array:
  return jnp.stack([jnp.stack(r, axis=-1) for r in rows], axis=-2)


def _translate2d(tx, ty):
  o, z = jnp.ones_like(tx), jnp.zeros_like(tx)
  return _mat3([[o, z, tx], [z, o, ty], [z, z, o]])


def _scale2d(sx, sy):
  o, z = jnp.ones_like(sx), jnp.zeros_like(sx)
  return _mat3([[sx, z, z], [z, sy, z], [z, z, o]])


def _rotate2d(theta):
  c, s = jnp.cos(theta), jnp.sin(theta)
  o, z = jnp.ones_like(theta), jnp.zeros_like(theta)
  return _mat3([[c, -s, z], [s, c, z], [z, z, o]])


def _gate(key, prob, value, identity):
  """value where U[0, 1) < prob (per image), else identity."""
  u = jax.random.uniform(key, value.shape[:1]).reshape((-1,) + (1,) * (value.ndim - 1))
  return jnp.where(u < prob, value, identity)


def geometric_matrix(rng: Array, n: int, height: int, width: int, p: Array,
                     pipe: AugmentPipe) -> Array:
  """G_inv [n, 3, 3]: output pixel (centred coordinates) -> input point, as the official
  product of the inverse transforms, each gated per image with probability strength * p."""
  keys = iter(jax.random.split(rng, 20))
  nxt = lambda: next(keys)
  g = jnp.broadcast_to(jnp.eye(3), (n, 3, 3))
  zeros, ones = jnp.zeros((n,)), jnp.ones((n,))
  if pipe.xflip:
    i = jnp.floor(jax.random.uniform(nxt(), (n,)) * 2)
    i = _gate(nxt(), pipe.xflip * p, i, zeros)
    g = g @ _scale2d(1 - 2 * i, ones)
  if pipe.rotate90:
    i = jnp.floor(jax.random.uniform(nxt(), (n,)) * 4)
    i = _gate(nxt(), pipe.rotate90 * p, i, zeros)
    g = g @ _rotate2d(-math.pi / 2 * i)
  if pipe.xint:
    t = (jax.random.uniform(nxt(), (n, 2)) * 2 - 1) * pipe.xint_max
    t = _gate(nxt(), pipe.xint * p, t, jnp.zeros_like(t))
    g = g @ _translate2d(-jnp.round(t[:, 0] * width), -jnp.round(t[:, 1] * height))
  if pipe.scale:
    s = jnp.exp2(jax.random.normal(nxt(), (n,)) * pipe.scale_std)
    s = _gate(nxt(), pipe.scale * p, s, ones)
    g = g @ _scale2d(1 / s, 1 / s)
  p_rot = 1 - jnp.sqrt(jnp.clip(1 - pipe.rotate * p, 0, 1))
  if pipe.rotate:  # before the anisotropic scaling
    theta = (jax.random.uniform(nxt(), (n,)) * 2 - 1) * math.pi * pipe.rotate_max
    g = g @ _rotate2d(-_gate(nxt(), p_rot, theta, zeros))
  if pipe.aniso:
    s = jnp.exp2(jax.random.normal(nxt(), (n,)) * pipe.aniso_std)
    s = _gate(nxt(), pipe.aniso * p, s, ones)
    g = g @ _scale2d(1 / s, s)
  if pipe.rotate:  # after it
    theta = (jax.random.uniform(nxt(), (n,)) * 2 - 1) * math.pi * pipe.rotate_max
    g = g @ _rotate2d(-_gate(nxt(), p_rot, theta, zeros))
  if pipe.xfrac:
    t = jax.random.normal(nxt(), (n, 2)) * pipe.xfrac_std
    t = _gate(nxt(), pipe.xfrac * p, t, jnp.zeros_like(t))
    g = g @ _translate2d(-t[:, 0] * width, -t[:, 1] * height)
  return g


def color_matrix(rng: Array, n: int, p: Array, pipe: AugmentPipe) -> Array:
  """C [n, 4, 4] acting on homogeneous RGB (r, g, b, 1), as the official colour group."""
  keys = iter(jax.random.split(rng, 12))
  nxt = lambda: next(keys)
  c = jnp.broadcast_to(jnp.eye(4), (n, 4, 4))
  zeros, ones = jnp.zeros((n,)), jnp.ones((n,))
  eye = jnp.eye(4)[None]
  v = jnp.array([1.0, 1.0, 1.0, 0.0]) / math.sqrt(3.0)
  vv = jnp.outer(v, v)[None]
  if pipe.brightness:
    b = _gate(nxt(), pipe.brightness * p,
              jax.random.normal(nxt(), (n,)) * pipe.brightness_std, zeros)
    t = eye + jnp.zeros((n, 4, 4)).at[:, :3, 3].set(jnp.broadcast_to(b[:, None], (n, 3)))
    c = t @ c
  if pipe.contrast:
    s = _gate(nxt(), pipe.contrast * p,
              jnp.exp2(jax.random.normal(nxt(), (n,)) * pipe.contrast_std), ones)
    c = jax.vmap(jnp.diag)(jnp.stack([s, s, s, ones], axis=-1)) @ c
  if pipe.lumaflip:
    i = _gate(nxt(), pipe.lumaflip * p, jnp.floor(jax.random.uniform(nxt(), (n,)) * 2), zeros)
    c = (eye - 2 * vv * i[:, None, None]) @ c
  if pipe.hue:
    theta = (jax.random.uniform(nxt(), (n,)) * 2 - 1) * math.pi * pipe.hue_max
    c = _rotate3d(v, _gate(nxt(), pipe.hue * p, theta, zeros)) @ c
  if pipe.saturation:
    s = _gate(nxt(), pipe.saturation * p,
              jnp.exp2(jax.random.normal(nxt(), (n,)) * pipe.saturation_std), ones)
    c = (vv + (eye - vv) * s[:, None, None]) @ c
  return c


def _rotate3d(v: Array, theta: Array) -> Array:
  """Rotations [n, 4, 4] about the unit axis v[:3] by theta [n] (Rodrigues)."""
  vx, vy, vz = v[0], v[1], v[2]
  s, c = jnp.sin(theta), jnp.cos(theta)
  cc = 1 - c
  o, z = jnp.ones_like(theta), jnp.zeros_like(theta)
  return jnp.stack([
      jnp.stack([vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, z], -1),
      jnp.stack([vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, z], -1),
      jnp.stack([vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, z], -1),
      jnp.stack([z, z, z, o], -1)], axis=-2)


# ------------------------------------------------------------------- application


def _reflect(u: Array, size: int) -> Array:
  """Continuous coordinate u mirrored into [0, size - 1] ('reflect', edge not repeated)."""
  if size == 1:
    return jnp.zeros_like(u)
  period = 2.0 * (size - 1)
  u = jnp.mod(u, period)
  return jnp.where(u > size - 1, period - u, u)


def warp(x: Array, g_inv: Array) -> Array:
  """x [N, H, W, C] resampled bilinearly at g_inv @ (u - cx, v - cy, 1) + (cx, cy)."""
  n, h, w, _ = x.shape
  cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
  vv, uu = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32) - cy,
                        jnp.arange(w, dtype=jnp.float32) - cx, indexing="ij")
  grid = jnp.stack([uu, vv, jnp.ones_like(uu)], axis=-1).reshape(-1, 3)  # [HW, 3]
  src = jnp.einsum("nij,pj->npi", g_inv, grid)  # [N, HW, 3]
  u = _reflect(src[..., 0] + cx, w)
  v = _reflect(src[..., 1] + cy, h)

  def sample(img, u, v):
    u0 = jnp.clip(jnp.floor(u), 0, w - 1)
    v0 = jnp.clip(jnp.floor(v), 0, h - 1)
    fu, fv = (u - u0)[:, None], (v - v0)[:, None]
    u0i, v0i = u0.astype(jnp.int32), v0.astype(jnp.int32)
    u1i, v1i = jnp.minimum(u0i + 1, w - 1), jnp.minimum(v0i + 1, h - 1)
    top = img[v0i, u0i] * (1 - fu) + img[v0i, u1i] * fu
    bottom = img[v1i, u0i] * (1 - fu) + img[v1i, u1i] * fu
    return top * (1 - fv) + bottom * fv  # [HW, C]

  return jax.vmap(sample)(x, u, v).reshape(x.shape)


def apply_color(x: Array, c: Array) -> Array:
  """x' = C[:3, :3] x + C[:3, 3] per pixel (RGB); the channel-mean form for grey images."""
  n, h, w, ch = x.shape
  if ch == 3:
    flat = x.reshape(n, h * w, 3)
    out = jnp.einsum("nij,npj->npi", c[:, :3, :3], flat) + c[:, None, :3, 3]
    return out.reshape(x.shape)
  if ch == 1:
    cm = jnp.mean(c[:, :3, :], axis=1)  # [n, 4]
    scale = jnp.sum(cm[:, :3], axis=1)
    return x * scale[:, None, None, None] + cm[:, None, None, 3:]
  raise ValueError(f"ADA colour augmentations need 1 or 3 channels, got {ch}; use "
                   "method.ada.pipe='bg' for other images.")


def augment(rng: Array, x: Array, p: Array, pipe: AugmentPipe) -> Array:
  """x [N, H, W, C] augmented with probability multiplier p (scalar in [0, 1])."""
  if x.ndim != 4:
    raise ValueError(f"ADA augments images [N, H, W, C]; got shape {x.shape}.")
  n, h, w, _ = x.shape
  r_geom, r_color = jax.random.split(rng)
  p = jnp.asarray(p, jnp.float32)
  if any(getattr(pipe, k) for k in BLIT + GEOM):
    x = warp(x, geometric_matrix(r_geom, n, h, w, p, pipe))
  if any(getattr(pipe, k) for k in COLOR):
    x = apply_color(x, color_matrix(r_color, n, p, pipe))
  return x


# ------------------------------------------------------------------- adaptive p


@dataclasses.dataclass(frozen=True)
class AdaptiveProbability:
  """ADA's adaptive probability p and its overfitting-driven update (the one place of this
  rule: StyleGAN2-ADA's augmentation probability, Diffusion-GAN's chain length).

  Attributes:
    initial_p: p at step 0 (augment_p; 0 in the paper).
    target: the wanted r_t = E[sign D(real)] (0.6); None keeps p fixed ("--aug=fixed").
    interval: steps between two adjustments (ada_interval = 4).
    kimg: thousands of real images for p to move by 1 (ada_kimg = 500).
    p_max: an upper clip of p (None: ADA's floor at 0 alone; Diffusion-GAN clips at 1).
  """

  initial_p: float = 0.0
  target: float | None = 0.6
  interval: int = 4
  kimg: float = 500.0
  p_max: float | None = None

  def __post_init__(self):
    if self.interval < 1 or self.kimg <= 0:
      raise ValueError(f"ADA needs interval >= 1 and kimg > 0, got {self.interval}, {self.kimg}.")

  def init_state(self) -> dict[str, Array]:
    z = jnp.zeros((), jnp.float32)
    return {"p": jnp.asarray(self.initial_p, jnp.float32), "signs_sum": z, "signs_count": z}

  def accumulate(self, state, d_real: Array):
    """Adds sign(D(real)) of one discriminator pass to the running sums."""
    return {**state, "signs_sum": state["signs_sum"] + jnp.sum(jnp.sign(d_real)),
            "signs_count": state["signs_count"] + jnp.asarray(d_real.size, jnp.float32)}

  def step_size(self, batch_size: int) -> float:
    """|change of p| per adjustment: batch * interval / (kimg * 1000)."""
    return batch_size * self.interval / (self.kimg * 1000.0)

  def adjust(self, state, step: Array, batch_size: int):
    """On steps with step % interval == 0 (after that step's passes, as the official
    loop's batch_idx % ada_interval == 0): p moves by sign(r_t - target) * step_size,
    floored at 0 (and clipped at p_max), and the sums restart."""
    if self.target is None:
      return state
    now = jnp.asarray(step) % self.interval == 0
    p = jnp.maximum(state["p"] + jnp.sign(self.r_t(state) - self.target)
                    * self.step_size(batch_size), 0.0)
    if self.p_max is not None:
      p = jnp.minimum(p, self.p_max)
    zero = jnp.zeros((), jnp.float32)
    return {"p": jnp.where(now, p, state["p"]).astype(jnp.float32),
            "signs_sum": jnp.where(now, zero, state["signs_sum"]),
            "signs_count": jnp.where(now, zero, state["signs_count"])}

  def r_t(self, state) -> Array:
    return state["signs_sum"] / jnp.maximum(state["signs_count"], 1.0)


@dataclasses.dataclass(frozen=True)
class AdaptiveAugment(AdaptiveProbability):
  """ADA: the augmentation pipeline applied with the adaptive probability p.

  Attributes (besides AdaptiveProbability's):
    pipe: the augmentations (required).
  """

  pipe: AugmentPipe | None = None

  def __post_init__(self):
    super().__post_init__()
    if self.pipe is None:
      raise ValueError("AdaptiveAugment needs pipe=AugmentPipe.named(...).")

  def __call__(self, rng: Array, x: Array, state) -> Array:
    return augment(rng, x, state["p"], self.pipe)
