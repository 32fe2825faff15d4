"""CycleGAN on two unpaired image folders, with the paper's settings (Zhu et al. 2017).

The argument sets the image size (128 or 256 px; 6 or 9 residual blocks) and the epoch
size max(|A|, |B|), from which num_train_steps = 200 epochs at batch 1:

    python -m gen_jax.main --config=configs/cyclegan/folders.py:size=256,epoch_size=1334 \
        --workdir=runs/h2z --config.data.path_a=horse2zebra/trainA \
        --config.data.path_b=horse2zebra/trainB --config.data.eval_path_a=horse2zebra/testA \
        --config.data.eval_path_b=horse2zebra/testB
    python -m gen_jax.main --config=configs/cyclegan/folders.py --workdir=runs/h2z \
        --mode=sample --config.sample.inputs_a=my_horses --config.sample.inputs_b=my_zebras

Each folder holds image files (PNG/JPEG/BMP); they are center-cropped and resized to
size x size and flipped at random. See configs/cyclegan/_cyclegan.py for the settings.
"""

from configs import common
from configs.cyclegan import _cyclegan


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False, size=256, epoch_size=1000)
  c = _cyclegan.cyclegan_config(image_size=args.size, epoch_size=args.epoch_size)
  c.data.source = "unpaired_folders"
  if args.smoke:
    _cyclegan.smoke_cyclegan(c)
  c.lock()
  return c
