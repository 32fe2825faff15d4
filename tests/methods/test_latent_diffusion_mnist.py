"""Latent diffusion end to end on real MNIST (../shared/data): both stages trained by the
engine, decoded samples scored in the feature space of the offline MNIST classifier.

The MNIST test split (10,000 images), shuffled, is cut into 8,000 training and 2,000
held-out images. (1) The first stage (configs/latent_diffusion/autoencoder_mnist.py, f = 4:
7x7x4 latents, ch 16) trains on the 8,000 and its evaluation on the 2,000 records the
latent std; its held-out reconstruction error is stated and bounded. (2) The second stage
(configs/latent_diffusion/mnist.py, narrowed) trains in its latents. (3) The classifier of
configs/classifier/mnist.py (narrowed as in tests/eval/test_classifier.py) trains on the
8,000 labelled images; the Frechet distance of its features between the 2,000 held-out
images and decoded samples of the trained second stage must be lower than that of the
untrained (initial) second stage through the same first stage.

Measured 2026-11-29 (3,856 s on 2 CPU cores shared with five other agents, load ~15-20):
first stage held-out MSE 0.0238 per pixel in [-1, 1] (PSNR 22.2 dB), latent std 1.988
(scale 0.503); second stage eps-MSE train loss 0.526 (step 100) -> 0.157 (step 600);
classifier accuracy 0.968; classifier Frechet distance to the held-out images (500
samples): trained 336.2, untrained 356.8, the first stage's reconstructions of the held-out
images 11.0. The margin is small: 600 steps of a 32-channel one-level UNet are far from a
converged model (the reconstructions show what the first stage allows).
"""

import jax
import numpy as np
import pytest

from gen_jax import data as data_lib
from gen_jax.core import sharding
from gen_jax.eval import features as features_lib
from gen_jax.eval import metrics
from gen_jax.methods.first_stage import load_first_stage
from gen_jax.train import loop
from gen_jax.train.experiment import Experiment
from tests.train.helpers import load_config

FIRST_STAGE_STEPS = 300
FIRST_STAGE_MAX_MSE = 0.05  # tests/vae/test_first_stage.py measured 0.024 on this setup
SECOND_STAGE_STEPS = 600
NUM_SAMPLES = 500


def _quiet(c, steps, *, batch_size, lr, path, eval_path):
  c.data.source = "npz"
  c.data.name = ""
  c.data.path = str(path)
  c.data.eval_path = str(eval_path)
  c.data.num_threads = 1
  c.batch_size = batch_size
  c.num_train_steps = steps
  c.optim.learning_rate = lr
  c.trainer.log_every_steps = 100
  c.trainer.checkpoint_every_steps = steps
  c.trainer.sample_every_steps = 0
  c.trainer.eval_every_steps = 0
  return c


def _uint8(images):
  return np.clip(np.round((np.asarray(images) + 1.0) * 127.5), 0, 255).astype(np.uint8)


@pytest.mark.slow
def test_latent_diffusion_on_mnist_beats_the_untrained_model(shared_data, tmp_path):
  images = data_lib.read_idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz")[..., None]
  labels = data_lib.read_idx(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz")
  order = np.random.default_rng(0).permutation(len(images))
  images, labels = images[order], labels[order]
  train, held_out = tmp_path / "train.npz", tmp_path / "held_out.npz"
  np.savez(train, images=images[:8000], labels=labels[:8000])
  np.savez(held_out, images=images[8000:], labels=labels[8000:])

  # (1) The first stage, evaluated at its last step (records the latent std).
  first_cfg = _quiet(load_config("latent_diffusion/autoencoder_mnist.py", ""),
                     FIRST_STAGE_STEPS, batch_size=32, lr=1e-3, path=train, eval_path=held_out)
  first_cfg.model.ch = 16
  first_cfg.trainer.eval_every_steps = FIRST_STAGE_STEPS
  loop.train_and_evaluate(first_cfg, tmp_path / "first_stage")
  first = load_first_stage(tmp_path / "first_stage", (28, 28, 1))
  x = images[8000:].astype(np.float32) / 127.5 - 1.0
  recon = np.concatenate([np.asarray(first.decode(first.encode(x[i:i + 250])))
                          for i in range(0, len(x), 250)])
  mse = float(np.mean((recon - x) ** 2))

  # (2) The second stage in its latents.
  second_cfg = _quiet(load_config("latent_diffusion/mnist.py", ""), SECOND_STAGE_STEPS,
                      batch_size=64, lr=1e-3, path=train, eval_path=held_out)
  second_cfg.latent.autoencoder_workdir = str(tmp_path / "first_stage")
  second_cfg.model.ch = 32
  second_cfg.model.num_res_blocks = 1
  second_cfg.model.dropout = 0.0
  second_cfg.optim.warmup_steps = 50
  second_cfg.ema.decay = 0.99
  second_cfg.sample.ddim.num_steps = 20
  loop.train_and_evaluate(second_cfg, tmp_path / "second_stage")
  exp = Experiment.create(second_cfg, tmp_path / "second_stage")
  trained, _ = exp.restore_or_fail()
  exp.checkpointer.close()
  untrained = jax.jit(exp.method.init)(exp.init_key, None)
  sample = exp.sample_fn(250)

  def draw(state, seed):
    return np.concatenate([_uint8(sample(state, jax.random.key(seed + i)).samples)
                           for i in range(NUM_SAMPLES // 250)])

  trained_samples, untrained_samples = draw(trained, 0), draw(untrained, 100)
  assert trained_samples.shape == (NUM_SAMPLES, 28, 28, 1)

  # (3) The offline classifier's feature space.
  cls_cfg = _quiet(load_config("classifier/mnist.py", None), 300, batch_size=64, lr=2e-3,
                   path=train, eval_path=held_out)
  cls_cfg.model.ch = 16
  cls_cfg.model.ch_mult = (1, 2)
  cls_cfg.model.hidden = 64
  cls_cfg.ema.decay = 0.99
  loop.train_and_evaluate(cls_cfg, tmp_path / "classifier")
  accuracy = loop.run_eval(cls_cfg, tmp_path / "classifier")["accuracy"]
  eval_cfg = cls_cfg.eval
  eval_cfg.feature_extractor = "classifier"
  eval_cfg.classifier_workdir = str(tmp_path / "classifier")
  extractor = features_lib.build_feature_extractor(eval_cfg, (28, 28, 1), sharding.make_mesh())
  reference = metrics.feature_statistics(extractor(images[8000:])["pool"])

  def fd(samples):
    return metrics.frechet_distance(*reference,
                                    *metrics.feature_statistics(extractor(samples)["pool"]))

  fd_trained, fd_untrained = fd(trained_samples), fd(untrained_samples)
  fd_recon = fd(_uint8(recon))
  print(f"first stage: held-out MSE {mse:.4f} per pixel in [-1, 1] (PSNR "
        f"{10 * np.log10(4.0 / mse):.1f} dB), latent {first.latent_shape}, scale "
        f"{first.latent_scale:.3f}; classifier accuracy {accuracy:.4f}; classifier Frechet "
        f"distance to the 2,000 held-out images ({NUM_SAMPLES} samples): trained second "
        f"stage {fd_trained:.3f}, untrained {fd_untrained:.3f}, first-stage reconstructions "
        f"of the held-out images {fd_recon:.3f}")
  assert first.latent_shape == (7, 7, 4)
  assert mse < FIRST_STAGE_MAX_MSE
  assert fd_trained < fd_untrained
