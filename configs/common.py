"""Defaults shared by every experiment config, and the ':arg' parser.

Each config file defines `get_config(arg=None)` and builds on `base_config()`; the
argument after ':' on the command line (`--config=configs/ddpm/cifar10.py:smoke`) arrives
as `arg`. Every config supports `smoke`: a few steps of a tiny model that run in seconds
on a CPU, used by the test suite to run every config for real.

The returned ConfigDict is locked: overriding or setting a field that does not exist
(e.g. a typo like --config.optim.learing_rate) is an error naming the field. The helpers
at the end turn such mistakes into one-line `ConfigError`s: `check_field_path` (an
unknown dotted path, with the closest existing fields) and `check_choices` (a value
outside an enumerated field's allowed values, listed in `CHOICES`).
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable, Mapping

import ml_collections
from ml_collections import config_dict


def parse_arg(arg: str | None, **defaults):
  """Parses 'smoke,foo=1' into a ConfigDict {smoke: True, foo: 1} over `defaults`.

  A bare name is a boolean flag set to True; name=value is cast to the default's type.
  """
  out = ml_collections.ConfigDict(dict(defaults))
  for part in (arg or "").split(","):
    part = part.strip()
    if not part:
      continue
    name, _, value = part.partition("=")
    if name not in out:
      raise ValueError(f"Unknown config argument {name!r}; valid: {', '.join(sorted(out.keys()))}.")
    default = out[name]
    if not value:
      out[name] = True
    elif isinstance(default, bool):
      out[name] = value.lower() in ("1", "true", "yes")
    else:
      out[name] = type(default)(value)
  return out


def base_config() -> ml_collections.ConfigDict:
  """Fields every family uses; a family config fills `model` and `method`."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.batch_size = 128  # global, over all devices of all processes
  c.num_train_steps = 100_000
  # Speed and scale (gen_jax/core/precision.py, train/step.py, core/sharding.py):
  c.precision = "fp32"  # fp32 | bf16: the networks' computation dtype (params stay fp32)
  c.grad_accum_steps = 1  # average the gradients of this many micro-batches per update
  c.mesh = ""  # device mesh, e.g. "data=2,fsdp=4" ("": every device on the data axis)

  c.data = ml_collections.ConfigDict(dict(
      source="digits",  # digits | tfds | folder | idx | npz
      name="",  # tfds dataset name
      split="train",
      eval_split="test",
      data_dir=config_dict.placeholder(str),  # tfds data_dir (None: tfds default)
      path="",  # local sources: folder root / IDX images file / .npz, training split
      eval_path="",  # the same for the evaluation split
      # Resize every image: an int (square) or (height, width); None keeps the size.
      image_size=config_dict.placeholder(object),
      random_flip=False,
      dequantize=False,
      download=False,  # allow tfds to download and prepare the dataset
      num_threads=4,
      prefetch=8,
      # Skip unreadable / wrongly-sized files, truncated records and unlabelled rows
      # (counted in the log) instead of stopping with an error naming them.
      skip_corrupt=False,
  ))

  c.model = ml_collections.ConfigDict()  # network name and keyword arguments
  c.method = ml_collections.ConfigDict()  # family name and family settings

  c.optim = ml_collections.ConfigDict(dict(
      name="adam", learning_rate=2e-4, warmup_steps=0, schedule="constant",
      b1=0.9, b2=0.999, eps=1e-8, momentum=0.0, weight_decay=0.0, grad_clip_norm=1.0))

  c.ema = ml_collections.ConfigDict(dict(decay=0.9999, warmup=True))

  c.sample = ml_collections.ConfigDict(dict(  # each family adds its own sampler fields
      num_samples=64,  # --mode=sample
      batch_size=64,
      grid_size=64,  # images in the periodic training grids
      # What every run asks of the family's sample (one SampleSpec; None: the family's
      # default). A family refuses, naming it, a request it cannot honour.
      temperature=config_dict.placeholder(float),  # T of the prior z ~ N(0, T^2 I) (flows)
      truncation=config_dict.placeholder(float),  # psi of a GAN's latent truncation
      # --mode=sample writes one set of samples per temperature, e.g. (0.5, 0.7, 1.0).
      temperatures=(),
  ))

  c.eval = ml_collections.ConfigDict(dict(
      batch_size=0,  # 0: the training batch size
      max_batches=0,  # 0: the whole evaluation split
      # Sample metrics (gen_jax/eval): any of "fid", "kid", "is", "pr", "dc"; empty: none.
      metrics=(),
      num_samples=10_000,  # samples for --mode=eval (50_000 for paper numbers)
      periodic_num_samples=1000,  # samples for the metrics during training (0: none)
      sample_batch_size=0,  # samples per chunk (0: sample.batch_size); resume granularity
      feature_extractor="inception",  # inception | classifier | identity
      feature_batch_size=0,  # images per feature-extractor call (0: extractor default)
      inception_weights="",  # converted FID Inception .npz (gen_jax/eval/convert_inception.py)
      inception_sha256="",  # expected content checksum of that file ("": accept and record)
      inception_resize="tf1",  # tf1 (the TF FID graph's ResizeBilinear) | pytorch
      classifier_workdir="",  # a configs/classifier/* run, for feature_extractor="classifier"
      reference_stats="",  # .npz from --mode=stats ("": computed from the data and cached)
      # gen_jax (a --mode=stats file) | ttur (TTUR's fid_stats_*.npz: mu, sigma) | adm
      # (guided-diffusion/EDM reference batch .npz: mu, sigma): external files serve FID only.
      reference_stats_format="gen_jax",
      reference_stats_protocol="",  # ttur/adm: how that file was made (required, recorded)
      reference_split="train",  # train | eval: the split the reference statistics describe
      reference_count=0,  # examples of that split (0: all)
      # Accept a reference file whose dataset/split/count differs from the fields above.
      allow_protocol_differences=False,
      kid_subsets=100,
      kid_subset_size=1000,
      is_splits=10,
      pr_k=3,  # k of the precision/recall k-NN balls
      dc_k=5,  # k of the density/coverage k-NN balls
  ))

  c.trainer = ml_collections.ConfigDict(dict(
      num_devices=0,  # 0: every device of every process
      log_every_steps=100,
      checkpoint_every_steps=5000,
      keep_last_checkpoints=3,
      keep_checkpoint_every_steps=50_000,  # also keep every multiple of this (0: none)
      async_checkpointing=True,
      sample_every_steps=10_000,
      eval_every_steps=0,  # 0: no periodic evaluation
      # Start from step 0 even though every checkpoint of the workdir was moved aside as
      # unreadable (to <workdir>/checkpoints_unreadable/); off: such a run stops instead.
      allow_fresh_start=False,
      writers=("tensorboard",),  # besides the log: tensorboard, wandb (pip install '.[wandb]')
      wandb=ml_collections.ConfigDict(dict(project="gen_jax", entity="", name="", mode="")),
  ))

  # Fine-tuning: start a new run from another run's weights, "<workdir>[:<step>]".
  c.init_from = ""
  c.init_from_weights = "ema"  # ema | params (raw)
  c.init_from_partial = False  # load the matching arrays even if some are missing/reshaped
  return c


def smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks the run to seconds on a CPU: a few steps, tiny batches, frequent actions."""
  c.batch_size = 8
  c.num_train_steps = 4
  c.trainer.log_every_steps = 2
  c.trainer.checkpoint_every_steps = 2
  c.trainer.sample_every_steps = 4
  c.trainer.eval_every_steps = 4
  c.trainer.keep_checkpoint_every_steps = 0
  c.optim.warmup_steps = 0
  c.sample.num_samples = 8
  c.sample.batch_size = 8
  c.sample.grid_size = 8
  c.eval.max_batches = 1
  c.eval.num_samples = 16  # only used when eval.metrics is set
  c.eval.periodic_num_samples = 16
  c.eval.reference_count = 64
  c.eval.kid_subsets = 5
  c.data.num_threads = 1
  c.data.prefetch = 2
  return c


# ----------------------------------------------------------------------------------------
# Validation: one-line errors for unknown fields and enumerated values.

# Enumerated fields whose allowed values are fixed here (registry-backed fields, such as
# method.name or data.source, are checked against their registries by gen_jax.main).
CHOICES: dict[str, tuple[str, ...]] = {
    "eval.reference_split": ("train", "eval"),
    "eval.reference_stats_format": ("gen_jax", "ttur", "adm"),
    "eval.inception_resize": ("tf1", "pytorch"),
    "sample.condition.kind": ("none", "inpaint", "colorize"),
}


class ConfigError(ValueError):
  """A config field that does not exist, or a value outside a field's allowed values."""


def field_paths(config: Any, prefix: str = "") -> list[str]:
  """Every dotted path of `config`: sections and leaves, e.g. ["optim", "optim.name", ...]."""
  out = []
  for key in config.keys():
    path = f"{prefix}{key}"
    out.append(path)
    value = config[key]
    if isinstance(value, (ml_collections.ConfigDict, dict)):
      out.extend(field_paths(value, path + "."))
  return out


def check_field_path(config: Any, path: str) -> None:
  """Raises ConfigError when the dotted `path` is not a field of `config`.

  The message names the full path and the closest existing fields: names like the first
  missing part in the deepest section that exists, and fields elsewhere with the same
  name; when none is close, every field of that section.
  """
  parts = path.split(".")
  if not all(part.isidentifier() for part in parts):
    return  # indexing such as a.b[0]: left to ml_collections
  section, prefix = config, ""
  for i, part in enumerate(parts):
    if not isinstance(section, (ml_collections.ConfigDict, dict)):
      break  # a leaf with something after it
    if part not in section:
      break
    section, prefix = section[part], f"{prefix}{part}."
  else:
    return
  missing = parts[i] if isinstance(section, (ml_collections.ConfigDict, dict)) else ""
  keys = sorted(section.keys()) if missing else []
  close = [prefix + k for k in difflib.get_close_matches(missing, keys, n=3, cutoff=0.6)]
  if missing and i == len(parts) - 1:  # the same name in another section
    close += [p for p in field_paths(config) if p.rsplit(".", 1)[-1] == missing]
  if close:
    hint = f"closest: {', '.join(close)}"
  elif keys:
    hint = f"fields of {prefix.rstrip('.') or 'the config'}: {', '.join(keys)}"
  else:
    hint = f"{prefix.rstrip('.')} is a value, not a section"
  raise ConfigError(f"unknown config field {path!r}; {hint}.")


def check_choices(config: Any, choices: Mapping[str, Iterable[str]]) -> None:
  """Raises ConfigError for the first field in `choices` whose value is not allowed.

  A field absent from `config` is skipped (not every family has every field); a tuple
  value (e.g. eval.metrics) must consist of allowed values.
  """
  for path, allowed in choices.items():
    node = config
    for part in path.split("."):
      if not isinstance(node, (ml_collections.ConfigDict, dict)) or part not in node:
        break
      node = node[part]
    else:
      allowed = tuple(allowed)
      values = node if isinstance(node, (tuple, list)) else (node,)
      bad = [v for v in values if v not in allowed]
      if bad:
        raise ConfigError(
            f"config field {path} is {node!r}; allowed values: {', '.join(map(str, allowed))}.")
