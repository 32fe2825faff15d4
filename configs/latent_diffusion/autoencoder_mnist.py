"""Latent diffusion's first stage on MNIST: f = 4 (28x28x1 -> 7x7x4), KL weight 1e-6.

    python -m gen_jax.main --config=configs/latent_diffusion/autoencoder_mnist.py \
        --workdir=runs/ldm_mnist_autoencoder
"""

from configs import common
from configs.latent_diffusion import _first_stage


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = _first_stage.first_stage_config(ch=32, ch_mult=(1, 2, 2), z_channels=4,
                                      num_res_blocks=1)
  c.data.source = "tfds"
  c.data.name = "mnist"
  c.batch_size = 64
  c.num_train_steps = 20_000
  c.trainer.eval_every_steps = 5000
  if args.smoke:
    _first_stage.smoke_first_stage(c)
  c.lock()
  return c
