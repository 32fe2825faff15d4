"""Classifier guidance: the exact classifier of Gaussian class data turns the unconditional
model into the class-conditional one (scale 1), through the real Diffusion.sample path; a
noisy_classifier run is read back from its workdir and checked against the process."""

from __future__ import annotations

import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gen_jax.core.sample import SampleSpec
from gen_jax.core.state import TrainState
from gen_jax.data import DatasetInfo
from gen_jax.diffusion import make_schedule
from gen_jax.diffusion.classifier_guidance import ClassifierGuidance, classifier_guided
from gen_jax.methods import build_method
from gen_jax.methods.diffusion import Diffusion
from gen_jax.methods.pretrained import PretrainedRunError
from gen_jax.train import checkpoint as checkpoint_lib
from gen_jax.train.experiment import write_config
from tests.train.helpers import load_config

MEANS = np.array([[-1.5, 0.0], [1.5, 0.5]], np.float32)  # class y: x0 ~ N(MEANS[y], S^2 I)
S = 0.3
SCHEDULE = make_schedule("cosine", 100)


def _class_logits(x, t):
  """log w_k N(x; alpha mu_k, (alpha^2 S^2 + sigma^2) I) [B, K] on the chain at int t [B]."""
  alpha, sigma = SCHEDULE.marginal_coef(t)
  var = (jnp.square(alpha) * S**2 + jnp.square(sigma))[:, None]
  sq = jnp.sum(jnp.square(x[:, None, :] - alpha[:, None, None] * MEANS[None]), axis=-1)
  return -0.5 * sq / var - jnp.log(var) + jnp.log(0.5)  # D = 2: -D/2 log var


class ExactMixture(nn.Module):
  """The exact eps (or v) of the two-class mixture; `unused` only gives it a parameter."""
  prediction: str = "eps"

  @nn.compact
  def __call__(self, x, t, y=None, *, train=False):
    del y, train
    unused = self.param("unused", nn.initializers.zeros, ())
    t = jnp.round(t).astype(jnp.int32)
    score = jax.grad(lambda z: jnp.sum(jax.nn.logsumexp(_class_logits(z, t), axis=-1)))(x)
    alpha, sigma = (a[:, None] for a in SCHEDULE.marginal_coef(t))
    eps = -sigma * score
    if self.prediction == "v":
      return alpha * eps - sigma * (x - sigma * eps) / alpha + unused
    return eps + unused


def _method(prediction, scale):
  guidance = ClassifierGuidance(
      log_prob=lambda x, t, y: jnp.take_along_axis(
          jax.nn.log_softmax(_class_logits(x, t)), y[:, None], axis=1)[:, 0],
      scale=scale, num_classes=2)
  return Diffusion(net=ExactMixture(prediction), process=SCHEDULE, optimizer=optax.sgd(0.0),
                   example_shape=(2,), prediction=prediction, sampler="ddim",
                   sampler_kwargs={"num_steps": 50}, clip_x0=False,
                   classifier_guidance=guidance)


def _sample(method, labels):
  params = method.net.init(jax.random.key(0), jnp.zeros((1, 2)), jnp.zeros((1,)))["params"]
  state = TrainState.create(params, method.optimizer.init(params))
  fn = jax.jit(lambda s, y: method.sample(s, jax.random.key(1), labels.shape[0],
                                          SampleSpec(labels=y)).samples)
  return np.asarray(fn(state, labels))


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_exact_classifier_at_scale_one_gives_the_class_conditional(prediction):
  """grad log p_t(x) + grad log p(y | x_t) = grad log p_t(x | y): guided DDIM samples of
  class y are N(MEANS[y], S^2 I) (mean within 0.05, std within 10%), for eps- and
  v-networks; without guidance the same labels give the mixture."""
  labels = jnp.arange(1000, dtype=jnp.int32) % 2
  x = _sample(_method(prediction, 1.0), labels)
  for y in (0, 1):
    xy = x[np.asarray(labels) == y]
    np.testing.assert_allclose(xy.mean(0), MEANS[y], atol=0.05)
    np.testing.assert_allclose(xy.std(0), [S, S], rtol=0.1)
  if prediction != "eps":
    return  # the unguided check once
  x0 = _sample(_method(prediction, 0.0), labels)
  for y in (0, 1):
    np.testing.assert_allclose(x0[np.asarray(labels) == y].mean(0), MEANS.mean(0), atol=0.15)


