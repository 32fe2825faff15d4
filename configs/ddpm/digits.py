"""DDPM on the embedded default: scikit-learn's 1,797 real 8x8 handwritten digits.

Needs no download and trains in a few minutes on 2 CPU cores, leaving a checkpoint and a
PNG grid of samples:

    python -m gen_jax.main --config=configs/ddpm/digits.py --workdir=runs/ddpm_digits
"""

from configs import common
from configs.ddpm import _ddpm


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = _ddpm.ddpm_config(image_size=8, ch=32, ch_mult=(1, 2), num_res_blocks=1,
                        attn_resolutions=(4,), dropout=0.0)
  c.model.num_groups = 8
  c.data.source = "digits"
  c.batch_size = 64
  c.num_train_steps = 1000
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 100
  c.optim.schedule = "cosine"
  c.ema.decay = 0.995  # a short run: average over the last ~200 steps
  c.method.num_timesteps = 1000
  c.method.beta_schedule = "cosine"
  c.trainer.log_every_steps = 100
  c.trainer.checkpoint_every_steps = 250
  c.trainer.sample_every_steps = 500
  c.trainer.eval_every_steps = 500
  c.sample.num_samples = 256
  c.sample.batch_size = 256
  c.sample.grid_size = 100
  if args.smoke:
    _ddpm.smoke_ddpm(c)
    c.model.attn_resolutions = (4,)
  c.lock()
  return c
