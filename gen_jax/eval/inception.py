"""Inception-v3 as used for FID: the 2015-12-05 TensorFlow graph, in Flax linen.

FID, KID and IS are defined by one particular network: the Inception-v3 graph
`inception-2015-12-05` that TTUR's reference FID code loads (pool3 features, 2048-d) and
whose weights pytorch-fid ships converted as `pt_inception-2015-12-05-6726825d.pth`. It is
not torchvision's Inception-v3; its quirks (as in pytorch-fid's FIDInception* blocks) are:

* the pooling branches of Mixed_5b..5d (InceptionA), 6b..6e (InceptionC) and 7b (first
  InceptionE) use a 3x3 average pool that does NOT count the padding
  (count_include_pad=False);
* the last block, Mixed_7c, pools its branch with a 3x3 MAX pool instead of an average;
* the classifier has 1008 outputs (pool3 -> `fc`, with a bias); every BatchNorm has
  epsilon 1e-3; convolutions have no bias.

The "logits" this module returns are pool3 @ fc.kernel WITHOUT the fc bias (the bias stays
in the weights file, unused): the original Inception Score code (openai/improved-gan,
`inception_score/model.py`, which multiplies pool_3 by the softmax MatMul's weight only)
and the common reimplementations (torch-fidelity's `logits_unbiased`, StyleGAN3's
`no_output_bias=True`) compute IS from these, so only they give IS values comparable with
published ones. (gen_jax before this change used the biased logits; the extractor protocol
records the choice as `is_logits`.)

Preprocessing (`preprocess`): uint8 images -> float -> bilinear resize to 299x299 -> scale to
[-1, 1]. Two interpolations are offered and recorded in the protocol:
  "tf1"     the reference graph's own `ResizeBilinear` (TF1, align_corners=False, no
            half-pixel centres: source = dest * in / out), then (x - 128) / 128, exactly what
            the TF graph computes from its uint8 input (default);
  "pytorch" pytorch-fid's `F.interpolate(bilinear, align_corners=False)` (half-pixel
            centres), then 2 x / 255 - 1.
Neither antialiases; both are written as two small interpolation matrices applied with
einsum, so they run on any backend and are exact.

Weights. This module never downloads anything. The user converts the public
`pt_inception-2015-12-05-6726825d.pth` once (needs torch only then):

    python -m gen_jax.eval.convert_inception pt_inception-2015-12-05-6726825d.pth \
        inception_fid.npz

which checks the .pth against the first 8 hex digits of its SHA-256 (the `6726825d` in
its name, the torch.hub convention) and writes a .npz of flat arrays named
"<params|batch_stats>/<module path>/<leaf>", plus `__source_sha256__`. `load_weights`
refuses a file whose arrays do not match this module's shapes exactly (missing, extra or
mis-shaped arrays are listed), and, when given `expected_sha256`, a file whose content
checksum differs. The content checksum (`weights_checksum`) is the SHA-256 over the sorted
array names, dtypes, shapes and bytes, so it does not depend on the .npz container's
timestamps; it is recorded in every statistics file's protocol.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

INPUT_SIZE = 299
POOL_DIM = 2048
NUM_LOGITS = 1008
SOURCE_FILE = "pt_inception-2015-12-05-6726825d.pth"
SOURCE_SHA256_PREFIX = "6726825d"  # torch.hub: the file name carries its SHA-256 prefix
RESIZE_MODES = ("tf1", "pytorch")

Pad = int | tuple[int, int]


class WeightsError(ValueError):
  """An Inception weights file is missing, has the wrong checksum or the wrong shapes."""


# ---------------------------------------------------------------------------------------
# Building blocks.


class BasicConv(nn.Module):
  """Conv (no bias) -> BatchNorm (eps 1e-3, running statistics) -> ReLU."""

  features: int
  kernel: tuple[int, int] = (1, 1)
  strides: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    ph, pw = self.padding
    x = nn.Conv(self.features, self.kernel, strides=(self.strides,) * 2,
                padding=((ph, ph), (pw, pw)), use_bias=False, name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
    return nn.relu(x)


def _avg_pool_3x3(x):
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                     count_include_pad=False)


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(64, name="branch1x1")(x)
    b5 = BasicConv(48, name="branch5x5_1")(x)
    b5 = BasicConv(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
    b3 = BasicConv(64, name="branch3x3dbl_1")(x)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
    bp = BasicConv(self.pool_features, name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(384, (3, 3), strides=2, name="branch3x3")(x)
    bd = BasicConv(64, name="branch3x3dbl_1")(x)
    bd = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = BasicConv(96, (3, 3), strides=2, name="branch3x3dbl_3")(bd)
    bp = nn.max_pool(x, (3, 3), strides=(2, 2))
    return jnp.concatenate([b3, bd, bp], axis=-1)


class InceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = BasicConv(192, name="branch1x1")(x)
    b7 = BasicConv(c7, name="branch7x7_1")(x)
    b7 = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = BasicConv(c7, name="branch7x7dbl_1")(x)
    bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = BasicConv(192, name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(192, name="branch3x3_1")(x)
    b3 = BasicConv(320, (3, 3), strides=2, name="branch3x3_2")(b3)
    b7 = BasicConv(192, name="branch7x7x3_1")(x)
    b7 = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = BasicConv(192, (3, 3), strides=2, name="branch7x7x3_4")(b7)
    bp = nn.max_pool(x, (3, 3), strides=(2, 2))
    return jnp.concatenate([b3, b7, bp], axis=-1)


class InceptionE(nn.Module):
  """Mixed_7b (average pool, padding not counted) or Mixed_7c (`max_pool=True`)."""

  max_pool: bool = False

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(320, name="branch1x1")(x)
    b3 = BasicConv(384, name="branch3x3_1")(x)
    b3 = jnp.concatenate([
        BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
        BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], axis=-1)
    bd = BasicConv(448, name="branch3x3dbl_1")(x)
    bd = BasicConv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([
        BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
        BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], axis=-1)
    if self.max_pool:
      pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
    else:
      pooled = _avg_pool_3x3(x)
    bp = BasicConv(192, name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
  """The FID Inception-v3 trunk.

  Input: preprocessed images [B, 299, 299, 3] in [-1, 1] (see `preprocess`).
  Output: {"pool": float32 [B, 2048] (pool3), "logits": float32 [B, 1008]}, the logits
  being pool3 @ fc.kernel without the fc bias (see the module docstring).
  """

  @nn.compact
  def __call__(self, x):
    if x.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
      raise ValueError(f"FIDInceptionV3 expects preprocessed [B, 299, 299, 3] inputs, got "
                       f"{x.shape}; call inception.preprocess on uint8 images first.")
    x = BasicConv(32, (3, 3), strides=2, name="Conv2d_1a_3x3")(x)
    x = BasicConv(32, (3, 3), name="Conv2d_2a_3x3")(x)
    x = BasicConv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
    x = nn.max_pool(x, (3, 3), strides=(2, 2))
    x = BasicConv(80, name="Conv2d_3b_1x1")(x)
    x = BasicConv(192, (3, 3), name="Conv2d_4a_3x3")(x)
    x = nn.max_pool(x, (3, 3), strides=(2, 2))
    x = InceptionA(32, name="Mixed_5b")(x)
    x = InceptionA(64, name="Mixed_5c")(x)
    x = InceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    x = InceptionC(128, name="Mixed_6b")(x)
    x = InceptionC(160, name="Mixed_6c")(x)
    x = InceptionC(160, name="Mixed_6d")(x)
    x = InceptionC(192, name="Mixed_6e")(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE(name="Mixed_7b")(x)
    x = InceptionE(max_pool=True, name="Mixed_7c")(x)
    pool = jnp.mean(x, axis=(1, 2))  # pool3: 8x8 average
    fc = nn.Dense(NUM_LOGITS, name="fc")
    fc(pool)  # creates fc/kernel and fc/bias: the converted weights file holds both
    logits = jnp.dot(pool, fc.variables["params"]["kernel"], precision=jax.lax.Precision.HIGHEST)
    return {"pool": pool, "logits": logits}


# ---------------------------------------------------------------------------------------
# Preprocessing.


@functools.lru_cache(maxsize=32)
def resize_matrix(in_size: int, out_size: int, mode: str) -> np.ndarray:
  """[out_size, in_size] float32 matrix of bilinear weights along one axis.

  mode "tf1": TF1 ResizeBilinear (align_corners=False, half_pixel_centers=False):
    src = dst * in / out.
  mode "pytorch": torch.nn.functional.interpolate(bilinear, align_corners=False):
    src = max((dst + 0.5) * in / out - 0.5, 0).
  In both, the upper neighbour index is clamped to in_size - 1.
  """
  if mode not in RESIZE_MODES:
    raise ValueError(f"Unknown resize mode {mode!r}; choose one of {RESIZE_MODES}.")
  scale = in_size / out_size
  dst = np.arange(out_size, dtype=np.float64)
  src = dst * scale if mode == "tf1" else np.maximum((dst + 0.5) * scale - 0.5, 0.0)
  lo = np.floor(src).astype(np.int64)
  frac = src - lo
  lo = np.minimum(lo, in_size - 1)
  hi = np.minimum(lo + 1, in_size - 1)
  m = np.zeros((out_size, in_size), np.float64)
  np.add.at(m, (np.arange(out_size), lo), 1.0 - frac)
  np.add.at(m, (np.arange(out_size), hi), frac)
  return m.astype(np.float32)


def preprocess(images: jax.Array, mode: str = "tf1") -> jax.Array:
  """uint8 images [B, H, W, C] (C = 1 or 3) -> float32 [B, 299, 299, 3] in [-1, 1].

  Grayscale is repeated to 3 channels; then the bilinear resize of `mode` (see the module
  docstring) and the matching scaling.
  """
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f"Inception preprocessing expects uint8 [B, H, W, 1|3], got {images.shape}.")
  if images.dtype != jnp.uint8:
    raise ValueError(f"Inception preprocessing expects uint8 images, got {images.dtype}; "
                     "quantize with gen_jax.eval.images.to_uint8 first.")
  x = images.astype(jnp.float32)
  if x.shape[-1] == 1:
    x = jnp.repeat(x, 3, axis=-1)
  _, h, w, _ = x.shape
  rh = jnp.asarray(resize_matrix(h, INPUT_SIZE, mode))
  rw = jnp.asarray(resize_matrix(w, INPUT_SIZE, mode))
  x = jnp.einsum("oh,bhwc->bowc", rh, x, precision=jax.lax.Precision.HIGHEST)
  x = jnp.einsum("pw,bowc->bopc", rw, x, precision=jax.lax.Precision.HIGHEST)
  if mode == "tf1":
    return (x - 128.0) / 128.0
  return x / 127.5 - 1.0


# ---------------------------------------------------------------------------------------
# Weights.


def init_variables(rng: jax.Array | None = None) -> dict[str, Any]:
  """Random variables {"params", "batch_stats"} of the right shapes (tests, benchmarks)."""
  rng = jax.random.key(0) if rng is None else rng
  x = jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
  return jax.jit(FIDInceptionV3().init)(rng, x)


def random_variables(seed: int = 0) -> dict[str, Any]:
  """Random variables of the right shapes built on the host, with no compilation.

  Kernels are He-normal, BatchNorm is the identity (mean 0, var 1, scale 1, bias 0), so
  activations stay O(1); for tests and speed benchmarks, never for real scores.
  """
  rng = np.random.default_rng(seed)
  flat = {}
  for name, leaf in flatten_variables(abstract_variables()).items():
    shape = tuple(leaf.shape)
    if name.endswith("kernel"):
      fan_in = math.prod(shape[:-1])
      value = rng.normal(size=shape) * math.sqrt(2.0 / fan_in)
    elif name.endswith(("scale", "var")):
      value = np.ones(shape)
    else:
      value = np.zeros(shape)
    flat[name] = jnp.asarray(value, jnp.float32)
  return unflatten_variables(flat)


def abstract_variables() -> dict[str, Any]:
  """Shapes and dtypes of the module's variables (nothing computed)."""
  x = jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
  return jax.eval_shape(FIDInceptionV3().init, jax.random.key(0), x)


