"""The noisy-classifier part shared by the configs in this folder (classifier guidance)."""

from __future__ import annotations

import ml_collections

from configs import common

PROCESS_FIELDS = ("process", "beta_schedule", "num_timesteps", "sigma_min", "sigma_max",
                  "beta_min", "beta_max", "num_scales")


def noisy_classifier_config(diffusion: ml_collections.ConfigDict,
                            model: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A noisy_classifier run on the process of the diffusion config `diffusion`.

  The process fields are copied from diffusion.method (a "diffusion" method; the DDPM
  preset's chain fields are read as process="chain"), so the classifier is trained on the
  same x_t as the model it will guide; sampling then points
  `sample.classifier_guidance.workdir` of the diffusion config at this run's workdir.
  """
  c = common.base_config()
  c.data = diffusion.data.copy_and_resolve_references()
  c.model = model
  m = diffusion.method
  fields = {k: m[k] for k in PROCESS_FIELDS if k in m}
  fields.setdefault("process", "chain")
  c.method = ml_collections.ConfigDict(dict(
      name="noisy_classifier",
      diffusion=ml_collections.ConfigDict(fields),
      label_smoothing=0.0,
      vis_steps=20,  # sample(): class visualisations at t = 0 (not a generative model)
      vis_step_size=0.1,
  ))
  c.sample.sampler = "class_visualisation"
  c.sample.grid_size = 64
  c.sample.num_samples = 64
  c.sample.batch_size = 64
  return c


def smoke_noisy_classifier(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  common.smoke(c)
  c.method.vis_steps = 2
  return c
