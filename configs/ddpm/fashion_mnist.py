"""DDPM on Fashion-MNIST (28x28 grayscale): a 3-level UNet with attention at 14x14.

    python -m gen_jax.main --config=configs/ddpm/fashion_mnist.py --workdir=runs/ddpm_fashion_mnist

Reads tfds 'fashion_mnist'. Offline, point it at IDX files instead:
    --config.data.source=idx --config.data.path=.../train-images-idx3-ubyte.gz  (e.g. the
    Debian package dataset-fashion-mnist installs them under /usr/share/datasets/fashion-mnist/)
    --config.data.eval_path=.../t10k-images-idx3-ubyte.gz
"""

from configs import common
from configs.ddpm import _ddpm


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = _ddpm.ddpm_config(image_size=28, ch=64, ch_mult=(1, 2, 2), num_res_blocks=2,
                        attn_resolutions=(14,), dropout=0.1)
  c.data.source = "tfds"
  c.data.name = "fashion_mnist"
  c.batch_size = 128
  c.num_train_steps = 50_000
  c.optim.learning_rate = 2e-4
  c.optim.warmup_steps = 1000
  c.ema.decay = 0.9995
  if args.smoke:
    _ddpm.smoke_ddpm(c)
    c.model.attn_resolutions = (14,)
  c.lock()
  return c
