"""Feature statistics files with their protocol inside, and the refusal to mix protocols.

A statistics file (.npz) holds the Gaussian statistics of a set of features and,
optionally, the features and logits themselves (KID, precision/recall, density/coverage
and IS need them):

  mu      float64 [D]        sigma   float64 [D, D] (unbiased covariance)
  features float32 [N, D]    logits  float32 [N, K]   (optional)
  protocol  a JSON string:
    feature_extractor, weights_sha256, preprocessing, layer, input_shape, (classifier)
        -- how features were computed: these must agree for two files to be compared
           (`COMPARED_FIELDS`);
    protocol_version, gen_jax_version, source ("dataset" or "samples"), dataset, split,
    count, and for samples seed/step/sampler -- what the features describe (recorded, not
    required to agree: a 10k-sample FID against 50k training images is a normal protocol,
    and it is written down).

FID numbers move by several points with the sample count, the reference split and the
resize (clean-fid; StudioGAN), so every number gen_jax reports carries this record, and
differences in what two files describe (`DESCRIBED_FIELDS`: dataset, split, count, ...)
are reported wherever two of them meet (`protocol_differences`). A difference of
dataset changes what the number means (it no longer measures closeness to one dataset):
it is refused unless explicitly allowed.

`python -m gen_jax.eval.stats A.npz B.npz [--allow_protocol_differences]` prints the
Frechet distance between two files with their differences, or refuses with the list of
differing fields.

Statistics made by other tools serve FID only (`load_external`): TTUR's
`fid_stats_*.npz` ("ttur": mu, sigma) and the reference batches of guided-diffusion / EDM
("adm": mu, sigma beside the images). They carry no protocol, so the user declares one; it
is recorded with `source: "external"`, and such files are never cached or compared as
gen_jax statistics. KID, precision/recall and density/coverage need the features, which
these files do not hold.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import sys
from typing import Any

import numpy as np

import gen_jax
from gen_jax.eval import metrics as metrics_lib

PROTOCOL_VERSION = 1
COMPARED_FIELDS = ("protocol_version", "feature_extractor", "weights_sha256", "preprocessing",
                   "layer", "input_shape", "classifier")


# What a statistics file describes; reported when two files differ in them.
DESCRIBED_FIELDS = ("source", "dataset", "split", "count", "image_size")
# Differences that change what a number between two files means: refused unless allowed.
MEANING_FIELDS = ("dataset",)
EXTERNAL_FORMATS = ("ttur", "adm")
EXTERNAL_METRICS = ("fid", "is")  # what a file with mu/sigma only can serve (IS needs none)


class ProtocolMismatchError(ValueError):
  """Two sets of feature statistics were computed under different protocols."""


@dataclasses.dataclass
class FeatureStats:
  """Statistics of one set of features and the protocol they were computed under."""

  mu: np.ndarray
  sigma: np.ndarray
  protocol: dict[str, Any]
  features: np.ndarray | None = None
  logits: np.ndarray | None = None

  @property
  def count(self) -> int:
    return int(self.protocol.get("count", 0))

  def as_metric_input(self) -> dict[str, Any]:
    return {"mu": self.mu, "sigma": self.sigma, "features": self.features, "logits": self.logits}


def make_protocol(extractor_protocol: dict[str, Any], **fields) -> dict[str, Any]:
  """The extractor's protocol plus version fields and the description `fields`."""
  return {**extractor_protocol, "protocol_version": PROTOCOL_VERSION,
          "gen_jax_version": gen_jax.__version__, **fields}


def from_features(pool: np.ndarray, protocol: dict[str, Any], *, logits: np.ndarray | None = None,
                  keep_features: bool = True) -> FeatureStats:
  """FeatureStats of features [N, D]; "count" is set in the protocol."""
  mu, sigma = metrics_lib.feature_statistics(pool)
  return FeatureStats(mu, sigma, {**protocol, "count": int(len(pool))},
                      features=np.asarray(pool, np.float32) if keep_features else None,
                      logits=None if logits is None else np.asarray(logits, np.float32))


def check_comparable(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str] = ("a", "b")
                     ) -> None:
  """Raises ProtocolMismatchError listing every COMPARED_FIELDS entry where a and b differ."""
  diffs = [f for f in COMPARED_FIELDS if _norm(a.get(f)) != _norm(b.get(f))]
  if diffs:
    lines = "\n".join(f"  {f}: {names[0]}={a.get(f)!r} vs {names[1]}={b.get(f)!r}" for f in diffs)
    raise ProtocolMismatchError(
        f"Refusing to compare feature statistics computed under different protocols "
        f"({names[0]} vs {names[1]}); differing fields:\n{lines}\nRecompute one of them with "
        "the other's feature extractor, weights and preprocessing (gen_jax --mode=stats).")


