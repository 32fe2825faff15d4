"""Every config's :smoke variant trains for real: data, init, steps, sampling, eval, checkpoint.

tfds datasets are mocked (`tfds.testing.mock_data`: random images of the real shapes),
so no test ever downloads anything.
"""

import json
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from gen_jax.data import DatasetNotPreparedError
from gen_jax.train import loop
from tests.train.helpers import REPO, load_config, train_smoke_first_stage, write_image_folder

# Smoke runs whose code path another default smoke run or test already covers, and whose
# XLA:CPU compilation costs minutes: they run with --runslow.
#  - sngan's networks run in sngan_projection; wgan_gp's penalty and diffusion_gan's
#    adaptive diffusion are tested in tests/gan (with an 8-devices-equal-1 step);
#  - dcgan's networks run in gan/mnist.py (DCGAN at 28x28);
#  - the CIFAR-10 Glow/RealNVP and classifier configs build the same networks as their
#    MNIST configs, at 32x32;
#  - the Fashion-MNIST configs reuse the MNIST configs with another tfds name.
SLOW_SMOKE_CONFIGS = frozenset({
    "gan/sngan.py", "gan/wgan_gp.py", "gan/diffusion_gan.py", "gan/dcgan.py",
    "flows/glow_cifar10.py", "flows/realnvp_cifar10.py", "classifier/cifar10.py",
    "flows/glow_fashion_mnist.py", "flows/realnvp_fashion_mnist.py",
    "classifier/fashion_mnist.py", "ddpm/fashion_mnist.py",
    # PixelCNN++ on one channel: the CIFAR-10 smoke run covers the network.
    "autoregressive/pixelcnnpp_mnist.py",
    # The CIFAR-10 smoke runs cover these networks; one-channel runs: ddpm/digits.py, and
    # score_sde/mnist.py:smoke is trained end to end by tests/train/test_conditional_sampling.
    "ddpm/mnist.py", "score_sde/mnist.py",
    # The first stage's network at 28x28 runs in latent_diffusion/autoencoder_mnist.py, the
    # conv VAE in vae/mnist.py (the RGB logistic mixture is tested in tests/vae).
    "latent_diffusion/autoencoder_cifar10.py", "vae/cifar10.py",
    # CycleGAN on folders: tests/gan/test_cyclegan.py trains and samples it from the command
    # line; cyclegan/horse2zebra.py:smoke runs the same networks on (mocked) tfds.
    "cyclegan/folders.py",
    # BigGAN's CIFAR-10 networks are its ImageNet smoke networks at 32x32 without
    # attention.
    "gan/biggan_cifar10.py",
    # StyleGAN2: the CIFAR-10 config's smoke model is trained by the (slow) 8-vs-1 device
    # test of tests/gan/test_stylegan2.py.
    "gan/stylegan2_cifar10.py",
    # Improved DDPM: improved_ddpm/digits.py:smoke runs the same method (2C-channel UNet,
    # hybrid loss, learned-variance sampler); CIFAR-10 only widens the UNet.
    "improved_ddpm/cifar10.py",
    # Classifier guidance: classifier_guidance/toy_eight_gaussians.py:smoke trains the
    # noisy_classifier method; the CIFAR-10 one only swaps in the image network, which
    # tests/diffusion/test_classifier_guidance.py builds.
    "classifier_guidance/cifar10.py",
    # Distillation needs a trained teacher's workdir: tests/methods/test_distillation.py
    # trains a teacher smoke run and then runs distillation/toy_eight_gaussians.py:smoke.
    "distillation/toy_eight_gaussians.py", "distillation/cifar10.py",
    # Covered by another default test that trains the same config or networks (the default
    # suite must stay under 15 minutes on 2 cores):
    #  - ddpm/digits.py:smoke is trained and sampled from the command line in tests/test_main;
    #  - latent_diffusion/autoencoder_mnist.py:smoke is trained by tests/vae/test_first_stage;
    #  - cyclegan/horse2zebra.py: the same networks as cyclegan/folders.py (trained from the
    #    command line in tests/gan/test_cyclegan.py); the unpaired tfds source is tested in
    #    tests/data/test_unpaired.py;
    #  - gan/sngan_projection.py: its networks in tests/gan/test_nets.py, its n_dis=5
    #    schedules in tests/gan/test_schedules_and_lazy_r1.py, the gan method's step in
    #    tests/gan/test_gan_method.py and gan/mnist.py:smoke;
    #  - gan/ddgan.py: the DDGAN method runs in gan/ddgan_toy_eight_gaussians.py:smoke, its
    #    CIFAR-10 networks in tests/gan/test_nets.py;
    #  - gan/biggan_imagenet.py: the BigGAN method runs in gan/biggan_toy_eight_gaussians.py,
    #    its image networks' update, standing statistics and trainer in tests/gan/test_biggan;
    #  - edm/cifar10.py: its NCSN++ networks run in score_sde/cifar10.py:smoke, the EDM
    #    preconditioning and samplers through the Diffusion method in
    #    tests/diffusion/test_method_samplers.py.
    "ddpm/digits.py", "latent_diffusion/autoencoder_mnist.py", "cyclegan/horse2zebra.py",
    "gan/sngan_projection.py", "gan/ddgan.py", "gan/biggan_imagenet.py", "edm/cifar10.py",
    # Cascades: cascade/cifar10_8to32.py:smoke runs the super-resolution stage by default;
    # the folder configs' smoke stages are the same tiny UNets on digits at 32x32
    # (tests/methods/test_cascade.py runs folder_16to64's whole cascade, slow).
    "cascade/folder_16to64.py", "cascade/folder_64to256.py",
    # The 25-Gaussian toy DDGAN: its per-step networks are tested in tests/gan/test_nets.py
    # and the config is trained by the (slow) 25-Gaussian coverage test.
    "gan/ddgan_toy_twenty_five_gaussians.py",
    # Toy GANs: their methods train in tests/gan/test_gan_method.py (8-Gaussian coverage
    # of gan/toy_eight_gaussians.py and gan/ddgan_toy_eight_gaussians.py), the gan trainer
    # loop in gan/mnist.py:smoke, BigGAN's in tests/gan/test_biggan.py (standing statistics
    # through the trainer) and StyleGAN2's in gan/stylegan2_folder.py:smoke.
    "gan/toy_eight_gaussians.py", "gan/ddgan_toy_eight_gaussians.py",
    "gan/biggan_toy_eight_gaussians.py", "gan/stylegan2_toy_eight_gaussians.py",
    # Trained by another default test: flows/glow_digits.py (tests/flows/test_flow_method.py
    # and test_actnorm.py), score_sde/toy2d.py (tests/methods/test_score_sde.py); the same
    # networks as a default smoke run on another source: wavenet_audio_folder (wavenet_tones;
    # the audio folder source in tests/autoregressive/test_audio.py), classifier/mnist
    # (classifier/digits; trained on real MNIST in tests/eval/test_classifier.py),
    # flows/maf_checkerboard (flows/maf_two_moons).
    "flows/glow_digits.py", "score_sde/toy2d.py", "autoregressive/wavenet_audio_folder.py",
    "classifier/mnist.py", "flows/maf_checkerboard.py",
    # Families whose pieces and wiring other default tests check, each run costing 50-90 s:
    # cascade/cifar10_8to32 (tests/methods/test_cascade.py runs the pipeline with a small net,
    # tests/diffusion/test_super_resolution.py the conditioning), improved_ddpm/digits (the
    # hybrid loss, learned variances and their sampler in tests/diffusion; the trainer path is
    # DDPM's), latent_diffusion/mnist (tests/methods/test_latent_diffusion.py trains a first
    # stage and runs the second stage's step, checkpoint and sampling), gan/stylegan2_folder
    # (tests/gan/test_stylegan2.py: modulated convolutions, regularisers, lazy phases,
    # truncation; ADA in test_ada.py).
    "cascade/cifar10_8to32.py", "improved_ddpm/digits.py", "latent_diffusion/mnist.py",
    "gan/stylegan2_folder.py",
    # Latent diffusion: the MNIST second stage (with its smoke first stage) runs by default;
    # the CIFAR-10 one builds the same method with another network size.
    "latent_diffusion/cifar10.py",
})

