"""CycleGAN on tfds `cycle_gan/<name>` (default horse2zebra), the paper's settings.

horse2zebra: 1,067 horses (trainA) and 1,334 zebras (trainB), tested on testA / testB;
an epoch is max(|A|, |B|) = 1,334 images, so 200 epochs at batch 1 are 266,800 steps.
The argument picks the image size (256 as in the paper, or 128) and another cycle_gan
dataset (then also give its epoch size):

    python -m gen_jax.main --config=configs/cyclegan/horse2zebra.py --workdir=runs/h2z
    python -m gen_jax.main --config=configs/cyclegan/horse2zebra.py:dataset=apple2orange,\
epoch_size=1019 --workdir=runs/a2o

The data must be prepared as array_record (`tfds build cycle_gan/horse2zebra
--file_format=array_record`), or read from folders with configs/cyclegan/folders.py.
"""

from configs import common
from configs.cyclegan import _cyclegan


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False, size=256, dataset="horse2zebra",
                          epoch_size=1334)
  c = _cyclegan.cyclegan_config(image_size=args.size, epoch_size=args.epoch_size)
  c.data.source = "unpaired_tfds"
  c.data.name = f"cycle_gan/{args.dataset}"
  if args.smoke:
    _cyclegan.smoke_cyclegan(c)
  c.lock()
  return c
