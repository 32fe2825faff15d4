"""EDM on CIFAR-10: Karras et al., "Elucidating the Design Space of Diffusion-Based Generative
Models" (NeurIPS 2022), Table 7's unconditional CIFAR-10 "config F" with the DDPM++ network,
as `train.py --cond=0 --arch=ddpmpp` of github:NVlabs/edm (paper: FID 1.97, 35 NFE).

    python -m gen_jax.main --config=configs/edm/cifar10.py --workdir=runs/edm_cifar10
    python -m gen_jax.main --config=configs/edm/cifar10.py --workdir=runs/edm_cifar10 \
        --mode=sample --config.sample.sampler=dpm_solver_2m

* Model: EDM's preconditioning (`gen_jax.diffusion.edm.EDMPrecond`, sigma_data 0.5) around
  DDPM++ (the ncsnpp net with the positional embedding of c_noise = ln(sigma) / 4): 128
  channels, multipliers (2, 2, 2), 4 residual blocks per level, attention at 16x16, dropout
  0.13, BigGAN resampling blocks, skip rescaling.
* Training: ln sigma ~ N(-1.2, 1.2^2), EDM's loss weighting, summed over dimensions; Adam
  lr 1e-3 (betas 0.9, 0.999, eps 1e-8) with a linear warm-up over 10 Mimg (19,531 steps of
  512), batch 512, 200 Mimg (390,625 steps), no gradient clipping; EMA with a half-life of
  0.5 Mimg: decay 0.5^(512 / 500,000) = 0.99929 per step.
* Sampling: Heun on the rho = 7 grid from sigma 80 to 0.002, 18 steps = 35 NFE; also
  configured: edm_stochastic, dpm_solver_2m (20 NFE) and ddim (EDM's Euler sampler).

Deviations from the official code:
* No non-leaking augmentation (the paper: probability 0.12, the network conditioned on the
  augmentation labels, augment_dim 9): gen_jax has no such pipeline for diffusion yet, so
  expect a worse FID than the paper's 1.97.
* EMA: the decay is the half-life's at full batch from step 0 with gen_jax's warm-up
  (min(decay, (1 + step) / (10 + step))) instead of EDM's ema_rampup_ratio 0.05 (a
  half-life of at most 5% of the images seen).
* DDPM++ as gen_jax's NCSNpp (score_sde's DDPM++): fir=False resamples with a box filter and
  nearest upsampling, which EDM's [1, 1] resample_filter of SongUNet also amounts to (not
  checked weight for weight); the embedding's sin/cos order differs.
* The loss is averaged over the batch by the trainer as EDM's sum / batch size; mixed precision
  off (fp32), as EDM's CIFAR-10 runs.
The smoke variant (tiny net, 4 steps, 4 Heun steps) runs in seconds on a CPU.
"""

import ml_collections

from configs import common
from configs.ddpm import _ddpm
from configs.score_sde import _score_sde


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = common.base_config()
  c.model = ml_collections.ConfigDict(_score_sde.ddpmpp_model(
      ch=128, ch_mult=(2, 2, 2), num_res_blocks=4, attn_resolutions=(16,), dropout=0.13))
  c.method = ml_collections.ConfigDict(dict(
      name="diffusion",
      process="edm", sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, rho=7.0,
      precondition="edm", prediction="x0", time_input="sigma",
      loss="edm", weighting="edm", reduce_mean=False, p_mean=-1.2, p_std=1.2,
      snr_gamma=5.0, p2_k=1.0, p2_gamma=1.0,  # weighting=min_snr | p2 (diffusion.weightings)
      class_conditional=False,
  ))
  _ddpm.diffusion_sample_fields(c, sampler="edm_heun")
  c.sample.edm_heun = ml_collections.ConfigDict(dict(num_steps=18))
  c.sample.edm_stochastic = ml_collections.ConfigDict(dict(
      num_steps=18, S_churn=40.0, S_tmin=0.05, S_tmax=50.0, S_noise=1.003))
  c.sample.dpm_solver_2m = ml_collections.ConfigDict(dict(num_steps=20))
  c.sample.ddim = ml_collections.ConfigDict(dict(num_steps=35, eta=0.0, clip_x0=False))
  c.data.source = "tfds"
  c.data.name = "cifar10"
  c.batch_size = 512
  c.num_train_steps = 200_000_000 // 512
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 10_000_000 // 512
  c.optim.grad_clip_norm = 0.0
  c.ema.decay = 0.5 ** (512 / 500_000)
  c.trainer.checkpoint_every_steps = 10_000
  c.trainer.sample_every_steps = 10_000
  if args.smoke:
    common.smoke(c)
    c.model.ch = 8
    c.model.ch_mult = (1,)
    c.model.num_res_blocks = 1
    c.model.num_groups = 4
    c.model.attn_resolutions = ()
    c.sample.edm_heun.num_steps = 4
    c.sample.edm_stochastic.num_steps = 4
    c.sample.dpm_solver_2m.num_steps = 4
    c.sample.ddim.num_steps = 4
  c.lock()
  return c
