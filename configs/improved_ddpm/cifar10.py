"""Improved DDPM on CIFAR-10 with the paper's settings (Nichol & Dhariwal 2021, Sec. 2.4,
3 and appendix A; the official README's CIFAR-10 flags of github:openai/improved-diffusion).

Learned interpolated variances (the UNet outputs 6 channels: eps and v_var), the hybrid loss
L_simple + 0.001 L_vlb, the cosine schedule with T = 4000, UNet ch 128 with 3 ResNet blocks
per level and attention (4 heads) at 16x16 and 8x8, dropout 0.3, Adam lr 1e-4, batch 128,
EMA 0.9999, 500k steps; sampling with the learned variances on 100 respaced steps
(`--config.sample.learned_variance.num_steps=4000` for the full chain).

Deviations from the official model: the DDPM UNet of gen_jax (time embedding added in each
ResNet block; the official one uses scale-shift norm, `use_scale_shift_norm=True`), which
sees t in 0..3999 (the official one 1000 t / T, `rescale_timesteps=True`); t is drawn
uniformly (the official default as well; its importance sampling of L_vlb is for the pure
L_vlb objective only).

    python -m gen_jax.main --config=configs/improved_ddpm/cifar10.py --workdir=runs/iddpm_c10
    python -m gen_jax.main --config=configs/improved_ddpm/cifar10.py:smoke --workdir=/tmp/s
"""

from configs import common
from configs.improved_ddpm import _improved_ddpm


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = _improved_ddpm.improved_ddpm_config(ch=128, ch_mult=(1, 2, 2, 2), num_res_blocks=3,
                                          attn_resolutions=(16, 8), dropout=0.3, num_heads=4)
  c.data.source = "tfds"
  c.data.name = "cifar10"
  c.data.split = "train"
  c.data.eval_split = "test"
  c.data.random_flip = True
  c.batch_size = 128
  c.num_train_steps = 500_000
  c.optim.learning_rate = 1e-4
  c.optim.warmup_steps = 0
  c.ema.decay = 0.9999
  if args.smoke:
    _improved_ddpm.smoke_improved_ddpm(c)
    c.model.attn_resolutions = (16,)
  c.lock()
  return c
