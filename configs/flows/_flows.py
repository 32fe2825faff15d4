"""The normalizing-flow part shared by the configs in this folder."""

from __future__ import annotations

import ml_collections

from configs import common

# The smallest model of each architecture (compile time dominates on CPU), for the ':smoke' variants (seconds on a CPU).
SMOKE_MODELS = {
    "glow": dict(num_levels=1, depth=1, width=8),
    "realnvp": dict(width=8, num_blocks=0, couplings_per_scale=1, final_couplings=1),
    "nice": dict(num_couplings=2, width=16, depth=1),
    "maf": dict(num_layers=2, hidden=(8, 8)),
}


def flow_config(model: dict) -> ml_collections.ConfigDict:
  """A base config with `model` (name + architecture arguments) and the flow method.

  Image flows need dequantized data (data.dequantize=True): the method refuses otherwise.
  """
  c = common.base_config()
  c.model = ml_collections.ConfigDict(model)
  c.method = ml_collections.ConfigDict(dict(
      name="flow",
      num_bits=8,  # < 8 reduces the data to this many bits per pixel (Glow's 5-bit CelebA)
  ))
  c.data.dequantize = True
  c.sample.sampler = "inverse"  # for the logs: a flow samples by inverting itself
  c.sample.temperature = 1.0  # z ~ N(0, T^2 I); Glow shows samples at T = 0.7
  c.sample.clip_x0 = False
  c.ema.decay = 0.999
  return c


def smoke_flow(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The architecture's smallest model on top of `common.smoke`."""
  common.smoke(c)
  for k, v in SMOKE_MODELS[c.model.name].items():
    c.model[k] = v
  return c
