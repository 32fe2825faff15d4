"""SNR-based loss weightings, registered in `losses.WEIGHTINGS` (weights of the eps-space error
||eps_hat - z||^2, so one weighting means the same objective for every prediction type).

With snr = alpha^2 / sigma^2 the errors of the three usual outputs are proportional:

    ||eps_hat - z||^2 = snr ||x0_hat - x0||^2 = (snr / (snr + 1)) ||v_hat - v||^2   (VP)

* "min_snr": Hang et al., "Efficient Diffusion Training via Min-SNR Weighting Strategy"
  (ICCV 2023), github:TiankaiHang/Min-SNR-Diffusion-Training. Their code weights the x0 error
  by min(snr, gamma), the eps error by min(snr, gamma) / snr and the v error by
  min(snr, gamma) / (snr + 1): by the identities above all three are the eps-space weight
  min(snr, gamma) / snr = min(1, gamma / snr), written so that snr = 0 (zero terminal SNR)
  gives 1. gamma = 5 in the paper.
* "p2": Choi et al., "Perception Prioritized Training of Diffusion Models" (CVPR 2022),
  github:jychoi118/P2-weighting: lambda'_t = lambda_t / (k + snr)^gamma on L_simple of an
  eps-network, i.e. the eps-space weight (k + snr)^-gamma; k = 1, gamma in {0.5, 1} in the
  paper (gamma = 0 is L_simple of an eps-network).

Options reach a weighting through the losses' `weighting_options` (config: method.snr_gamma,
method.p2_k, method.p2_gamma).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gen_jax.diffusion.losses import WEIGHTINGS

Array = jax.Array


def snr(process, t: Array) -> Array:
  """alpha(t)^2 / sigma(t)^2 [B]."""
  alpha, sigma = process.marginal_coef(t)
  return jnp.square(alpha / sigma)


@WEIGHTINGS.register("min_snr")
def min_snr_weighting(process, t: Array, gamma: float = 5.0) -> Array:
  """min(snr, gamma) / snr = min(1, gamma / snr) [B] (module docstring)."""
  if gamma <= 0:
    raise ValueError(f"min_snr needs gamma > 0, got {gamma}.")
  return jnp.minimum(1.0, gamma / snr(process, t))


@WEIGHTINGS.register("p2")
def p2_weighting(process, t: Array, k: float = 1.0, gamma: float = 1.0) -> Array:
  """(k + snr)^-gamma [B] (module docstring)."""
  return jnp.power(k + snr(process, t), -gamma)
