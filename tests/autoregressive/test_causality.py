"""Causality of every autoregressive network: exact zeros in the input-output Jacobian.

For each output position the gradient with respect to every input at or after it (raster
order for images, and channel order inside a pixel for channel-conditional outputs; time
order for WaveNet) must be exactly 0. Networks without a blind spot must also depend on
every earlier pixel.
"""

import jax
import numpy as np
import pytest

from gen_jax.nets import build_net

H = W = 4

IMAGE_CASES = [
    # (name, channels, channel_conditional, kwargs, no blind spot expected)
    ("pixelcnn", 3, True, dict(hidden=6, num_layers=1, output_hidden=6, first_kernel=3), False),
    ("pixelcnn", 1, False, dict(hidden=6, num_layers=1, output_hidden=6, first_kernel=3), False),
    ("gated_pixelcnn", 3, True,
     dict(hidden=6, num_layers=2, kernel_size=3, output_hidden=6, num_classes=2), False),
    ("gated_pixelcnn", 3, False, dict(hidden=6, num_layers=4, kernel_size=3, output_hidden=6),
     True),
    ("pixelcnn_pp", 3, False, dict(nr_filters=4, nr_resnet=1, num_scales=2, dropout=0.0), True),
    ("pixelcnn_pp", 1, False,
     dict(nr_filters=4, nr_resnet=1, num_scales=2, dropout=0.0, num_classes=2), True),
]


def _jacobian(net, x, labels):
  params = net.init(jax.random.key(0), x, labels)
  return np.asarray(jax.jit(jax.jacrev(lambda x: net.apply(params, x, labels)[0]))(x))


@pytest.mark.parametrize("name,c,cc,kwargs,full", IMAGE_CASES,
                         ids=[f"{n}-C{c}-{'cc' if cc else 'pixel'}" for n, c, cc, *_ in IMAGE_CASES])
def test_image_network_output_ignores_current_and_later_inputs(name, c, cc, kwargs, full):
  net = build_net(name, data_channels=c, num_outputs=3, channel_conditional=cc, **kwargs)
  x = jax.random.uniform(jax.random.key(1), (1, H, W, c), minval=-1.0, maxval=1.0)
  labels = np.array([1]) if kwargs.get("num_classes") else None
  jac = np.abs(_jacobian(net, x, labels))  # [H, W, (C,) P, 1, H, W, C]
  pos = np.arange(H * W)
  if cc:
    g = jac.sum(axis=3).reshape(H * W, c, H * W, c)  # out (p, c) x in (q, c')
    p, co, q, ci = np.ix_(pos, np.arange(c), pos, np.arange(c))
    after = (q > p) | ((q == p) & (ci >= co))
  else:
    g = jac.reshape(H * W, -1, H * W, c).sum(axis=1)  # out p x in (q, c')
    p, q, _ = np.ix_(pos, pos, np.arange(c))
    after = q >= p
  after = np.broadcast_to(after, g.shape)
  assert np.all(g[after] == 0.0), f"{int(np.sum(g[after] != 0))} gradients leak the future"
  assert np.any(g[~after] != 0.0)
  if full:  # no blind spot: every earlier pixel reaches every later output
    per_pixel = g.reshape(H * W, H * W, c).sum(-1)
    earlier = np.arange(H * W)[None, :] < np.arange(H * W)[:, None]
    assert np.all(per_pixel[earlier] != 0.0)


@pytest.mark.parametrize("kernel,initial", [(2, 2), (3, 1)])
def test_wavenet_output_ignores_current_and_later_samples(kernel, initial):
  net = build_net("wavenet", num_outputs=3, dilations=(1, 2, 4), kernel_size=kernel,
                  initial_kernel=initial, residual_channels=4, dilation_channels=4,
                  skip_channels=4, num_classes=2)
  t = 3 * net.receptive_field // 2
  x = jax.random.normal(jax.random.key(1), (1, t, 2))
  jac = np.abs(_jacobian(net, x, np.array([1])))  # [T, P, 1, T, F]
  g = jac.sum(axis=(1, 2, 4))  # out t x in s
  s, u = np.meshgrid(np.arange(t), np.arange(t), indexing="ij")
  assert np.all(g[u >= s] == 0.0)
  # and it sees exactly its receptive field before t
  within = (u < s) & (u >= s - net.receptive_field)
  assert np.all(g[within] != 0.0) and np.all(g[(u < s) & ~within] == 0.0)
