"""DDPM on Fashion-MNIST (28x28 grayscale): the MNIST model and schedule on tfds 'fashion_mnist'.

    python -m gen_jax.main --config=configs/ddpm/fashion_mnist.py --workdir=runs/ddpm_fashion_mnist

Offline, point it at IDX files instead (the Debian package dataset-fashion-mnist installs
them under /usr/share/datasets/fashion-mnist/):
    --config.data.source=idx --config.data.path=.../train-images-idx3-ubyte.gz
    --config.data.eval_path=.../t10k-images-idx3-ubyte.gz
"""

from configs.ddpm import mnist


def get_config(arg=None):
  c = mnist.get_config(arg)
  c.data.name = "fashion_mnist"
  return c