def protocol_differences(a: dict[str, Any], b: dict[str, Any],
                         fields: tuple[str, ...] = DESCRIBED_FIELDS) -> dict[str, list[Any]]:
  """{field: [a's value, b's value]} for each of `fields` that both record and that differ."""
  return {f: [a[f], b[f]] for f in fields
          if a.get(f) is not None and b.get(f) is not None and _norm(a[f]) != _norm(b[f])}


def describe_differences(diffs: dict[str, list[Any]], names: tuple[str, str] = ("a", "b")
                         ) -> str:
  """'split: a='train' vs b='test'; count: ...' (empty when there is no difference)."""
  return "; ".join(f"{f}: {names[0]}={va!r} vs {names[1]}={vb!r}"
                   for f, (va, vb) in diffs.items())


def check_same_meaning(diffs: dict[str, list[Any]], names: tuple[str, str] = ("a", "b"), *,
                       allow: bool = False, meaning_fields: tuple[str, ...] = MEANING_FIELDS,
                       flag: str = "--allow_protocol_differences") -> None:
  """Raises ProtocolMismatchError when `diffs` has a field of `meaning_fields`, unless `allow`."""
  changed = {f: v for f, v in diffs.items() if f in meaning_fields}
  if changed and not allow:
    raise ProtocolMismatchError(
        f"Refusing to compare statistics that describe different data "
        f"({describe_differences(changed, names)}): the number would not mean what its "
        f"protocol says. Use statistics of the same data, or pass {flag} to compare anyway "
        "(the differences are then recorded).")


def _norm(value: Any) -> Any:
  return json.loads(json.dumps(value)) if value is not None else None  # tuples == lists


def save(path: str | os.PathLike, stats: FeatureStats) -> str:
  """Writes `stats` as .npz (written to a temporary name, then renamed); returns the path."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  arrays = {"mu": np.asarray(stats.mu, np.float64), "sigma": np.asarray(stats.sigma, np.float64),
            "protocol": np.asarray(json.dumps(stats.protocol, sort_keys=True))}
  if stats.features is not None:
    arrays["features"] = np.asarray(stats.features, np.float32)
  if stats.logits is not None:
    arrays["logits"] = np.asarray(stats.logits, np.float32)
  tmp = path.with_name(path.name + ".tmp.npz")
  np.savez(tmp, **arrays)
  os.replace(tmp, path)
  return str(path)


def load(path: str | os.PathLike) -> FeatureStats:
  """Reads a statistics file written by `save`."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"Statistics file {str(path)!r} does not exist; compute one with "
                            "`python -m gen_jax.main --mode=stats --config=...`.")
  with np.load(path, allow_pickle=False) as data:
    if "protocol" not in data.files or "mu" not in data.files:
      raise ValueError(f"{path} is not a gen_jax statistics file (no 'protocol'/'mu'); files "
                       "from other tools carry no protocol and cannot be compared safely.")
    return FeatureStats(
        mu=data["mu"], sigma=data["sigma"], protocol=json.loads(str(data["protocol"])),
        features=data["features"] if "features" in data.files else None,
        logits=data["logits"] if "logits" in data.files else None)


def load_external(path: str | os.PathLike, file_format: str, declared_protocol: str
                  ) -> FeatureStats:
  """mu/sigma of another tool's statistics file, with a protocol marked external.

  Args:
    path: TTUR's fid_stats_*.npz ("ttur") or a guided-diffusion/EDM reference batch .npz
      ("adm"); both hold "mu" [D] and "sigma" [D, D] (an adm batch also holds the images
      and spatial statistics, which are not read).
    file_format: "ttur" or "adm".
    declared_protocol: the user's description of how the file was made (which network,
      resize, split and count); required, because the file records none of it.

  Raises:
    ValueError: unknown format, no declaration, or a file without mu/sigma of shapes
      [D] and [D, D].
  """
  path = pathlib.Path(path)
  if file_format not in EXTERNAL_FORMATS:
    raise ValueError(f"Unknown external statistics format {file_format!r}; choose one of: "
                     f"{', '.join(EXTERNAL_FORMATS)}.")
  if not str(declared_protocol or "").strip():
    raise ValueError(
        f"A {file_format} statistics file carries no protocol: declare how {path.name} was "
        "made in eval.reference_stats_protocol (e.g. 'TTUR fid_stats_cifar10_train.npz: TF "
        "FID Inception pool3, 50000 training images'); it is recorded with every result.")
  if not path.is_file():
    raise FileNotFoundError(f"Statistics file {str(path)!r} does not exist.")
  with np.load(path, allow_pickle=False) as data:
    if "mu" not in data.files or "sigma" not in data.files:
      raise ValueError(f"{path} holds {sorted(data.files)}, not the 'mu' and 'sigma' of a "
                       f"{file_format} statistics file.")
    mu, sigma = np.asarray(data["mu"], np.float64), np.asarray(data["sigma"], np.float64)
  if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
    raise ValueError(f"{path}: mu {mu.shape} and sigma {sigma.shape} are not [D] and [D, D].")
  digest = hashlib.sha256(path.read_bytes()).hexdigest()
  protocol = {"source": "external", "external_format": file_format,
              "declared_protocol": str(declared_protocol), "file": str(path),
              "file_sha256": digest, "dim": int(mu.shape[0])}
  return FeatureStats(mu=mu, sigma=sigma, protocol=protocol)


