"""The one training loop of gen_jax, shared by every family.

Reads top to bottom: set up the experiment, restore or initialise the state, then for each
step take a global batch, run the jitted step, and do the periodic actions (log, sample,
evaluate, checkpoint). Family-specific work happens only inside `method.update`.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time

import jax
import ml_collections
import numpy as np
from absl import logging
from clu import parameter_overview, periodic_actions

from gen_jax.eval import images as images_lib
from gen_jax.train import chunks
from gen_jax.train import conditional_sampling
from gen_jax.train import evaluation
from gen_jax.train import init_from
from gen_jax.train import preemption
from gen_jax.train import sample_metrics
from gen_jax.core import sharding as sharding_lib
from gen_jax.train import step as step_lib
from gen_jax.train import translation
from gen_jax.train import writers
from gen_jax.train.experiment import Experiment, write_config
from gen_jax.core.sample import SampleSpec
from gen_jax.core.state import TrainState


def _every(step: int, period: int, last_step: int) -> bool:
  return bool(period) and (step % period == 0 or step == last_step)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> TrainState:
  """Trains `config` in `workdir`, resuming from its latest checkpoint; returns the final state.

  Raises:
    checkpoint.ConfigMismatchError: the workdir's checkpoints hold another model (nothing
      is touched); checkpoint.CheckpointError: every checkpoint was unreadable and
      trainer.allow_fresh_start is False; checkpoint.CheckpointSaveError: a save failed.
    preemption.Preempted: SIGTERM/SIGINT arrived; a checkpoint of the last step was written.
  """
  workdir = pathlib.Path(workdir)
  exp = Experiment.create(config, workdir)
  t = config.trainer
  total = int(config.num_train_steps)

  train_iter = exp.train_iterator()
  try:
    restored = exp.restore(train_iter)
    if restored is None:
      # Data-dependent initialisation sees the first batch; the iterator is then rewound so
      # the data order is the same as after a restore.
      position = train_iter.get_state()
      first_batch = next(train_iter)
      train_iter.set_state(position)
      state = exp.init_state(sharding_lib.make_global_batch(first_batch, exp.mesh))
      if config.get("init_from"):
        state = init_from.apply(state, spec=config.init_from, weights=config.init_from_weights,
                                partial=config.init_from_partial,
                                sharding=sharding_lib.replicated(exp.mesh))
        state = jax.device_put(state, exp.state_shardings())  # fsdp: shard the loaded weights
      start = 0
      logging.info("Initialised a new %s model in %s.", config.method.name, workdir)
    else:
      state, start = restored
      logging.info("Resumed from the checkpoint at step %d in %s.", start, workdir)
      if config.get("init_from"):
        logging.info("config.init_from is ignored: the run resumes from its own checkpoint.")
    # Only a run whose setup succeeded (data, method, state) leaves its config behind, and a
    # refused config does not replace the one of the run's checkpoints.
    write_config(config, workdir)
  except BaseException:
    exp.checkpointer.close()  # a refused config or fine-tuning source: nothing was written
    raise
  parameter_overview.log_parameter_overview(state.params, include_stats=False)
  writer = writers.create_writer(config, workdir)

  names = step_lib.metric_names(exp.method, exp.abstract_state(), exp.abstract_batch(), exp.loop_key)
  collection = step_lib.metrics_collection(names)
  train_step = step_lib.make_train_step(exp.method, collection, exp.mesh,
                                        config.ema.decay, config.ema.warmup,
                                        int(config.ema.get("start", 0)),
                                        grad_accum_steps=config.get("grad_accum_steps", 1),
                                        state_sharding=exp.state_shardings())
  acc = step_lib.empty_like_collection(collection, exp.mesh)
  train_step = sharding_lib.compile_on_every_process(
      train_step, state, exp.abstract_batch(), exp.loop_key, acc, name=f"train_{start}")
  eval_step = evaluation.make_eval_step(exp) if t.eval_every_steps else None
  sample_evaluator = sample_metrics.SampleEvaluator(exp)
  periodic_samples = int(config.eval.get("periodic_num_samples", 0) or 0)
  if not (t.eval_every_steps and sample_evaluator.enabled and periodic_samples):
    sample_evaluator = None
  report_progress = periodic_actions.ReportProgress(num_train_steps=total, writer=writer)
  last_saved = start if restored is not None else None
  pending = None  # (step, finite, metrics) of the newest step not yet checked on the host
  meta = {"seed": config.seed}

  def check_pending():
    nonlocal pending
    if pending is not None:
      step_lib.check_finite(*pending, last_saved)
      pending = None

  def save(step):
    nonlocal last_saved
    check_pending()
    exp.checkpointer.save(step, state, train_iter, meta=meta)
    last_saved = step

  try:
    with preemption.PreemptionWatcher(exp.mesh) as watcher:
      for step in range(start + 1, total + 1):
        with jax.profiler.StepTraceAnnotation("train", step_num=step):
          batch = sharding_lib.make_global_batch(next(train_iter), exp.mesh)
          state, acc, metrics, finite = train_step(state, batch, exp.loop_key, acc)
        # Check the previous step while this one runs, so the device never waits on the host.
        check_pending()
        pending = (step, finite, metrics)
        report_progress(step, time.monotonic())

        if _every(step, t.log_every_steps, total):
          check_pending()
          scalars = {f"train/{k}": v for k, v in jax.device_get(acc.compute()).items()}
          writer.write_scalars(step, scalars)
          acc = step_lib.empty_like_collection(collection, exp.mesh)
          exp.checkpointer.check_for_errors()
        if _every(step, t.sample_every_steps, total) or (
            eval_step is not None and _every(step, t.eval_every_steps, total)):
          state = exp.prepare_sampling(state, step)
        if _every(step, t.checkpoint_every_steps, total):
          save(step)
        if _every(step, t.sample_every_steps, total):
          evaluation.write_sample_grid(exp, state, step, writer)
        if eval_step is not None and _every(step, t.eval_every_steps, total):
          results = evaluation.evaluate_split(exp, state, eval_step,
                                              config.eval.max_batches or None)
          protocol = None
          if sample_evaluator is not None:
            sample_results, protocol = sample_evaluator.evaluate(state, step, periodic_samples)
            results.update(sample_results)
          writer.write_scalars(step, {f"eval/{k}": v for k, v in results.items()})
          evaluation.write_eval_results(exp, step, results, protocol)
        if step < total and watcher.should_stop(step):
          if last_saved != step:
            save(step)
          exp.checkpointer.wait()
          raise preemption.Preempted(step, watcher.signal_name, exp.checkpointer.directory)
      check_pending()
  finally:
    exp.checkpointer.close()
    writer.flush()
    writer.close()
  return state


def sample_variants(config: ml_collections.ConfigDict,
                    base: SampleSpec) -> list[tuple[SampleSpec, str]]:
  """[(sampling request, file-name suffix)]: `base` (the config's request) with each of
  config.sample.temperatures, or `base` alone when that tuple is empty."""
  temperatures = tuple(config.sample.get("temperatures", ()) or ())
  if not temperatures:
    return [(base, "")]
  return [(dataclasses.replace(base, temperature=float(t)), f"_T{float(t):g}")
          for t in temperatures]


def run_sample(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> str:
  """Restores the latest checkpoint and writes config.sample.num_samples images.

  Writes samples/final_<step>.png (a grid of up to 256 images, or a scatter plot of all
  2-D points) and samples/final_<step>.npz ("images": uint8 [N, H, W, C], or float32
  [N, D] for vector data). The samples are drawn in batches of config.sample.batch_size
  (each sharded over every device of every process when it divides evenly), kept in
  samples/partial_<step>/ as they come (progress and ETA logged), so a rerun after an
  interruption draws only the missing batches and writes the same files. With config.sample.temperatures (flows), one pair of files per
  temperature T, named final_<step>_T<T>.*, all from the same noise. Returns the first
  .npz path.

  Raises UnsupportedSampleRequest, before restoring anything, when the family cannot
  honour a request of config.sample (temperature(s), guidance_scale, truncation).
  """
  exp = Experiment.create(config, workdir)
  cfg = config.sample
  conditional = cfg.get("condition") and cfg.condition.kind != "none"
  variants = sample_variants(config, exp.sample_spec)
  try:
    if conditional:
      exp.check_sample_spec(conditional_sampling.sample_request(config, exp.sample_spec))
    else:
      for spec, _ in variants:
        exp.check_sample_spec(spec)
  except ValueError:
    exp.checkpointer.close()
    raise
  state, step = exp.restore_or_fail()
  exp.checkpointer.close()
  state = exp.prepare_sampling(state, step)
  if hasattr(exp.method, "translate"):  # image-to-image families (CycleGAN)
    return translation.run(config, exp, state, step)
  if conditional:
    return conditional_sampling.run(config, exp, state, step)
  out = exp.workdir / "samples"
  paths = []
  for spec, suffix in variants:
    partial = out / f"partial_{step}{suffix}"
    images, nfe, rate = evaluation.generate_chunked(
        exp, state, cfg.num_samples, cfg.batch_size, jax.random.fold_in(exp.sample_key, step),
        spec, partial_dir=partial, meta={"step": step, "sample": cfg.to_json_best_effort()})
    npz = out / f"final_{step}{suffix}.npz"
    if jax.process_index() == 0:
      out.mkdir(parents=True, exist_ok=True)
      np.savez_compressed(npz, images=images)
      figure, upscale = evaluation.sample_figure(
          exp, images[:256] if images.ndim == 4 else images)
      images_lib.save_png(out / f"final_{step}{suffix}.png", figure, upscale=upscale)
    chunks.discard_dir(partial)
    speed = (f"{rate:.2f} images/s" if np.isfinite(rate) else "speed not measured: one "
             "batch, whose time includes compilation")
    requests = {name: getattr(spec, name) for name in spec.requested()}
    logging.info("Sampled %d images with %s%s (%d network evaluations per image, %s) from "
                 "the checkpoint at step %d into %s.", len(images), cfg.sampler,
                 f" {requests}" if requests else "", nfe, speed, step, npz)
    paths.append(str(npz))
  evaluation.write_method_figures(exp, state, step)
  return paths[0]


def run_eval(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
  """Restores the latest checkpoint and evaluates it; writes workdir/eval/<step>.json.

  (a) Averages `method.evaluate` over the evaluation split (loss, bits/dim, ... as the
  family defines). (b) When config.eval.metrics is set, draws config.eval.num_samples
  samples with the EMA parameters and computes those metrics against the reference
  statistics (see `sample_metrics`); this part is resumable: an interrupted evaluation
  run again continues from the saved sample chunks and gives the same numbers.
  """
  exp = Experiment.create(config, workdir)
  state, step = exp.restore_or_fail()
  exp.checkpointer.close()
  state = exp.prepare_sampling(state, step)
  results = evaluation.evaluate_split(exp, state, max_batches=config.eval.max_batches or None)
  sample_evaluator = sample_metrics.SampleEvaluator(exp)
  protocol = None
  if sample_evaluator.enabled:
    sample_results, protocol = sample_evaluator.evaluate(
        state, step, int(config.eval.num_samples), resumable=True)
    results.update(sample_results)
  path = evaluation.write_eval_results(exp, step, results, protocol)
  evaluation.write_method_figures(exp, state, step)
  if sample_evaluator.enabled:
    sample_evaluator.discard_partial(step)
  writer = writers.create_writer(config, exp.workdir, asynchronous=False)
  writer.write_scalars(step, {f"eval/{k}": v for k, v in results.items()})
  writer.close()
  logging.info("Evaluation at step %d: %s (written to %s)", step, results, path)
  return results


def run_stats(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> str:
  """Computes and saves the feature statistics of the config.eval.reference_split split.

  The extractor is config.eval.feature_extractor; the file is config.eval.reference_stats
  when set, else workdir/stats/<dataset>_<split>_<extractor>.npz, with the protocol inside.
  Features (and logits) are kept in the file when config.eval.metrics needs them (kid, pr,
  dc). Returns the path.
  """
  from gen_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  from gen_jax.eval import features as features_lib  # pylint: disable=g-import-not-at-top
  from gen_jax.eval import stats as stats_lib  # pylint: disable=g-import-not-at-top
  cfg = config.eval
  split = cfg.reference_split
  _, info = data_lib.build_source(config.data, split)
  mesh = sharding_lib.make_mesh(config.trainer.num_devices)
  extractor = features_lib.build_feature_extractor(cfg, info.image_shape, mesh)
  keep = bool({"kid", "pr", "dc"} & set(cfg.metrics or ()))
  stats = stats_lib.dataset_stats(config.data, split, extractor,
                                  count=int(cfg.reference_count or 0), keep_features=keep)
  dataset = config.data.name or config.data.source
  split_name = config.data.split if split == "train" else config.data.eval_split
  path = cfg.reference_stats or str(
      pathlib.Path(workdir) / "stats" / f"{dataset}_{split_name}_{extractor.name}.npz")
  if jax.process_index() == 0:
    stats_lib.save(path, stats)
  logging.info("Wrote the statistics of %d examples of %s/%s (%s features%s) to %s.",
               stats.count, dataset, split_name, extractor.name,
               ", kept" if keep else "", path)
  return path
