"""Evaluation over a split and sample generation, shared by training and the eval/sample modes."""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from gen_jax import data as data_lib
from gen_jax.eval import images as images_lib
from gen_jax.core import sharding as sharding_lib
from gen_jax.core.sample import SampleSpec
from gen_jax.train import chunks
from gen_jax.train.experiment import Experiment
from gen_jax.core.state import TrainState


def make_eval_step(exp: Experiment):
  """Jitted (state, batch, rng) -> {name: (masked sum, count)} over one global batch."""

  def eval_step(state, batch, rng):
    per_example = exp.method.evaluate(state, batch, rng)
    mask = batch["mask"].astype(jnp.float32)
    out = {}
    for name, values in per_example.items():
      if values.shape != mask.shape:
        raise ValueError(f"{type(exp.method).__name__}.evaluate returned {name!r} of shape "
                         f"{values.shape}; expected per-example values of shape {mask.shape}.")
      out[name] = jnp.sum(values.astype(jnp.float32) * mask)
    out["num_examples"] = jnp.sum(mask)
    return out

  rep = sharding_lib.replicated(exp.mesh)
  return jax.jit(eval_step, in_shardings=(exp.state_shardings(),
                                         sharding_lib.batch_sharding(exp.mesh), rep),
                 out_shardings=rep)


def evaluate_split(exp: Experiment, state: TrainState, eval_step=None,
                   max_batches: int | None = None) -> dict[str, float]:
  """Averages `method.evaluate` over the evaluation split (padded rows masked out).

  Every evaluation uses the same keys (`eval_key` folded with the batch index), so two
  checkpoints are compared on identical noise.
  """
  cfg = exp.config
  eval_step = eval_step or make_eval_step(exp)
  iterator, _ = data_lib.build_eval_iterator_from_config(
      cfg.data, global_batch_size=cfg.eval.batch_size or cfg.batch_size)
  sums: dict[str, float] = {}
  for i, local_batch in enumerate(iterator):
    if max_batches and i >= max_batches:
      break
    batch = sharding_lib.make_global_batch(local_batch, exp.mesh)
    out = jax.device_get(eval_step(state, batch, jax.random.fold_in(exp.eval_key, i)))
    for k, v in out.items():
      sums[k] = sums.get(k, 0.0) + float(v)
  n = sums.pop("num_examples", 0.0)
  if n == 0:
    raise ValueError("The evaluation split is empty; check data.eval_split / data.eval_path.")
  results = exp.method.summarize_eval({k: v / n for k, v in sums.items()})
  results["num_examples"] = int(n)
  return results


def _to_host_samples(exp: Experiment, samples: jax.Array) -> np.ndarray:
  """Images in [-1, 1] -> uint8; vector data (e.g. 2-D toy points) stays float32."""
  samples = sharding_lib.to_host(samples)
  if len(exp.info.image_shape) in (1, 2):  # vectors (toy2d) and sequences [T, C] (audio)
    return np.asarray(samples, np.float32)
  return images_lib.to_uint8(samples)


