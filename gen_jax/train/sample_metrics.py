"""Sample metrics of a checkpoint (FID, KID, IS, precision/recall, density/coverage).

Used by `--mode=eval` (config.eval.num_samples samples, resumable) and by the periodic
evaluation during training (config.eval.periodic_num_samples samples, a cheap curve):

  1. the feature extractor named config.eval.feature_extractor is built once
     (`gen_jax.eval.features`);
  2. the reference statistics are loaded from config.eval.reference_stats, or computed
     from the config.eval.reference_split split of the data and cached under
     workdir/eval/reference_<hash>.npz (the hash covers the extractor protocol, the
     split, the count and whether features are kept); their protocol must match the
     extractor's (`stats.check_comparable`);
  3. samples are drawn with the EMA parameters through `method.sample` in chunks of
     config.eval.sample_batch_size (default config.sample.batch_size); chunk i uses the key
     fold_in(fold_in(eval_key, SAMPLE_METRICS_SALT), i), the same for every checkpoint, so
     checkpoints are compared on identical noise and a resumed evaluation redraws exactly
     the missing chunks;
  4. with `resumable=True` each chunk's features are saved to
     workdir/eval/partial_<step>/chunk_<i>.npz as soon as they exist, done chunks are
     skipped after an interruption, and the folder is removed once the result is written;
  5. the metrics are computed against the reference (`metrics.compute_metrics`).

The protocol record written beside the numbers holds the feature protocol, what the
reference describes (dataset, split, count) and how any of it differs from what the
config asks for, the sample count, the sampler's settings as the method uses them (steps,
eta, guidance, temperature, ...) and the network evaluations per sample, and the KID
subset size actually used. A reference file that describes another dataset or split than
the config's is refused unless eval.allow_protocol_differences=True; another count is
reported. Precision/recall and density/coverage compare k-NN balls whose radii shrink as a
set grows, so they are computed on equal numbers of real and fake features (Kynkaanniemi
et al. 2019; Naeem et al. 2020): the larger set is subsampled (fixed seed) to the smaller
one's size, and the record says so. A reference file of another tool
(eval.reference_stats_format=ttur|adm, `stats.load_external`) serves FID (and IS, which
needs no reference) only, and is recorded as external with the user's declaration.
"""

from __future__ import annotations

import hashlib
import json
import math
import pathlib
from typing import Any

import jax
import numpy as np
from absl import logging

from gen_jax.eval import features as features_lib
from gen_jax.eval import metrics as metrics_lib
from gen_jax.eval import stats as stats_lib
from gen_jax.core.sample import SampleSpec
from gen_jax.train import chunks, evaluation
from gen_jax.train.experiment import Experiment
from gen_jax.core.state import TrainState

SAMPLE_METRICS_SALT = 0x5A3D
_NEED_FEATURES = frozenset({"kid", "pr", "dc"})
_EQUAL_COUNT_METRICS = frozenset({"pr", "dc"})
# Method attributes that say how it samples (recorded when the method has them).
_SAMPLER_ATTRIBUTES = ("sampler", "sampler_kwargs", "guidance_scale", "clip_x0", "temperature")


def _hash(obj: Any) -> str:
  return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
  if isinstance(value, (str, int, float, bool)) or value is None:
    return value
  if isinstance(value, dict) or hasattr(value, "items"):
    return {str(k): _jsonable(v) for k, v in value.items()}
  if isinstance(value, (tuple, list)):
    return [_jsonable(v) for v in value]
  if isinstance(value, (np.generic, np.ndarray)) and np.ndim(value) == 0:
    return value.item()
  return str(value)