def flatten_variables(variables: Any) -> dict[str, np.ndarray]:
  """{"params/Mixed_5b/branch1x1/conv/kernel": array, ...} from a variables tree."""
  flat = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(variables):
    name = "/".join(str(getattr(p, "key", p)) for p in path)
    flat[name] = leaf if isinstance(leaf, jax.ShapeDtypeStruct) else np.asarray(leaf)
  return flat


def unflatten_variables(flat: dict[str, np.ndarray]) -> dict[str, Any]:
  tree: dict[str, Any] = {}
  for name, value in flat.items():
    node = tree
    *parents, leaf = name.split("/")
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = value
  return tree


def weights_checksum(flat: dict[str, np.ndarray]) -> str:
  """SHA-256 over sorted (name, dtype, shape, bytes) of the arrays: container-independent."""
  h = hashlib.sha256()
  for name in sorted(flat):
    a = np.ascontiguousarray(flat[name])
    h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
    h.update(a.tobytes())
  return h.hexdigest()


def save_weights(path: str | os.PathLike, variables: Any, source_sha256: str = "") -> str:
  """Writes `variables` as the .npz `load_weights` reads; returns its content checksum."""
  flat = {k: v.astype(np.float32) for k, v in flatten_variables(variables).items()}
  np.savez(path, __source_sha256__=np.asarray(source_sha256), **flat)
  return weights_checksum(flat)