def sample_figure(exp: Experiment, samples: np.ndarray) -> tuple[np.ndarray, int]:
  """(uint8 [H, W, C] figure, PNG upscale): an image grid, a scatter plot of 2-D points, or
  waveform plots of sequences [T, C]."""
  if len(exp.info.image_shape) == 1:
    return images_lib.scatter_image(samples[:, :2]), 1
  if len(exp.info.image_shape) == 2:
    return images_lib.waveform_image(samples), 1
  return images_lib.make_grid(samples), max(1, 128 // exp.info.image_shape[0])


def _batch_sampler(exp: Experiment, state: TrainState, num_samples: int, batch_size: int,
                   rng: jax.Array, spec: SampleSpec | None = None):
  """(number of batches, batch size, draw): draw(i) -> (host samples of batch i, NFE), with
  key fold_in(rng, i); see `generate`."""
  spec = exp.sample_spec if spec is None else spec
  batch_size = min(batch_size, num_samples)
  num_batches = math.ceil(num_samples / batch_size)
  labels = None
  if spec.labels is not None:
    labels = np.asarray(spec.labels, np.int32)
    if labels.shape != (num_samples,):
      raise ValueError(f"The sampling request has labels of shape {list(labels.shape)}; "
                       f"expected one per sample, [{num_samples}].")
    labels = np.resize(labels, num_batches * batch_size).reshape(num_batches, batch_size)
    spec = dataclasses.replace(spec, labels=labels[0])
  sample_fn = exp.sample_fn(batch_size, spec)

  def draw(i: int) -> tuple[np.ndarray, int]:
    out = sample_fn(state, jax.random.fold_in(rng, i), None if labels is None else labels[i])
    return _to_host_samples(exp, out.samples), int(out.nfe)

  return num_batches, batch_size, draw


def generate(exp: Experiment, state: TrainState, num_samples: int, batch_size: int,
             rng: jax.Array, spec: SampleSpec | None = None) -> tuple[np.ndarray, int, float]:
  """Samples `num_samples` examples in batches; returns (samples, NFE per batch, samples/s).

  Samples are uint8 [N, H, W, C] images, or float32 [N, D] for vector data (toy2d).
  `spec` is what `method.sample` is asked (default: the config's, `exp.sample_spec`); its
  labels, if any, are int32 [num_samples], split over the batches. Batch i uses the key
  fold_in(rng, i); each batch is sharded over every device when its size divides evenly.
  The samples/s figure excludes the first batch (compilation).
  """
  return generate_chunked(exp, state, num_samples, batch_size, rng, spec)


def generate_chunked(exp: Experiment, state: TrainState, num_samples: int, batch_size: int,
                     rng: jax.Array, spec: SampleSpec | None = None,
                     partial_dir: pathlib.Path | None = None,
                     meta: dict[str, Any] | None = None) -> tuple[np.ndarray, int, float]:
  """`generate`, with each batch kept in `partial_dir` as soon as it is drawn (see
  `chunks.run_chunks`): an interrupted call resumes and returns exactly what an
  uninterrupted one would. `meta`: what else the samples depend on (e.g. the step);
  the counts, the seed and the request are added. Progress and ETA are logged.
  """
  spec = exp.sample_spec if spec is None else spec
  num_batches, batch_size, draw = _batch_sampler(exp, state, num_samples, batch_size, rng,
                                                 spec)

  def produce(i):
    samples, nfe = draw(i)
    return {"samples": samples, "nfe": np.asarray([nfe])}

  if partial_dir is not None:
    meta = dict(meta or {}, num_samples=num_samples, batch_size=batch_size,
                seed=exp.config.seed,
                request={k: str(getattr(spec, k)) for k in spec.requested()})
  result = chunks.run_chunks(num_batches, produce, partial_dir=partial_dir, meta=meta,
                             what="sample batches")
  nfe = int(result.arrays["nfe"][-1])
  return result.arrays["samples"][:num_samples], nfe, result.rate * batch_size


def write_sample_grid(exp: Experiment, state: TrainState, step: int, writer=None) -> str:
  """Samples the configured grid from the EMA params and writes samples/step_<k>.png."""
  cfg = exp.config.sample
  n = cfg.grid_size
  images, nfe, _ = generate(exp, state, n, n, exp.sample_key)
  grid, upscale = sample_figure(exp, images)
  path = exp.workdir / "samples" / f"step_{step:08d}.png"
  if jax.process_index() == 0:
    images_lib.save_png(path, grid, upscale=upscale)
  if writer is not None:
    writer.write_images(step, {"samples": grid[None]})
  logging.info("Wrote %d samples (%d network evaluations each) to %s", n, nfe, path)
  return str(path)


def write_method_figures(exp: Experiment, state: TrainState, step: int) -> list[str]:
  """Writes the method's `figures` of the first evaluation batch to samples/<name>_<step>.png.

  Returns the paths written (none for a family without figures).
  """
  cfg = exp.config
  iterator, _ = data_lib.build_eval_iterator_from_config(
      cfg.data, global_batch_size=cfg.eval.batch_size or cfg.batch_size)
  batch = sharding_lib.make_global_batch(next(iter(iterator)), exp.mesh)
  figures = jax.jit(exp.method.figures)(state, batch, exp.eval_key)
  paths = []
  for name, (images, num_cols) in figures.items():
    path = exp.workdir / "samples" / f"{name}_{step}.png"
    if jax.process_index() == 0:
      grid = images_lib.make_grid(np.asarray(sharding_lib.to_host(images)), int(num_cols))
      images_lib.save_png(path, grid, upscale=max(1, 128 // exp.info.image_shape[0]))
    paths.append(str(path))
  if paths:
    logging.info("Wrote %s", ", ".join(paths))
  return paths


def write_eval_results(exp: Experiment, step: int, results: dict[str, Any],
                       protocol: dict[str, Any] | None = None) -> str:
  """Writes workdir/eval/<step>.json with the results, the seed and the protocol.

  `protocol` (from `sample_metrics.SampleEvaluator.evaluate`) describes the sample metrics:
  feature extractor and weights checksum, reference statistics, sample count, sampler.
  """
  path = exp.workdir / "eval" / f"{step}.json"
  record = {"step": step, "seed": exp.config.seed, "split": exp.config.data.eval_split,
            "dataset": exp.config.data.name or exp.config.data.source, "results": results}
  if protocol is not None:
    record["sample_metrics_protocol"] = protocol
  if jax.process_index() == 0:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True))
  return str(path)
