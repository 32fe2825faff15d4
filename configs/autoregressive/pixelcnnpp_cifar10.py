"""PixelCNN++ on CIFAR-10 (Salimans et al. 2017; the official openai/pixel-cnn defaults).

5 gated ResNet blocks per scale on 3 scales (32, 16, 8) down and 6 up, 160 filters,
concat-elu, dropout 0.5, a 10-component discretized logistic mixture with
channel-conditional means; Adam (b1 0.95, b2 0.9995) at 1e-3, batch 128 (16 on each of 8
GPUs), Polyak averaging 0.9995, no augmentation. Reported: 2.92 bits/dim on the test set.

Deviation: the official learning rate decays by 0.999995 every step; the engine's
schedules are constant / cosine / linear, and this config keeps it constant.

    python -m gen_jax.main --config=configs/autoregressive/pixelcnnpp_cifar10.py \\
        --workdir=runs/pixelcnnpp_c10
"""

from configs import common
from configs.autoregressive import _autoregressive


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False, class_conditional=False)
  c = _autoregressive.autoregressive_config(
      dict(name="pixelcnn_pp", nr_filters=160, nr_resnet=5, num_scales=3, dropout=0.5),
      likelihood="dlm", num_mix=10, class_conditional=args.class_conditional)
  c.data.source = "tfds"
  c.data.name = "cifar10"
  c.batch_size = 128
  c.num_train_steps = 500_000
  c.optim.name = "adam"
  c.optim.learning_rate = 1e-3
  c.optim.b1 = 0.95
  c.optim.b2 = 0.9995
  c.ema.decay = 0.9995
  c.trainer.eval_every_steps = 10_000
  c.sample.num_samples = 16
  c.sample.batch_size = 16
  c.sample.grid_size = 16
  if args.smoke:
    _autoregressive.smoke_autoregressive(c)
  c.lock()
  return c
