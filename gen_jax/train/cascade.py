"""The cascade pipeline from the command line: one config naming its stages' configs.

A cascade config (configs/cascade/*.py with `:stage=cascade`) holds

  cascade.order     ("base", "sr", ...): the stages, base first
  cascade.stages    {name: the stage's full config} (an ordinary diffusion config for the
                    base, a super_resolution config for each later stage)
  cascade.workdirs  {name: workdir}; "" means <cascade workdir>/<name>
  seed, sample.num_samples, sample.batch_size, eval (the sample metrics' settings)

and `gen_jax.main` runs, on it,

  --mode=train   each stage's training in its workdir, in order (resumable, as any run);
  --mode=sample  restores every stage's newest checkpoint, samples the base, super-resolves
                 stage by stage, and writes every stage's samples to
                 <workdir>/samples/stage<k>_<name>.{npz,png} (+ cascade.json: stage steps,
                 resolutions, NFE, and `consistency`: the RMS distance of each SR stage's
                 samples, downsampled by its operator, to the samples it was given, and
                 the same over unrelated pairs);
  --mode=eval    the sample metrics of `eval` (fid, kid, ... with its feature extractor) on
                 the final resolution, against the final stage's data, written to
                 <workdir>/eval/<step of the final stage>.json;
  --mode=stats   the reference statistics of the final stage's data.

A stage override on the command line: --config.cascade.stages.sr.sample.ddim.num_steps=20.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pathlib
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging

from gen_jax.data import pairs, transforms
from gen_jax.eval import images as images_lib
from gen_jax.methods.cascade import Cascade
from gen_jax.train import evaluation, loop, sample_metrics
from gen_jax.train.experiment import Experiment


def is_cascade(config: Any) -> bool:
  """Whether `config` describes a cascade (has a `cascade` section)."""
  return "cascade" in config


def stages(config: ml_collections.ConfigDict,
           workdir: str | pathlib.Path) -> list[tuple[str, ml_collections.ConfigDict,
                                                     pathlib.Path]]:
  """[(name, stage config, stage workdir)] in cascade order."""
  c = config.cascade
  order = tuple(c.order)
  missing = [name for name in order if name not in c.stages]
  if len(order) < 2 or missing:
    raise ValueError(f"cascade.order {order} must name a base and at least one super-"
                     f"resolution stage of cascade.stages ({', '.join(c.stages.keys())}).")
  out = []
  for name in order:
    path = (c.workdirs.get(name, "") if "workdirs" in c else "") or pathlib.Path(workdir) / name
    out.append((name, c.stages[name], pathlib.Path(path)))
  return out


def train(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> list[Any]:
  """Trains every stage in its workdir, in order; returns their final states."""
  states = []
  for name, cfg, stage_dir in stages(config, workdir):
    logging.info("Cascade stage %r: training in %s.", name, stage_dir)
    states.append(loop.train_and_evaluate(cfg, stage_dir))
  return states


@dataclasses.dataclass
class RestoredCascade:
  """The stages restored from their workdirs, chained."""
  method: Cascade
  state: Any
  names: list[str]
  steps: list[int]
  stage_experiments: list[Experiment]


def restore(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> RestoredCascade:
  """Restores every stage's newest checkpoint (FileNotFoundError naming a stage without)."""
  exps, states, steps, names = [], [], [], []
  for name, cfg, stage_dir in stages(config, workdir):
    exp = Experiment.create(cfg, stage_dir)
    try:
      state, step = exp.restore_or_fail()
    except FileNotFoundError as e:
      raise FileNotFoundError(f"Cascade stage {name!r}: {e}") from None
    finally:
      exp.checkpointer.close()
    exps.append(exp)
    states.append(exp.prepare_sampling(state, step))
    steps.append(int(step))
    names.append(name)
  method = Cascade(tuple(e.method for e in exps))
  return RestoredCascade(method, method.state_of(states), names, steps, exps)


