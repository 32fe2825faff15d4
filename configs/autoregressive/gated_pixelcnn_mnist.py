"""Gated PixelCNN (van den Oord et al. 2016b) on MNIST with a 256-way softmax per pixel.

The paper's CIFAR-10 model has 20 gated layers of 384 feature maps (3.03 bits/dim); it
reports no MNIST run. Here: 15 gated layers of 128 features, 5x5 receptive kernels
(vertical 3x5, horizontal 1x3), a 1024-wide 1x1 output layer, Adam 1e-3, batch 64, and
class conditioning on the digit (conditional PixelCNN) with `:class_conditional`.

    python -m gen_jax.main --config=configs/autoregressive/gated_pixelcnn_mnist.py \\
        --workdir=runs/gated_pixelcnn_mnist
"""

from configs import common
from configs.autoregressive import _autoregressive


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False, class_conditional=False)
  c = _autoregressive.autoregressive_config(
      dict(name="gated_pixelcnn", hidden=128, num_layers=15, kernel_size=5,
           output_hidden=1024),
      likelihood="categorical", class_conditional=args.class_conditional)
  _autoregressive.mnist_training(c)
  if args.smoke:
    _autoregressive.smoke_autoregressive(c)
  c.lock()
  return c
