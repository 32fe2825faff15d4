"""NCSN++ / DDPM++ (gen_jax.nets.ncsnpp) and the layers it adds to gen_jax.nets.layers.

Shapes come from `jax.eval_shape` (nothing is compiled); one tiny forward/backward pass
checks the FIR BigGAN path runs and that the Fourier frequencies are frozen. Parameter counts
and outputs against the reference code: test_ncsnpp_reference.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.score_sde import _score_sde
from gen_jax.nets import build_net, layers


def test_fir_resampling_preserves_constants_and_shapes():
  x = jnp.full((2, 8, 8, 3), 1.5)
  down = layers.downsample_2d(x, fir=True)
  up = layers.upsample_2d(x, fir=True)
  assert down.shape == (2, 4, 4, 3) and up.shape == (2, 16, 16, 3)
  # the normalised kernel keeps constants away from the zero-padded border
  np.testing.assert_allclose(down[:, 1:-1, 1:-1], 1.5, rtol=1e-6)
  np.testing.assert_allclose(up[:, 2:-2, 2:-2], 1.5, rtol=1e-6)
  # without FIR: average pooling and nearest neighbour
  r = jax.random.normal(jax.random.PRNGKey(0), (1, 4, 4, 2))
  np.testing.assert_allclose(layers.downsample_2d(layers.upsample_2d(r)), r, rtol=1e-6)


def test_biggan_resnet_block_resamples():
  block = layers.ResnetBlock(out_channels=8, num_groups=4, resample="down", fir=True)
  x, emb = jnp.ones((2, 8, 8, 4)), jnp.ones((2, 16))
  out = jax.eval_shape(lambda: block.init_with_output(jax.random.PRNGKey(0), x, emb,
                                                      train=False)[0])
  assert out.shape == (2, 4, 4, 8)
  up = layers.ResnetBlock(num_groups=4, resample="up")
  out = jax.eval_shape(lambda: up.init_with_output(jax.random.PRNGKey(0), x, emb, train=False)[0])
  assert out.shape == (2, 16, 16, 4)
  with pytest.raises(ValueError, match="resample"):
    layers.ResnetBlock(resample="sideways").init(jax.random.PRNGKey(0), x, emb, train=False)


@pytest.mark.slow  # suite budget: 51 s; NCSN++ trains in score_sde/cifar10.py:smoke and its blocks are
# checked against the reference in test_ncsnpp_reference.py
def test_tiny_ncsnpp_runs_and_fourier_features_are_frozen():
  kw = dict(_score_sde.ncsnpp_model(ch=8, ch_mult=(1, 2), num_res_blocks=1, num_groups=4,
                                    attn_resolutions=(4,)))
  net = build_net(kw.pop("name"), out_channels=1, num_classes=3, **kw)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 1))
  sigma, y = jnp.asarray([0.5, 20.0]), jnp.asarray([0, 3])
  params = net.init(jax.random.PRNGKey(1), x, sigma, y, train=False)["params"]

  def loss(p):
    return jnp.sum(net.apply({"params": p}, x, sigma, y, train=False) ** 2)

  grads = jax.jit(jax.grad(loss))(jax.tree.map(lambda p: p + 0.01, params))
  assert np.all(np.asarray(grads["fourier"]["W"]) == 0)
  assert float(jnp.max(jnp.abs(grads["conv_in"]["kernel"]))) > 0
  with pytest.raises(ValueError, match="embedding_type"):
    build_net("ncsnpp", embedding_type="learned").init(jax.random.PRNGKey(0), x, sigma,
                                                       train=False)