def load_weights(path: str | os.PathLike, expected_sha256: str | None = None
                 ) -> tuple[dict[str, Any], str]:
  """Reads and checks a converted FID Inception .npz.

  Args:
    path: the .npz written by `convert_inception` (or `save_weights`).
    expected_sha256: when given, the content checksum must equal it.

  Returns:
    (variables {"params", "batch_stats"} as float32 jnp arrays, content checksum).

  Raises:
    WeightsError: the file is missing, the checksum differs, or its arrays are not exactly
      the module's variables (names and shapes), with the differences listed.
  """
  path = os.fspath(path)
  if not path or not os.path.isfile(path):
    raise WeightsError(
        f"Inception weights file {path!r} not found. Convert the public {SOURCE_FILE} once "
        "with `python -m gen_jax.eval.convert_inception <that .pth> <out.npz>` and set "
        "eval.inception_weights to the .npz.")
  with np.load(path, allow_pickle=False) as data:
    flat = {k: data[k] for k in data.files if not k.startswith("__")}
  checksum = weights_checksum(flat)
  if expected_sha256 and checksum != expected_sha256.lower():
    raise WeightsError(
        f"Inception weights {path!r} have content checksum {checksum}, but {expected_sha256} "
        "was expected (eval.inception_sha256). The file is not the recorded one: re-convert "
        f"it from {SOURCE_FILE}, or clear eval.inception_sha256 to accept and record it.")
  want = {k: tuple(v.shape) for k, v in flatten_variables(abstract_variables()).items()}
  got = {k: tuple(v.shape) for k, v in flat.items()}
  missing = sorted(set(want) - set(got))
  extra = sorted(set(got) - set(want))
  wrong = sorted(f"{k}: file {got[k]} vs module {want[k]}"
                 for k in set(want) & set(got) if got[k] != want[k])
  if missing or extra or wrong:
    lines = ([f"missing: {', '.join(missing[:10])}" + (" ..." if len(missing) > 10 else "")]
             if missing else [])
    lines += [f"unexpected: {', '.join(extra[:10])}" + (" ..." if len(extra) > 10 else "")] if extra else []
    lines += [f"wrong shape: {'; '.join(wrong[:10])}" + (" ..." if len(wrong) > 10 else "")] if wrong else []
    raise WeightsError(
        f"Inception weights {path!r} do not match the FID Inception-v3 module:\n  "
        + "\n  ".join(lines)
        + f"\nConvert {SOURCE_FILE} with gen_jax.eval.convert_inception.")
  variables = unflatten_variables({k: jnp.asarray(v, jnp.float32) for k, v in flat.items()})
  return variables, checksum


def make_apply_fn(resize: str = "tf1"):
  """(variables, uint8 images [B, H, W, C]) -> {"pool" [B, 2048], "logits" [B, 1008]}.

  "logits" are pool3 @ fc.kernel without the fc bias (the Inception Score's input).
  """
  module = FIDInceptionV3()

  def apply(variables, images):
    return module.apply(variables, preprocess(images, resize))

  return apply


def param_count(variables: Any) -> int:
  return int(sum(math.prod(x.shape) for x in jax.tree.leaves(variables["params"])))


__all__: Sequence[str] = (
    "FIDInceptionV3", "WeightsError", "abstract_variables", "init_variables", "load_weights",
    "make_apply_fn", "preprocess", "resize_matrix", "save_weights", "weights_checksum")
