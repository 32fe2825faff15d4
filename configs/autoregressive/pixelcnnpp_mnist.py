"""PixelCNN++ on MNIST (28x28x1): 3 scales (28, 14, 7), 64 filters, 2 blocks per scale.

Not a paper setting (PixelCNN++ reports CIFAR-10 only): the CIFAR-10 architecture,
narrower and shallower for 28x28 grayscale, with a 5-component one-channel discretized
logistic mixture. tests/autoregressive/test_learning.py trains a smaller one on the real
MNIST test split (its number is in that test).

    python -m gen_jax.main --config=configs/autoregressive/pixelcnnpp_mnist.py \\
        --workdir=runs/pixelcnnpp_mnist
"""

from configs import common
from configs.autoregressive import _autoregressive


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = _autoregressive.autoregressive_config(
      dict(name="pixelcnn_pp", nr_filters=64, nr_resnet=2, num_scales=3, dropout=0.5),
      likelihood="dlm", num_mix=5)
  _autoregressive.mnist_training(c)
  c.optim.b1 = 0.95
  c.optim.b2 = 0.9995
  if args.smoke:
    _autoregressive.smoke_autoregressive(c)
  c.lock()
  return c