def compare(a: FeatureStats, b: FeatureStats, names: tuple[str, str] = ("a", "b"),
            metric_names=("fid",), *, allow_differences: bool = False,
            **kwargs) -> dict[str, float]:
  """The metrics between two statistics (b plays the samples), after the protocol checks.

  Raises ProtocolMismatchError when the feature protocols differ, or when the two describe
  different data (`MEANING_FIELDS`) and `allow_differences` is False.
  """
  check_comparable(a.protocol, b.protocol, names)
  check_same_meaning(protocol_differences(a.protocol, b.protocol), names,
                     allow=allow_differences)
  return metrics_lib.compute_metrics(metric_names, a.as_metric_input(), b.as_metric_input(),
                                     **kwargs)


def compare_files(path_a: str, path_b: str, metric_names=("fid",), *,
                  allow_differences: bool = False) -> dict[str, float]:
  return compare(load(path_a), load(path_b), (str(path_a), str(path_b)), metric_names,
                 allow_differences=allow_differences)


# ---------------------------------------------------------------------------------------
# Statistics of a dataset split.


def dataset_features(source: Any, extractor, *, count: int = 0, batch_size: int = 500
                     ) -> dict[str, np.ndarray]:
  """Features of the first `count` examples of `source` (0: all), read as stored (uint8).

  Reads the raw examples (no flips, no dequantization), so reference features are those of
  the data exactly as a generator's quantized samples are seen.
  """
  n = len(source) if not count else min(int(count), len(source))
  outs: dict[str, list[np.ndarray]] = {}
  for start in range(0, n, batch_size):
    batch = np.stack([np.asarray(source[i]["image"]) for i in range(start, min(n, start + batch_size))])
    for k, v in extractor(batch).items():
      outs.setdefault(k, []).append(v)
  return {k: np.concatenate(v) for k, v in outs.items()}


def dataset_stats(data_cfg: Any, split: str, extractor, *, count: int = 0,
                  keep_features: bool = False) -> FeatureStats:
  """FeatureStats of a dataset split ("train" or "eval", as in data.build_source)."""
  from gen_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  source, _ = data_lib.build_source(data_cfg, split)
  feats = dataset_features(source, extractor, count=count)
  split_name = data_cfg.get("split" if split == "train" else "eval_split", split)
  protocol = make_protocol(extractor.protocol, source="dataset",
                           dataset=data_cfg.get("name") or data_cfg.get("source"),
                           data_source=data_cfg.get("source"), split=split_name,
                           image_size=data_cfg.get("image_size"))
  return from_features(feats["pool"], protocol, logits=feats.get("logits"),
                       keep_features=keep_features)


_USAGE = ("usage: python -m gen_jax.eval.stats A.npz B.npz [--allow_protocol_differences]\n"
          "  prints {\"fid\": ..., \"protocol_differences\": {field: [A's, B's]}}; refuses "
          "files of different feature protocols or different datasets.")


def main(argv: list[str]) -> int:
  """The command line: Frechet distance of two files, their differences on stderr."""
  flag = "--allow_protocol_differences"
  paths = [a for a in argv[1:] if a != flag]
  if len(paths) != 2 or any(p.startswith("-") for p in paths):
    print(_USAGE, file=sys.stderr)
    return 2
  names = (paths[0], paths[1])
  try:
    a, b = load(paths[0]), load(paths[1])
    diffs = protocol_differences(a.protocol, b.protocol)
    if diffs:
      print(f"Note: the two files describe different data: {describe_differences(diffs, names)}",
            file=sys.stderr)
    results = compare(a, b, names, allow_differences=flag in argv)
  except (ProtocolMismatchError, ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(json.dumps({**results, "protocol_differences": diffs}))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
