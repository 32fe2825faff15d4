"""What every family's `Method.sample` is asked (`SampleSpec`) and returns (`SampleOutput`)."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import flax
import jax

Array = jax.Array


@flax.struct.dataclass
class SampleOutput:
  """Samples and their cost.

  Attributes:
    samples: [B, ...] draws of x_0.
    nfe: number of network (denoise_fn) evaluations per sample (static).
  """

  samples: Array
  nfe: int = flax.struct.field(pytree_node=False)


class UnsupportedSampleRequest(ValueError):
  """A sampling request (a `SampleSpec` field) that the family cannot honour."""


@dataclasses.dataclass(frozen=True)
class SampleSpec:
  """What a caller asks of `Method.sample` besides the number of samples.

  Every family reads the fields it understands and refuses the others with
  `refuse_unsupported`, so that a request it cannot honour (a temperature for a GAN, a
  guidance scale for a flow) is an error, never silently ignored. None means "the
  family's configured default".

  Attributes:
    labels: int32 [n] class labels, or None (a class-conditional family cycles 0..K-1).
    temperature: the prior's temperature (flows, VAEs), T in z ~ N(0, T^2 I).
    guidance_scale: guidance weight w (classifier-free or classifier guidance).
    truncation: truncation psi of a GAN's latent (BigGAN, StyleGAN).
    sampler: a registered sampler name replacing the configured one (diffusion).
    sampler_options: keyword overrides of the sampler (num_steps, eta, init_noise, ...).
  """

  labels: Any = None
  temperature: float | None = None
  guidance_scale: float | None = None
  truncation: float | None = None
  sampler: str | None = None
  sampler_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def requested(self) -> list[str]:
    """Names of the fields set away from their defaults (values may be traced arrays)."""
    return [f.name for f in dataclasses.fields(self) if f.name != "labels"
            and not (getattr(self, f.name) is None
                     or f.name == "sampler_options" and not getattr(self, f.name))]

  def refuse_unsupported(self, family: str, supported: Sequence[str]) -> None:
    """Raises UnsupportedSampleRequest naming each requested field `family` cannot honour.

    `labels` is always allowed: an unconditional family ignores them.
    """
    unsupported = sorted(set(self.requested()) - set(supported))
    if unsupported:
      raise UnsupportedSampleRequest(
          f"The {family!r} family cannot honour the sampling option(s) "
          f"{', '.join(unsupported)}; it understands: {', '.join(sorted(supported)) or 'none'}. "
          f"Remove them from config.sample (or the command line).")
