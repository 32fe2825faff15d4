"""The original PixelCNN (van den Oord et al. 2016a) on MNIST: masked convolutions.

Paper architecture (Table 1): a 7x7 mask-'A' conv, residual blocks of masked 1x1 / 3x3 /
1x1 convs, two masked 1x1 output layers and a 256-way softmax. The paper's MNIST results
are on binarised MNIST (a different likelihood); here 8-bit MNIST, 12 blocks of 128
features, 1024-wide output layers, Adam 1e-3, batch 64.

    python -m gen_jax.main --config=configs/autoregressive/pixelcnn_mnist.py \\
        --workdir=runs/pixelcnn_mnist
"""

from configs import common
from configs.autoregressive import _autoregressive


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = _autoregressive.autoregressive_config(
      dict(name="pixelcnn", hidden=128, num_layers=12, output_hidden=1024, first_kernel=7),
      likelihood="categorical")
  _autoregressive.mnist_training(c)
  if args.smoke:
    _autoregressive.smoke_autoregressive(c)
  c.lock()
  return c