def run_sample(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> list[str]:
  """Samples the cascade; writes every stage's grid and npz. Returns the npz paths."""
  workdir = pathlib.Path(workdir)
  restored = restore(config, workdir)
  n, b = int(config.sample.num_samples), min(int(config.sample.batch_size),
                                             int(config.sample.num_samples))
  fn = jax.jit(lambda state, rng: restored.method.sample_stages(state, rng, b))
  rng = jax.random.fold_in(jax.random.key(config.seed), 2)
  chunks, nfes = [[] for _ in restored.names], []
  for i in range(-(-n // b)):
    outs = fn(restored.state, jax.random.fold_in(rng, i))
    nfes = [int(o.nfe) for o in outs]
    for k, o in enumerate(outs):
      chunks[k].append(images_lib.to_uint8(np.asarray(jax.device_get(o.samples))))
  out = workdir / "samples"
  paths, record = [], {"stages": []}
  for k, name in enumerate(restored.names):
    images = np.concatenate(chunks[k])[:n]
    npz = out / f"stage{k}_{name}.npz"
    if jax.process_index() == 0:
      out.mkdir(parents=True, exist_ok=True)
      np.savez_compressed(npz, images=images)
      images_lib.save_png(out / f"stage{k}_{name}.png", images_lib.make_grid(images[:256]),
                          upscale=max(1, 128 // images.shape[1]))
    paths.append(str(npz))
    record["stages"].append({"name": name, "step": restored.steps[k], "nfe": nfes[k],
                             "resolution": list(images.shape[1:])})
  record["consistency"] = consistency(restored.method, [np.concatenate(c)[:n] for c in chunks])
  if jax.process_index() == 0:
    (out / "cascade.json").write_text(json.dumps(record, indent=2))
  logging.info("Sampled %d images through the cascade %s into %s; consistency (RMS of the "
               "downsampled samples to their condition vs unrelated pairs): %s.", n,
               record["stages"], out, record["consistency"])
  return paths


def consistency(method: Cascade, images: list[np.ndarray]) -> list[dict[str, float]]:
  """For each SR stage k: RMS of D x^(k) - x^(k-1) (D: the stage's own downsampling) over
  the pairs the cascade drew, and over unrelated pairs (x^(k-1) shifted by one sample), in
  units of [-1, 1] images."""
  out = []
  for k in range(1, len(images)):
    stage = method.stages[k]
    down = pairs.downsample(transforms.to_float(images[k]), stage.factor, stage.downsample)
    prev = transforms.to_float(images[k - 1])
    rms = lambda a, b: float(np.sqrt(np.mean((a - b) ** 2)))
    out.append({"stage": k, "paired_rms": rms(down, prev),
                "unrelated_rms": rms(down, np.roll(prev, 1, axis=0)) if len(prev) > 1
                                 else float("nan")})
  return out


def final_stage_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The last stage's config with the cascade's seed, sample sizes and eval section."""
  cfg = copy.deepcopy(config.cascade.stages[tuple(config.cascade.order)[-1]])
  with cfg.unlocked():
    cfg.seed = config.seed
    cfg.eval = copy.deepcopy(config.eval)
    cfg.sample.num_samples = config.sample.num_samples
    cfg.sample.batch_size = config.sample.batch_size
  return cfg


def run_eval(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
  """Sample metrics of the cascade's final samples; writes <workdir>/eval/<step>.json."""
  workdir = pathlib.Path(workdir)
  if not config.eval.metrics:
    raise ValueError("--mode=eval of a cascade computes sample metrics: set "
                     "--config.eval.metrics, e.g. '(\"fid\",)'.")
  restored = restore(config, workdir)
  exp = Experiment.create(final_stage_config(config), workdir)
  exp.checkpointer.close()
  exp = dataclasses.replace(exp, method=restored.method, _sample_fns={}, _shardings={})
  state = jax.device_put(restored.state, exp.state_shardings())
  step = restored.steps[-1]
  evaluator = sample_metrics.SampleEvaluator(exp)
  results, protocol = evaluator.evaluate(state, step, int(config.eval.num_samples),
                                         resumable=True)
  protocol["cascade"] = [{"name": n, "step": s, "workdir": str(e.workdir),
                          "sampler": sample_metrics.sampler_settings(e.method),
                          **({"condition_level": e.method.augmentation.sample_level}
                             if hasattr(e.method, "augmentation") else {})}
                         for n, s, e in zip(restored.names, restored.steps,
                                            restored.stage_experiments)]
  path = evaluation.write_eval_results(exp, step, results, protocol)
  evaluator.discard_partial(step)
  logging.info("Cascade evaluation: %s (written to %s)", results, path)
  return results


def run_stats(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> str:
  """The reference statistics of the final stage's data (its eval settings: the cascade's)."""
  return loop.run_stats(final_stage_config(config), workdir)


MODES = {"train": train, "sample": run_sample, "eval": run_eval, "stats": run_stats}