def sampler_settings(method: Any, spec: SampleSpec = SampleSpec()) -> dict[str, Any]:
  """How `method.sample` draws samples: its sampler name and settings, as it holds them,
  then what `spec` requests instead (temperature, guidance_scale, truncation, ...).

  E.g. {"family": "DDPM", "sampler": "ddim", "num_steps": 50, "eta": 0.0,
  "guidance_scale": 0.0, "clip_x0": True}; a flow gives its temperature, a GAN only its
  family (one generator pass).
  """
  out: dict[str, Any] = {"family": type(method).__name__}
  for name in _SAMPLER_ATTRIBUTES:
    if hasattr(method, name):
      value = getattr(method, name)
      if name == "sampler_kwargs":
        out.update(_jsonable(dict(value or {})))
      else:
        out[name] = _jsonable(value)
  for name in spec.requested():
    value = getattr(spec, name)
    if name == "sampler_options":
      out.update(_jsonable(dict(value)))
    else:
      out[name] = _jsonable(value)
  return out


def _equal_counts(real: np.ndarray, fake: np.ndarray, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
  """Subsamples (without replacement, fixed seed) the larger of real/fake to the other's size."""
  n = min(len(real), len(fake))
  rng = np.random.default_rng(seed)
  pick = lambda x: x if len(x) == n else x[np.sort(rng.choice(len(x), n, replace=False))]
  return pick(real), pick(fake)


class SampleEvaluator:
  """Builds the extractor and the reference once per run; evaluates checkpoints."""

  def __init__(self, exp: Experiment):
    self.exp = exp
    cfg = exp.config.eval
    self.metric_names = tuple(cfg.get("metrics", ()) or ())
    unknown = sorted(set(self.metric_names) - set(metrics_lib.SAMPLE_METRICS))
    if unknown:
      raise ValueError(f"Unknown eval.metrics {unknown}; choose from "
                       f"{list(metrics_lib.SAMPLE_METRICS)} (or leave it empty).")
    self._extractor = None
    self._reference = None
    self._reference_differences: dict[str, list[Any]] = {}
    self.nfe = None  # network evaluations per sample of the last drawn chunk
    fmt = cfg.get("reference_stats_format", "gen_jax") or "gen_jax"
    if fmt != "gen_jax":
      if not cfg.get("reference_stats"):
        raise ValueError(f"eval.reference_stats_format={fmt!r} needs the file: set "
                         "eval.reference_stats to its path.")
      refused = sorted(set(self.metric_names) - set(stats_lib.EXTERNAL_METRICS))
      if refused:
        raise ValueError(
            f"eval.metrics {refused} need the reference features, but a {fmt} statistics "
            f"file ({cfg.reference_stats}) holds only mu/sigma: it serves "
            f"{list(stats_lib.EXTERNAL_METRICS)}. Drop those metrics, or compute gen_jax "
            "statistics with features (--mode=stats with the same eval.metrics).")
    self.reference_format = fmt

  @property
  def enabled(self) -> bool:
    return bool(self.metric_names)

  @property
  def keep_features(self) -> bool:
    return bool(_NEED_FEATURES & set(self.metric_names))

  @property
  def extractor(self) -> features_lib.FeatureExtractor:
    if self._extractor is None:
      self._extractor = features_lib.build_feature_extractor(
          self.exp.config.eval, self.exp.info.image_shape, self.exp.mesh)
    return self._extractor

  # ------------------------------------------------------------------ reference

  def reference(self) -> stats_lib.FeatureStats:
    if self._reference is None:
      self._reference = self._load_or_compute_reference()
    return self._reference

  def expected_reference(self) -> dict[str, Any]:
    """What the config says the reference describes: dataset, split name, count (if set)."""
    data, cfg = self.exp.config.data, self.exp.config.eval
    split = cfg.get("reference_split", "train")
    out = {"dataset": data.get("name") or data.get("source"),
           "split": data.get("split" if split == "train" else "eval_split", split)}
    if int(cfg.get("reference_count", 0) or 0):
      out["count"] = int(cfg.reference_count)
    return out

  def _load_or_compute_reference(self) -> stats_lib.FeatureStats:
    cfg = self.exp.config.eval
    protocol = self.extractor.protocol
    if self.reference_format != "gen_jax":
      ref = stats_lib.load_external(cfg.reference_stats, self.reference_format,
                                    cfg.get("reference_stats_protocol", ""))
      if ref.mu.shape[0] != self.extractor.dim:
        raise ValueError(f"{cfg.reference_stats} holds {ref.mu.shape[0]}-dimensional "
                         f"statistics; the {self.extractor.name} features have "
                         f"{self.extractor.dim}.")
      if self.extractor.name != "inception":
        logging.warning("%s statistics are Inception pool3 statistics by definition; this "
                        "evaluation uses %s features (recorded).", self.reference_format,
                        self.extractor.name)
      logging.info("External %s reference statistics %s, declared as: %s",
                   self.reference_format, cfg.reference_stats, ref.protocol["declared_protocol"])
      return ref
    if cfg.get("reference_stats"):
      names = (f"reference {cfg.reference_stats}", "the config")
      ref = stats_lib.load(cfg.reference_stats)
      stats_lib.check_comparable(ref.protocol, stats_lib.make_protocol(protocol),
                                 (f"reference {cfg.reference_stats}", "this evaluation"))
      diffs = stats_lib.protocol_differences(ref.protocol, self.expected_reference())
      stats_lib.check_same_meaning(
          diffs, names, allow=bool(cfg.get("allow_protocol_differences", False)),
          meaning_fields=("dataset", "split"), flag="eval.allow_protocol_differences=True")
      if diffs:
        logging.warning("The reference statistics differ from what the config describes: %s",
                        stats_lib.describe_differences(diffs, names))
      self._reference_differences = diffs
      if self.keep_features and ref.features is None:
        raise ValueError(f"eval.metrics {list(self.metric_names)} need the reference features, "
                         f"but {cfg.reference_stats} holds only mu/sigma; recompute it with "
                         "--mode=stats and the same eval.metrics.")
      return ref
    split = cfg.get("reference_split", "train")
    count = int(cfg.get("reference_count", 0) or 0)
    key = _hash({"protocol": protocol, "data": self.exp.config.data.to_dict(), "split": split,
                 "count": count, "features": self.keep_features})
    path = self.exp.workdir / "eval" / f"reference_{split}_{key}.npz"
    if path.is_file():
      logging.info("Reference statistics from the cache %s.", path)
      return stats_lib.load(path)
    logging.info("Computing reference statistics of the %s split with %s ...", split,
                 self.extractor.name)
    ref = stats_lib.dataset_stats(self.exp.config.data, split, self.extractor, count=count,
                                  keep_features=self.keep_features)
    if jax.process_index() == 0:
      stats_lib.save(path, ref)
    return ref

  # ------------------------------------------------------------------ samples

  def sample_features(self, state: TrainState, num_samples: int, batch_size: int,
                      partial_dir: pathlib.Path | None = None) -> dict[str, np.ndarray]:
    """Features of `num_samples` samples, chunk by chunk (resumable with `partial_dir`)."""
    exp = self.exp
    batch_size = min(batch_size, num_samples)
    num_chunks = math.ceil(num_samples / batch_size)
    base = jax.random.fold_in(exp.eval_key, SAMPLE_METRICS_SALT)
    meta = None
    if partial_dir is not None:
      meta = {"num_samples": num_samples, "batch_size": batch_size, "seed": exp.config.seed,
              "protocol": self.extractor.protocol}
      spec = exp.sample_spec
      if spec.requested():  # chunks drawn at another temperature etc. are not reused
        meta["sample_request"] = {k: _jsonable(getattr(spec, k)) for k in spec.requested()}

    def produce(i):
      samples, self.nfe, _ = evaluation.generate(exp, state, batch_size, batch_size,
                                                 jax.random.fold_in(base, i))
      return self.extractor(samples)

    result = chunks.run_chunks(num_chunks, produce, partial_dir=partial_dir, meta=meta,
                               what="sample-feature chunks")
    return {k: v[:num_samples] for k, v in result.arrays.items()}

  def discard_partial(self, step: int) -> None:
    """Removes workdir/eval/partial_<step>/ (call once the result is written)."""
    chunks.discard_dir(self.exp.workdir / "eval" / f"partial_{step}")

  def evaluate(self, state: TrainState, step: int, num_samples: int, *,
               resumable: bool = False) -> tuple[dict[str, float], dict[str, Any]]:
    """(metrics, protocol record) of `num_samples` samples of `state` against the reference."""
    exp = self.exp
    cfg = exp.config.eval
    ref = self.reference()
    batch_size = int(cfg.get("sample_batch_size", 0) or exp.config.sample.batch_size)
    partial = exp.workdir / "eval" / f"partial_{step}" if resumable else None
    feats = self.sample_features(state, num_samples, batch_size, partial)
    fake = stats_lib.from_features(
        feats["pool"], stats_lib.make_protocol(self.extractor.protocol, source="samples"),
        logits=feats.get("logits"), keep_features=self.keep_features)
    kwargs = dict(kid_subsets=int(cfg.get("kid_subsets", 100)),
                  kid_subset_size=int(cfg.get("kid_subset_size", 1000)),
                  is_splits=int(cfg.get("is_splits", 10)), pr_k=int(cfg.get("pr_k", 3)),
                  dc_k=int(cfg.get("dc_k", 5)), mesh=exp.mesh)
    real_in, fake_in = ref.as_metric_input(), fake.as_metric_input()
    names = set(self.metric_names)
    results = metrics_lib.compute_metrics(
        [m for m in self.metric_names if m not in _EQUAL_COUNT_METRICS], real_in, fake_in,
        **kwargs)
    equal_count = None
    if names & _EQUAL_COUNT_METRICS:
      real_f, fake_f = _equal_counts(real_in["features"], fake_in["features"])
      equal_count = len(real_f)
      if len(real_in["features"]) != len(fake_in["features"]):
        logging.info("Precision/recall and density/coverage on %d real and %d fake features "
                     "(the larger set subsampled to the smaller's size).", equal_count,
                     equal_count)
      results.update(metrics_lib.compute_metrics(
          [m for m in self.metric_names if m in _EQUAL_COUNT_METRICS],
          {**real_in, "features": real_f}, {**fake_in, "features": fake_f}, **kwargs))
    ref_count = ref.count or (None if ref.features is None else len(ref.features))
    record = {
        "metrics": list(self.metric_names),
        "feature_protocol": self.extractor.protocol,
        "reference": {k: v for k, v in ref.protocol.items()
                      if k not in stats_lib.COMPARED_FIELDS or k == "protocol_version"},
        "reference_stats": str(cfg.get("reference_stats") or "computed from the data (cached)"),
        "reference_stats_format": self.reference_format,
        "reference_expected": self.expected_reference(),
        "protocol_differences": self._reference_differences,
        "counts": {"reference": ref_count, "samples": int(num_samples)},
        "num_samples": int(num_samples),
        "sample_batch_size": batch_size,
        "sampler": sampler_settings(exp.method, exp.sample_spec),
        "nfe_per_sample": self.nfe,
        "params": "ema",
        "pr_k": int(cfg.get("pr_k", 3)), "dc_k": int(cfg.get("dc_k", 5)),
        "is_splits": int(cfg.get("is_splits", 10)),
    }
    if "kid" in names:
      requested = kwargs["kid_subset_size"]
      used = min(requested, len(real_in["features"]), len(fake_in["features"]))
      if used < requested:
        logging.warning("KID subsets of %d rows instead of eval.kid_subset_size=%d (only %d "
                        "reference and %d sample features).", used, requested,
                        len(real_in["features"]), len(fake_in["features"]))
      record["kid"] = {"subsets": kwargs["kid_subsets"], "subset_size": requested,
                       "subset_size_used": used}
    if equal_count is not None:
      record["pr_dc_count"] = equal_count  # real and fake features each, after subsampling
    results["num_samples"] = int(num_samples)
    return results, record
