"""Feature extractors for the sample metrics, registered by name (`FEATURE_EXTRACTORS`).

An extractor maps a host batch of samples to features, sharded over the mesh's devices:

    extractor = build_feature_extractor(config.eval, image_shape, mesh)
    out = extractor(samples)   # {"pool": float32 [B, D], "logits": float32 [B, K] or absent}

Inputs are what `train.evaluation.generate` returns and what data sources hold: uint8
images [B, H, W, C], or float32 vectors [B, D] for vector data (toy2d).

  inception   the FID Inception-v3 (`gen_jax.eval.inception`), pool3 (2048) + logits (1008,
              without the fc bias, as the original IS code), from the converted weights
              file `eval.inception_weights` (checked against `eval.inception_sha256` when
              set), preprocessing `eval.inception_resize`.
  classifier  the EMA parameters of a `classifier` run (`eval.classifier_workdir`, its
              latest checkpoint): penultimate features + logits, on x / 127.5 - 1.
  identity    the data itself (images flattened to x / 127.5 - 1): the Frechet distance in
              data space, the natural choice for 2-D toy data; no logits (no IS).

Each extractor carries a `protocol`: the fields that make two sets of features comparable
(extractor, weights checksum, preprocessing, layer, input shape). `gen_jax.eval.stats`
records it in every statistics file and refuses to compare files whose protocols differ,
so classifier-space FIDs are never mixed with Inception FIDs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import pathlib
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gen_jax.core import sharding
from gen_jax.core.registry import Registry

FEATURE_EXTRACTORS: Registry[Callable[..., "FeatureExtractor"]] = Registry("feature extractor")

# Recorded in the inception protocol (and so in eval/<step>.json and statistics files):
# results made before it was added used the logits WITH the fc bias for IS. FID, KID and
# precision/recall read pool3 only and are unaffected, so it is not a compared field.
INCEPTION_IS_LOGITS = "pool3 @ fc.kernel, no fc bias (1008-way)"


@dataclasses.dataclass
class FeatureExtractor:
  """A jitted, device-sharded feature map with the protocol that identifies it.

  Attributes:
    name: registry name.
    protocol: JSON-able dict of the fields that must agree between compared features.
    dim: feature dimension D.
    has_logits: whether `__call__` also returns "logits" (needed by IS).
    apply: (variables, x) -> {"pool": [B, D], "logits"?: [B, K]}, pure (jitted here).
    variables: its parameters (placed replicated on the mesh).
    mesh: the device mesh; batches are sharded over it.
    batch_size: rows per device call (batches are split / padded to it).
  """

  name: str
  protocol: dict[str, Any]
  dim: int
  has_logits: bool
  apply: Callable[[Any, jax.Array], dict[str, jax.Array]]
  variables: Any
  mesh: Any
  batch_size: int = 256
  _jitted: Any = dataclasses.field(default=None, repr=False)

  def __post_init__(self):
    n = self.mesh.devices.size
    self.batch_size = max(n, -(-self.batch_size // n) * n)
    rep = sharding.replicated(self.mesh)
    self.variables = jax.device_put(self.variables, rep)
    self._jitted = jax.jit(self.apply, in_shardings=(rep, sharding.batch_sharding(self.mesh)),
                           out_shardings=rep)

  def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
    """Features of a host batch x [N, ...] (the same on every process) -> host arrays."""
    x = np.asarray(x)
    outs: dict[str, list[np.ndarray]] = {}
    b = self.batch_size
    for start in range(0, len(x), b):
      chunk = x[start:start + b]
      real = len(chunk)
      if real < b:
        chunk = np.concatenate([chunk, np.repeat(chunk[-1:], b - real, axis=0)])
      global_chunk = jax.make_array_from_callback(
          chunk.shape, sharding.batch_sharding(self.mesh), lambda idx, c=chunk: c[idx])
      out = jax.device_get(self._jitted(self.variables, global_chunk))
      for k, v in out.items():
        outs.setdefault(k, []).append(np.asarray(v[:real], np.float32))
    return {k: np.concatenate(v) for k, v in outs.items()}


def _to_model_space(x: jax.Array) -> jax.Array:
  """uint8 images -> float32 in [-1, 1]; float inputs pass through."""
  if x.dtype == jnp.uint8:
    return x.astype(jnp.float32) / 127.5 - 1.0
  return x.astype(jnp.float32)


def params_checksum(tree: Any) -> str:
  """SHA-256 over the sorted (path, dtype, shape, bytes) of a parameter tree."""
  h = hashlib.sha256()
  leaves = jax.tree_util.tree_leaves_with_path(jax.device_get(tree))
  for path, leaf in sorted(leaves, key=lambda kv: jax.tree_util.keystr(kv[0])):
    a = np.ascontiguousarray(np.asarray(leaf))
    h.update(f"{jax.tree_util.keystr(path)}|{a.dtype.str}|{a.shape}|".encode())
    h.update(a.tobytes())
  return h.hexdigest()


# ---------------------------------------------------------------------------------------


@FEATURE_EXTRACTORS.register("identity")
def identity_extractor(cfg: Any, image_shape: tuple[int, ...], mesh) -> FeatureExtractor:
  """The data itself: flattened, uint8 images mapped to [-1, 1]."""
  del cfg
  dim = math.prod(image_shape)

  def apply(variables, x):
    del variables
    return {"pool": _to_model_space(x).reshape(x.shape[0], -1)}

  protocol = {"feature_extractor": "identity", "weights_sha256": "", "preprocessing":
              "x/127.5-1 for uint8, as-is for float", "layer": "data",
              "input_shape": list(image_shape)}
  return FeatureExtractor("identity", protocol, dim, False, apply, {}, mesh)


@FEATURE_EXTRACTORS.register("inception")
def inception_extractor(cfg: Any, image_shape: tuple[int, ...], mesh) -> FeatureExtractor:
  """FID Inception-v3 from eval.inception_weights (pool3 features and 1008 logits)."""
  from gen_jax.eval import inception  # pylint: disable=g-import-not-at-top
  if len(image_shape) != 3:
    raise ValueError(f"The inception feature extractor needs images [H, W, C]; this data has "
                     f"shape {tuple(image_shape)}. Use eval.feature_extractor='identity'.")
  variables, checksum = inception.load_weights(cfg.get("inception_weights", ""),
                                               cfg.get("inception_sha256", "") or None)
  resize = cfg.get("inception_resize", "tf1")
  protocol = {"feature_extractor": "inception_fid_2015_12_05", "weights_sha256": checksum,
              "preprocessing": f"uint8 -> bilinear {resize} to 299 -> [-1, 1]",
              "layer": "pool3", "input_shape": list(image_shape),
              "is_logits": INCEPTION_IS_LOGITS}
  return FeatureExtractor("inception", protocol, inception.POOL_DIM, True,
                          inception.make_apply_fn(resize), variables, mesh,
                          batch_size=int(cfg.get("feature_batch_size", 0) or 200))


def load_classifier(workdir: str | pathlib.Path):
  """(Classifier method, EMA params, step, config) of the latest checkpoint of a classifier run.

  The network is rebuilt from workdir/config.json; the number of classes and input channels
  are read from the checkpoint, so the dataset need not be present.
  """
  from gen_jax.methods import build_method  # pylint: disable=g-import-not-at-top
  from gen_jax.data.sources import DatasetInfo  # pylint: disable=g-import-not-at-top
  from gen_jax.train.checkpoint import Checkpointer  # pylint: disable=g-import-not-at-top
  workdir = pathlib.Path(workdir or "")
  config_path = workdir / "config.json"
  if not str(workdir) or not config_path.is_file():
    raise FileNotFoundError(
        f"eval.classifier_workdir={str(workdir)!r} holds no config.json. Train a classifier "
        "first, e.g. `python -m gen_jax.main --config=configs/classifier/digits.py "
        "--workdir=runs/cls_digits`, and point eval.classifier_workdir at that folder.")
  config = ml_collections.ConfigDict(json.loads(config_path.read_text()))
  if config.method.name != "classifier":
    raise ValueError(f"{workdir} is a {config.method.name!r} run, not a 'classifier' run.")
  checkpointer = Checkpointer(workdir / "checkpoints", asynchronous=False)
  try:
    step = checkpointer.latest_step()
    if step is None:
      raise FileNotFoundError(f"No checkpoint in {workdir / 'checkpoints'}; train the classifier.")
    raw = checkpointer.restore(step, None)
  finally:
    checkpointer.close()
  params = jax.tree.map(np.asarray, raw["ema_params"])
  num_classes = int(params["logits"]["bias"].shape[0])
  channels = int(params["conv0_a"]["kernel"].shape[2])
  # Only the channels and classes matter to build the method; the parameters (whose shapes
  # fix H, W) come from the checkpoint.
  info = DatasetInfo((8, 8, channels), num_classes, 0)
  return build_method(config, info), params, int(step), config


@FEATURE_EXTRACTORS.register("classifier")
def classifier_extractor(cfg: Any, image_shape: tuple[int, ...], mesh) -> FeatureExtractor:
  """Penultimate features and logits of the classifier trained in eval.classifier_workdir."""
  method, params, step, ccfg = load_classifier(cfg.get("classifier_workdir", ""))
  if len(image_shape) != 3 or image_shape[-1] != method.image_shape[-1]:
    raise ValueError(f"The classifier in {cfg.get('classifier_workdir')} takes images with "
                     f"{method.image_shape[-1]} channel(s); this data has shape "
                     f"{tuple(image_shape)}.")

  def apply(variables, x):
    feats, logits = method.apply(variables, _to_model_space(x))
    return {"pool": feats, "logits": logits}

  try:
    jax.eval_shape(apply, params, jax.ShapeDtypeStruct((1, *image_shape), jnp.uint8))
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f"The classifier in {cfg.get('classifier_workdir')} was trained on images "
                     f"of another size than {tuple(image_shape)}; train one on this data "
                     f"({type(e).__name__}: {str(e)[:200]}).") from None

  protocol = {"feature_extractor": "classifier", "weights_sha256": params_checksum(params),
              "preprocessing": "uint8 -> x/127.5-1", "layer": "penultimate",
              "input_shape": list(image_shape),
              "classifier": {"dataset": ccfg.data.get("name") or ccfg.data.source,
                             "step": step, "model": ccfg.model.to_dict()}}
  return FeatureExtractor("classifier", protocol, int(method.net.hidden), True, apply, params,
                          mesh, batch_size=int(cfg.get("feature_batch_size", 0) or 512))


def build_feature_extractor(eval_cfg: Any, image_shape: tuple[int, ...], mesh) -> FeatureExtractor:
  """The extractor named eval_cfg.feature_extractor for data of `image_shape`."""
  name = eval_cfg.get("feature_extractor", "inception")
  return FEATURE_EXTRACTORS.get(name)(eval_cfg, tuple(int(d) for d in image_shape), mesh)
