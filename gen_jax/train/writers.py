"""Metric writers: absl logging always, plus those listed in `config.trainer.writers`.

    trainer.writers = ("tensorboard",)            # default: event files in the workdir
    trainer.writers = ("tensorboard", "wandb")    # also Weights & Biases

"wandb" needs the optional extra (`pip install -e '.[wandb]'`); it follows wandb's own
settings (`wandb login`, or `WANDB_MODE=offline` to write locally and `wandb sync` later)
and `config.trainer.wandb` (project, entity, name, mode). The wandb run id is kept in
`<workdir>/wandb_run_id.txt`, so a resumed run continues the same wandb run. Only process
0 writes anywhere but its log.
"""

from __future__ import annotations

import pathlib
import uuid
from typing import Any, Mapping

import jax
import ml_collections
import numpy as np
from clu import metric_writers

WRITERS = ("tensorboard", "wandb")


class WandbWriter(metric_writers.MetricWriter):
  """A clu MetricWriter that logs to one Weights & Biases run.

  Args:
    workdir: the run directory (holds wandb_run_id.txt; wandb's files go to its wandb/).
    config: logged as the wandb run's config.
    project, entity, name, mode: as for `wandb.init` ("" / None: wandb's defaults).
  """

  def __init__(self, workdir: str | pathlib.Path, *, config: Mapping[str, Any] | None = None,
               project: str = "gen_jax", entity: str = "", name: str = "", mode: str = ""):
    try:
      import wandb  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError(
          "config.trainer.writers lists 'wandb', but wandb is not installed: run "
          "`pip install -e '.[wandb]'` (or remove 'wandb' from config.trainer.writers).") from e
    self._wandb = wandb
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    id_file = workdir / "wandb_run_id.txt"
    run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:12]
    id_file.write_text(run_id)
    self.run = wandb.init(
        project=project or None, entity=entity or None, name=name or workdir.name,
        mode=mode or None, dir=str(workdir), id=run_id, resume="allow",
        config=dict(config or {}))

  def write_scalars(self, step: int, scalars: Mapping[str, Any]):
    self.run.log({k: float(v) for k, v in scalars.items()}, step=int(step))

  def write_images(self, step: int, images: Mapping[str, Any]):
    logged = {}
    for k, v in images.items():
      v = np.asarray(v)
      batch = v if v.ndim == 4 else v[None]
      logged[k] = [self._wandb.Image(x) for x in batch]
    self.run.log(logged, step=int(step))

  def write_texts(self, step: int, texts: Mapping[str, str]):
    self.run.log({k: self._wandb.Html(f"<pre>{v}</pre>") for k, v in texts.items()},
                 step=int(step))

  def write_histograms(self, step: int, arrays: Mapping[str, Any], num_buckets=None):
    self.run.log({k: self._wandb.Histogram(np.asarray(v),
                                           num_bins=(num_buckets or {}).get(k, 64))
                  for k, v in arrays.items()}, step=int(step))

  def write_hparams(self, hparams: Mapping[str, Any]):
    self.run.config.update(dict(hparams), allow_val_change=True)

  def write_summaries(self, step: int, values: Mapping[str, Any], metadata=None):
    del metadata
    self.write_scalars(step, {k: v for k, v in values.items() if np.ndim(v) == 0})

  def write_videos(self, step: int, videos: Mapping[str, Any]):
    del step, videos  # not used by gen_jax

  def write_audios(self, step: int, audios: Mapping[str, Any], *, sample_rate: int):
    self.run.log({k: self._wandb.Audio(np.asarray(v)[0], sample_rate=sample_rate)
                  for k, v in audios.items()}, step=int(step))

  def flush(self):
    pass  # wandb streams in its own process

  def close(self):
    self.run.finish()


def create_writer(config: ml_collections.ConfigDict, workdir: str | pathlib.Path,
                  asynchronous: bool = True) -> metric_writers.MetricWriter:
  """The run's writer: logging, plus every writer in config.trainer.writers (process 0)."""
  names = tuple(config.trainer.get("writers", ("tensorboard",)) or ())
  unknown = sorted(set(names) - set(WRITERS))
  if unknown:
    raise ValueError(f"config.trainer.writers has unknown {unknown}; choose from {WRITERS}.")
  if jax.process_index() > 0:
    return metric_writers.create_default_writer(just_logging=True, asynchronous=asynchronous)
  writers: list[metric_writers.MetricWriter] = [metric_writers.LoggingWriter()]
  if "tensorboard" in names:
    writers.append(metric_writers.SummaryWriter(str(workdir)))
  if "wandb" in names:
    w = config.trainer.get("wandb", None) or {}
    writers.append(WandbWriter(workdir, config=config.to_dict(), project=w.get("project", ""),
                               entity=w.get("entity", ""), name=w.get("name", ""),
                               mode=w.get("mode", "")))
  if asynchronous:
    return metric_writers.AsyncMultiWriter(writers)
  return metric_writers.MultiWriter(writers)
