"""The CycleGAN settings shared by the configs in this folder (method "cyclegan").

Zhu et al. 2017 and the official code's defaults (options/train_options.py,
models/cycle_gan_model.py): ResNet generator with ngf 64 (6 residual blocks at 128 px,
9 at 256 px and above, as the paper's appendix says; the code's default is 9), the 70x70
PatchGAN with ndf 64, LSGAN losses, lambda_A = lambda_B = 10, lambda_identity = 0.5, a
history pool of 50 images per domain, Adam lr 2e-4 with betas (0.5, 0.999) for both
generator and discriminator, batch 1, 100 epochs at the initial rate and 100 epochs of
linear decay to zero ("constant_then_linear" over num_train_steps), and the code's
training jitter (preprocess 'resize_and_crop'): each training image resized to load_size
(286 for 256 px: data.load_size = round(image_size * 286 / 256)), a random image_size
crop, a random left-right flip; test images are read at image_size. No EMA (ema.decay = 0 makes the EMA a copy of the parameters).

An epoch is max(|A|, |B|) images, as in the code's UnalignedDataset; the configs set
num_train_steps = 200 * epoch_size / batch_size from a stated epoch size.
"""

from __future__ import annotations

import ml_collections

from configs import common
from configs.gan import _gan

EPOCHS = 200  # n_epochs 100 + n_epochs_decay 100


def load_size(image_size: int) -> int:
  """The training resize before the random crop: the official 286 for 256, scaled."""
  return round(image_size * 286 / 256)


def cyclegan_config(*, image_size: int, epoch_size: int) -> ml_collections.ConfigDict:
  """A base config with the "cyclegan" method and the paper's settings at image_size."""
  if image_size % 4:
    raise ValueError(f"image_size must be divisible by 4 (two 2x downsamplings), got "
                     f"{image_size}.")
  c = _gan.gan_config(
      generator=dict(name="cyclegan_resnet_generator", ngf=64,
                     num_blocks=6 if image_size < 256 else 9),
      discriminator=dict(name="patchgan_discriminator", ndf=64, num_layers=3),
      lr_g=2e-4, lr_d=2e-4, b1=0.5, b2=0.999, loss="least_squares")
  c.method = ml_collections.ConfigDict(dict(
      name="cyclegan",
      loss="least_squares",  # LSGAN (gan_mode lsgan)
      lambda_a=10.0,  # cycle A -> B -> A
      lambda_b=10.0,  # cycle B -> A -> B
      lambda_identity=0.5,  # relative to lambda_a / lambda_b; 0 turns it off
      pool_size=50,
      preview_size=8,  # preview inputs per domain in the periodic sample grids
  ))
  c.optim.schedule = "constant_then_linear"
  c.ema.decay = 0.0
  c.ema.warmup = False
  c.batch_size = 1
  c.num_train_steps = EPOCHS * epoch_size // c.batch_size
  c.data.image_size = image_size
  c.data.load_size = load_size(image_size)  # random image_size crops of these (training)
  c.data.random_flip = True
  for field in ("path_a", "path_b", "eval_path_a", "eval_path_b"):
    c.data[field] = ""  # unpaired_folders
  c.data.split_a, c.data.split_b = "trainA", "trainB"  # unpaired_tfds
  c.data.eval_split_a, c.data.eval_split_b = "testA", "testB"
  c.sample.inputs_a = ""  # --mode=sample: a folder of domain-A images ("": eval split)
  c.sample.inputs_b = ""  # the same for domain B
  c.sample.num_samples = 16
  c.sample.batch_size = 4
  c.sample.grid_size = 16
  c.trainer.log_every_steps = 100
  c.trainer.checkpoint_every_steps = epoch_size
  c.trainer.keep_checkpoint_every_steps = 0
  c.trainer.sample_every_steps = 5 * epoch_size
  c.trainer.eval_every_steps = 0
  c.eval.periodic_num_samples = 0
  return c


def smoke_cyclegan(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """common.smoke plus tiny networks, 32 px images and a 4-image pool (so it swaps)."""
  common.smoke(c)  # batch 8: one row per device of the test suite's 8-device mesh
  c.data.image_size = 32
  c.data.load_size = load_size(32)
  c.model.generator.ngf = 8
  c.model.generator.num_blocks = 1
  c.model.discriminator.ndf = 8
  c.method.pool_size = 4
  c.method.preview_size = 4
  c.sample.num_samples = 4
  c.sample.batch_size = 4
  c.sample.grid_size = 8
  return c
