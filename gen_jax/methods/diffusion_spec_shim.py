"""TEMPORARY: `Method.sample(state, rng, n, spec)` for the ddpm and score_sde families.

The unified diffusion method (methods/diffusion.py, written on another branch) reads the
`SampleSpec` itself. Until that branch is joined, this module adapts the old
`DiffusionMethod.sample(state, rng, n, labels=None, **sampler_overrides)` so that the
trainer can call every family the same way. Delete this file and its import in
`gen_jax/methods/__init__.py` when methods/diffusion.py lands.

What the diffusion families honour: labels, guidance_scale (a class-conditional model, or
0), sampler (a registered name, replacing the configured sampler and its options) and
sampler_options (keyword overrides of the sampler: num_steps, eta, init_noise, ...).
"""

from __future__ import annotations

import dataclasses

from gen_jax.core.sample import SampleSpec, UnsupportedSampleRequest
from gen_jax.methods.diffusion_base import DiffusionMethod
from gen_jax.samplers import SAMPLERS

_FAMILY = {"DDPM": "ddpm", "ScoreSDE": "score_sde"}
_old_sample = DiffusionMethod.sample


def _sample(self, state, rng, num_samples, spec: SampleSpec = SampleSpec(), **legacy):
  if legacy:  # the old keywords (labels=, sampler overrides), still used by their tests
    return _old_sample(self, state, rng, num_samples, **legacy)
  family = _FAMILY.get(type(self).__name__, type(self).__name__)
  spec.refuse_unsupported(family, ["guidance_scale", "sampler", "sampler_options"])
  method = self
  if spec.guidance_scale is not None:
    if spec.guidance_scale and not self.num_classes:
      raise UnsupportedSampleRequest(
          f"The {family!r} family cannot honour guidance_scale={spec.guidance_scale}: the "
          "model is unconditional (set method.class_conditional=True and train it).")
    method = dataclasses.replace(method, guidance_scale=float(spec.guidance_scale))
  if spec.sampler is not None:
    SAMPLERS.get(spec.sampler)  # an unknown name is refused with the registered ones
    method = dataclasses.replace(method, sampler=spec.sampler, sampler_kwargs={})
  return _old_sample(method, state, rng, num_samples, labels=spec.labels,
                     **dict(spec.sampler_options))


_sample.__doc__ = _old_sample.__doc__
DiffusionMethod.sample = _sample
