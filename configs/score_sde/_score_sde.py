"""The score-SDE part shared by the configs in this folder (Song et al., ICLR 2021).

Hyperparameters follow the paper's CIFAR-10 configs (`configs/{ve,vp,subvp}/cifar10_*.py` of
yang-song/score_sde): Adam 2e-4 with 5000 warm-up steps, gradient clipping at 1, batch 128,
1.3M steps (0.95M for the deep ones), EMA 0.999 (NCSN++) / 0.9999 (DDPM++), N = 1000 scales,
PC sampling with snr 0.16 and one corrector step, likelihoods with rtol = atol = 1e-5 from
eps = 1e-5.

Loss reduction over dimensions follows the reference per SDE (`training.reduce_mean`): the VE
configs sum, the VP and sub-VP ones (vp/ddpm included) average, so that gradient clipping at 1
acts on a loss of the reference's scale.

Data scale: gen_jax feeds images in [-1, 1]. The paper trains its VE models on [0, 1]
(`data.centered=False`) with sigma in [0.01, 50]; x -> 2x - 1 doubles every distance, so the
equivalent VE noise range here is [0.02, 100] (the maximal pairwise distance rule of Song &
Ermon 2020 gives the same). VP / sub-VP models were trained on centred data already.
"""

from __future__ import annotations

import ml_collections

from configs import common
from configs.ddpm import _ddpm


def score_sde_config(*, sde: str, loss: str = "dsm", continuous: bool = True,
                     model: dict) -> ml_collections.ConfigDict:
  """A base config with the score-SDE method, a network and the sampler options filled in."""
  c = common.base_config()
  c.model = ml_collections.ConfigDict(model)
  c.method = ml_collections.ConfigDict(dict(
      name="score_sde",
      sde=sde,  # vesde | vpsde | subvpsde
      sigma_min=0.02, sigma_max=100.0,  # vesde, for data in [-1, 1] (see module docstring)
      beta_min=0.1, beta_max=20.0,  # vpsde / subvpsde
      num_scales=1000,  # N: discretisation steps (samplers, discrete losses)
      continuous=continuous,  # False: discrete smld / ddpm losses
      loss=loss,  # dsm | dsm_likelihood | smld | ddpm (any name in diffusion.losses.LOSSES)
      weighting="sigma2",  # dsm only: sigma2 | snr | likelihood (diffusion.losses.WEIGHTINGS)
      eps=1e-5,  # smallest training time
      # As the reference configs: VE sums the per-dimension loss, VP / sub-VP average it
      # (training.reduce_mean of yang-song/score_sde configs/{ve,vp,subvp}/*.py).
      reduce_mean=sde != "vesde",
      antithetic=False,  # antithetic sampling of t
      importance_sampling=False,  # dsm_likelihood only: t ~ g^2 / std^2
      conditioning="auto",  # auto (vesde: sigma, else time) | sigma | time
      scaling="auto",  # auto (vesde: sigma, else neg_std) | sigma | neg_std | none
      class_conditional=False,
      class_dropout=0.1,  # p(null label), for classifier-free guidance
      likelihood=ml_collections.ConfigDict(dict(
          enabled=False,  # evaluate bits/dim through the probability-flow ODE
          trace="rademacher",  # rademacher | gaussian | exact (tiny dims only)
          eps=1e-5, rtol=1e-5, atol=1e-5, max_steps=4096)),
  ))
  # --mode=sample with kind=inpaint|colorize: fills in config.sample.condition.images (an .npz
  # with "images" uint8 [N, H, W, C], e.g. a samples/final_*.npz, or a folder of PNG/JPEG)
  # where the mask (a PNG, white = known pixel) is black, or colours them; PC options from
  # config.sample.pc. See gen_jax/train/conditional_sampling.py.
  c.sample.condition = ml_collections.ConfigDict(dict(kind="none", images="", mask=""))
  # pc | euler_maruyama | reverse_diffusion | ancestral | ode (SDE samplers), or ddim (the
  # sampler of every noise process, gen_jax.samplers)
  _ddpm.diffusion_sample_fields(c, sampler="pc")
  c.sample.pc = ml_collections.ConfigDict(dict(
      predictor="reverse_diffusion", corrector="langevin", snr=0.16, n_corrector_steps=1,
      eps=1e-3, denoise=True))
  c.sample.euler_maruyama = ml_collections.ConfigDict(dict(num_steps=1000, eps=1e-3,
                                                           denoise=True))
  c.sample.reverse_diffusion = ml_collections.ConfigDict(dict(eps=1e-3, denoise=True))
  c.sample.ancestral = ml_collections.ConfigDict(dict(eps=1e-3, denoise=True))
  c.sample.ddim = ml_collections.ConfigDict(dict(num_steps=1000, eta=0.0, eps=1e-3))
  c.sample.ode = ml_collections.ConfigDict(dict(
      method="rk45", rtol=1e-5, atol=1e-5, max_steps=4096, num_steps=1000, eps=1e-3,
      denoise=True))
  c.data.dequantize = True  # likelihoods need it; training on dequantized data is harmless
  c.optim.learning_rate = 2e-4
  c.optim.warmup_steps = 5000
  c.optim.grad_clip_norm = 1.0
  c.batch_size = 128
  c.num_train_steps = 1_300_000
  return c


def ncsnpp_model(**overrides) -> dict:
  """NCSN++ (VE, paper Table 3): fourier embedding, FIR BigGAN blocks, residual input pyramid.

  As the reference's CIFAR-10 configs (progressive 'none', progressive_input 'residual');
  output_skip / input_skip are the reference's settings for CelebA-HQ, FFHQ and LSUN."""
  m = dict(name="ncsnpp", ch=128, ch_mult=(1, 2, 2, 2), num_res_blocks=4,
           attn_resolutions=(16,), dropout=0.1, embedding_type="fourier", fourier_scale=16.0,
           resblock_type="biggan", fir=True, skip_rescale=True, progressive="none",
           progressive_input="residual", num_groups=32, remat=False)
  m.update(overrides)
  return m


def ddpmpp_model(**overrides) -> dict:
  """DDPM++ (VP / sub-VP): positional embedding, BigGAN blocks, no FIR, no progressive."""
  m = dict(name="ncsnpp", ch=128, ch_mult=(1, 2, 2, 2), num_res_blocks=4,
           attn_resolutions=(16,), dropout=0.1, embedding_type="positional",
           resblock_type="biggan", fir=False, skip_rescale=True, progressive="none",
           progressive_input="none", num_groups=32, remat=False)
  m.update(overrides)
  return m


def smoke_score_sde(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A tiny one-level network, 20 noise scales and loose tolerances on top of `common.smoke`.

  One resolution level keeps the compile time (which dominates on CPU) low; the resampling
  and progressive paths of NCSN++ are covered by tests/nets/test_ncsnpp.py.
  """
  common.smoke(c)
  if c.model.name in ("ncsnpp", "unet"):
    c.model.ch = 8
    c.model.ch_mult = (1,)
    c.model.num_res_blocks = 1
    c.model.num_groups = 4
    c.model.attn_resolutions = ()
  c.method.num_scales = 20
  c.sample.euler_maruyama.num_steps = 20
  c.sample.ode.num_steps = 20
  c.sample.ddim.num_steps = 20
  c.sample.ode.rtol = c.sample.ode.atol = 1e-2
  c.sample.ode.max_steps = 50
  c.method.likelihood.rtol = c.method.likelihood.atol = 1e-2
  c.method.likelihood.max_steps = 50
  return c
