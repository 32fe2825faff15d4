"""StyleGAN2-ADA on a folder of images (FFHQ / AFHQ style) at 64-256 px.

The official "auto" configuration (NVlabs/stylegan2-ada-pytorch train.py, --cfg=auto on 8
GPUs, --aug=ada --mirror=1) at resolution R:
  batch 64, minibatch-std groups of 4, fmaps 0.5 (channel_base 16384, channel_max 512),
  2-layer mapping network, Adam 0.0025 betas (0, 0.99), R1 gamma = 0.0002 R^2 / 64
  (0.0128 at 64 px, 0.0512 at 128, 0.2048 at 256) every 16 steps, path length weight 2
  every 4 steps, style mixing 0.9, G EMA half-life 20 kimg with ramp-up, 25,000 kimg
  (390,625 steps), ADA "bgc" target 0.6; x-flips of the data (data.random_flip).
The images: data.path=<root>/<class>/<image files> (one class folder is enough; labels
are ignored), resized to R (data.image_size). `:cond=True` uses the folders as classes.

    python -m gen_jax.main --config=configs/gan/stylegan2_folder.py:resolution=256 \
        --config.data.path=/data/afhq/train --workdir=runs/sg2_afhq256

`:smoke` trains a tiny network on the built-in digits at 16 px (no folder ships with
the repository).
"""

from configs import common
from configs.gan import _stylegan2

RESOLUTIONS = (64, 128, 256)


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False, resolution=256, cond=False)
  res = int(args.resolution)
  if res not in RESOLUTIONS:
    raise ValueError(f"stylegan2_folder resolution must be one of {RESOLUTIONS}, got {res}.")
  batch = 64  # max(min(gpus * min(4096 // res, 32), 64), gpus) with 8 GPUs
  c = _stylegan2.stylegan2_config(
      generator=dict(name="stylegan2_generator", z_dim=512, w_dim=512, mapping_layers=2,
                     channel_base=16384, channel_max=512, conv_clamp=256.0),
      discriminator=dict(name="stylegan2_discriminator", architecture="resnet",
                         channel_base=16384, channel_max=512, mbstd_group_size=4,
                         conv_clamp=256.0),
      lr=0.0025, gamma=0.0002 * res ** 2 / batch, batch=batch, kimg=25_000,
      ema_kimg=batch * 10 / 32, ema_rampup=True, class_conditional=args.cond)
  c.data.source = "folder"
  c.data.path = ""  # set on the command line: --config.data.path=<root>
  c.data.image_size = res
  c.data.random_flip = True
  c.sample.num_samples = 50_000
  c.sample.batch_size = 64
  c.trainer.log_every_steps = 100
  c.trainer.checkpoint_every_steps = 5000
  c.trainer.sample_every_steps = 5000
  if args.smoke:
    c.data.source = "digits"
    c.data.image_size = 16
    _stylegan2.smoke_stylegan2(c, resolution=16)
  c.lock()
  return c