def _save_run(workdir: pathlib.Path, config, state) -> None:
  write_config(config, workdir)
  ckpt = checkpoint_lib.Checkpointer(workdir / "checkpoints", asynchronous=False)
  ckpt.save(1, state)
  ckpt.close()


TOY = DatasetInfo(image_shape=(2,), num_classes=8, num_examples=100)


def test_sampling_config_reads_the_classifier_from_its_workdir(tmp_path):
  """A noisy_classifier run saved in a workdir is the guidance of the diffusion model whose
  config points at it (its log-probabilities are the saved model's), and one trained on
  another process is refused."""
  cconfig = load_config("classifier_guidance/toy_eight_gaussians.py", "smoke")
  classifier = build_method(cconfig, TOY)
  state = jax.jit(lambda k: classifier.init(k, None))(jax.random.key(0))
  state = state.replace(ema_params=jax.tree.map(lambda p: p + 0.1, state.ema_params))
  _save_run(tmp_path / "cls", cconfig, state)

  dconfig = load_config("ddpm/toy_eight_gaussians.py", "smoke")
  dconfig.sample.classifier_guidance.workdir = str(tmp_path / "cls")
  dconfig.sample.classifier_guidance.scale = 2.0
  method = build_method(dconfig, TOY)
  cg = method.classifier_guidance
  assert (cg.scale, cg.num_classes) == (2.0, 8)
  x, t, y = jnp.ones((3, 2)), jnp.array([0, 5, 19]), jnp.array([0, 3, 7])
  want = jax.nn.log_softmax(classifier.logits(state.ema_params, x, t))[jnp.arange(3), y]
  np.testing.assert_allclose(cg.log_prob(x, t, y), want, rtol=1e-6)
  # (Diffusion.sample with a ClassifierGuidance: the exact-classifier test above.)

  dconfig.method.num_timesteps = 40
  with pytest.raises(PretrainedRunError, match="another noise process"):
    build_method(dconfig, TOY)
  dconfig.sample.classifier_guidance.workdir = str(tmp_path / "nothing")
  with pytest.raises(PretrainedRunError, match="no config.json"):
    build_method(dconfig, TOY)


def test_cifar10_noisy_classifier_config_builds_the_image_network():
  """configs/classifier_guidance/cifar10.py (slow smoke run) on the improved-DDPM process:
  logits [B, 10] from the time-conditioned ResNet encoder (shapes only)."""
  c = load_config("classifier_guidance/cifar10.py", "smoke")
  method = build_method(c, DatasetInfo(image_shape=(32, 32, 3), num_classes=10,
                                       num_examples=10))
  assert method.process.num_timesteps == 20  # the improved-DDPM smoke chain
  state = jax.eval_shape(method.init, jax.random.key(0), None)
  logits = jax.eval_shape(lambda p: method.logits(p, jnp.zeros((2, 32, 32, 3)),
                                                  jnp.array([0, 19])), state.params)
  assert logits.shape == (2, 10)


def test_guidance_shifts_eps_and_passes_a_learned_variance_through():
  """eps' = eps - sigma s grad log p(y | x_t) on the first C channels; v_var unchanged."""
  x, t = jnp.array([[0.3, -0.2]]), jnp.array([40])
  denoise = lambda x, t: jnp.concatenate([0.5 * x, jnp.full_like(x, 0.25)], -1)
  w = jnp.array([[2.0, -1.0]])
  guidance = ClassifierGuidance(log_prob=lambda x, t, y: jnp.sum(x * w, -1), scale=3.0,
                                num_classes=2)
  out = classifier_guided(denoise, SCHEDULE, "eps", guidance, jnp.array([1]), channels=2)(x, t)
  sigma = float(SCHEDULE.sqrt_one_minus_alphas_cumprod[40])
  np.testing.assert_allclose(out[:, :2], 0.5 * x - sigma * 3.0 * w, rtol=1e-5)
  np.testing.assert_array_equal(out[:, 2:], 0.25)
