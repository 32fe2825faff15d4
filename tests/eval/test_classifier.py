"""The offline feature extractor: a classifier trained by gen_jax on real MNIST.

Trains configs/classifier/mnist.py (narrowed) on 8,000 images of the MNIST test split in
../shared/data, evaluates it on the other 2,000 with --mode=eval, and checks that the
Frechet distance in its feature space ranks real < lightly noised < heavily noised images.
"""

import numpy as np

from gen_jax import data as data_lib
from gen_jax.eval import features as features_lib
from gen_jax.eval import metrics
from gen_jax.core import sharding
from gen_jax.train import loop
from tests.train.helpers import load_config

MNIST_MIN_TEST_ACCURACY = 0.95


def _noised(images, sigma, seed):
  """uint8 images plus Gaussian noise of std `sigma` in [-1, 1] units, re-quantized."""
  x = images.astype(np.float32) / 127.5 - 1.0
  x = x + sigma * np.random.default_rng(seed).normal(size=x.shape)
  return np.clip(np.round((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


def test_mnist_classifier_accuracy_and_frechet_ranking(shared_data, tmp_path):
  images = data_lib.read_idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz")[..., None]
  labels = data_lib.read_idx(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz")
  # The split's first half comes from cleaner writers than its second: shuffle, so the
  # training and held-out parts are drawn from the same distribution.
  order = np.random.default_rng(0).permutation(len(images))
  images, labels = images[order], labels[order]
  np.savez(tmp_path / "train.npz", images=images[:8000], labels=labels[:8000])
  np.savez(tmp_path / "test.npz", images=images[8000:], labels=labels[8000:])

  config = load_config("classifier/mnist.py", None)
  config.data.source = "npz"
  config.data.path = str(tmp_path / "train.npz")
  config.data.eval_path = str(tmp_path / "test.npz")
  config.model.ch = 16
  config.model.ch_mult = (1, 2)
  config.model.hidden = 64
  config.batch_size = 64
  config.num_train_steps = 300
  config.optim.learning_rate = 2e-3
  config.ema.decay = 0.99
  config.trainer.log_every_steps = 100
  config.trainer.checkpoint_every_steps = 400
  config.trainer.sample_every_steps = 0
  config.trainer.eval_every_steps = 0
  config.data.num_threads = 1
  workdir = tmp_path / "cls"
  loop.train_and_evaluate(config, workdir)
  results = loop.run_eval(config, workdir)
  assert results["num_examples"] == 2000
  assert results["accuracy"] >= MNIST_MIN_TEST_ACCURACY, results

  eval_cfg = config.eval
  eval_cfg.unlock()
  eval_cfg.feature_extractor = "classifier"
  eval_cfg.classifier_workdir = str(workdir)
  extractor = features_lib.build_feature_extractor(eval_cfg, (28, 28, 1), sharding.make_mesh())
  assert extractor.protocol["feature_extractor"] == "classifier"

  def fd(a, b):
    fa, fb = extractor(a)["pool"], extractor(b)["pool"]
    return metrics.frechet_distance(*metrics.feature_statistics(fa), *metrics.feature_statistics(fb))

  reference, held_out = images[:2000], images[8000:]
  real = fd(reference, held_out)
  light = fd(reference, _noised(held_out, 0.15, 0))
  heavy = fd(reference, _noised(held_out, 0.5, 1))
  print(f"accuracy {results['accuracy']:.4f}; Frechet distances real {real:.3f}, "
        f"light noise {light:.3f}, heavy noise {heavy:.3f}")
  assert real < light < heavy, (real, light, heavy)