CONFIGS = [
    pytest.param(name, marks=pytest.mark.slow) if name in SLOW_SMOKE_CONFIGS else name
    for name in sorted(str(p.relative_to(REPO / "configs"))
                       for p in (REPO / "configs").glob("*/*.py") if not p.name.startswith("_"))
]


@pytest.mark.parametrize("relpath", CONFIGS)
def test_smoke_config_runs_end_to_end(relpath, tmp_path):
  config = load_config(relpath, "smoke")
  if config.data.source == "unpaired_folders":
    for field in ("path_a", "path_b", "eval_path_a", "eval_path_b"):
      config.data[field] = write_image_folder(tmp_path / field, 8, seed=len(field))
  if config.data.source in ("tfds", "unpaired_tfds"):
    config.data.data_dir = str(tmp_path / "tfds")
    with tfds.testing.mock_data(num_examples=16, policy=tfds.testing.MockPolicy.USE_CODE):
      train_smoke_first_stage(config, tmp_path)  # latent diffusion: its first stage
      state = loop.train_and_evaluate(config, tmp_path / "run")
  else:
    train_smoke_first_stage(config, tmp_path)
    state = loop.train_and_evaluate(config, tmp_path / "run")
  steps = config.num_train_steps
  assert int(state.step) == steps
  assert (tmp_path / "run" / "checkpoints" / str(steps)).is_dir()
  assert (tmp_path / "run" / "samples" / f"step_{steps:08d}.png").is_file()
  record = json.loads((tmp_path / "run" / "eval" / f"{steps}.json").read_text())
  assert all(np.isfinite(v) for v in record["results"].values())
  assert json.loads((tmp_path / "run" / "config.json").read_text())["method"]["name"]


def test_missing_tfds_dataset_fails_fast_with_instructions(tmp_path):
  config = load_config("ddpm/cifar10.py", "smoke")
  config.data.data_dir = str(tmp_path / "empty")
  start = time.monotonic()
  with pytest.raises(DatasetNotPreparedError, match="cifar10") as err:
    loop.train_and_evaluate(config, tmp_path / "run")
  assert time.monotonic() - start < 30
  assert "array_record" in str(err.value) and "data.download" in str(err.value)
