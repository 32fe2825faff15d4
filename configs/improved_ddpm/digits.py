"""Improved DDPM (learned variances, hybrid loss) on scikit-learn's 8x8 digits: minutes on a
CPU, the cheap companion of cifar10.py with the same method on a 1,000-step cosine chain.

    python -m gen_jax.main --config=configs/improved_ddpm/digits.py --workdir=runs/iddpm_digits
"""

from configs import common
from configs.improved_ddpm import _improved_ddpm


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = _improved_ddpm.improved_ddpm_config(ch=32, ch_mult=(1, 2), num_res_blocks=1,
                                          attn_resolutions=(4,), dropout=0.0)
  c.model.num_groups = 8
  c.data.source = "digits"
  c.batch_size = 64
  c.num_train_steps = 1000
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 100
  c.optim.schedule = "cosine"
  c.ema.decay = 0.995
  c.method.num_timesteps = 1000
  c.sample.learned_variance.num_steps = 50
  c.trainer.log_every_steps = 100
  c.trainer.checkpoint_every_steps = 250
  c.trainer.sample_every_steps = 500
  c.trainer.eval_every_steps = 500
  c.sample.num_samples = 256
  c.sample.batch_size = 256
  c.sample.grid_size = 100
  if args.smoke:
    _improved_ddpm.smoke_improved_ddpm(c)
    c.model.attn_resolutions = (4,)
  c.lock()
  return c
