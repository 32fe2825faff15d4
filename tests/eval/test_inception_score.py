"""The Inception Score reads the Inception logits WITHOUT the fc bias (issue 10, bug 5).

The original IS code (openai/improved-gan `inception_score/model.py`: pool_3 times the
softmax MatMul's weight), torch-fidelity (`logits_unbiased`) and StyleGAN3
(`no_output_bias=True`) drop the bias of the 1008-way classifier; with it, IS values are
not comparable with published ones.
"""

import jax.numpy as jnp
import ml_collections
import numpy as np

from gen_jax.eval import features, inception, metrics
from gen_jax.core import sharding


def test_inception_score_uses_the_logits_without_the_fc_bias(tmp_path):
  rng = np.random.default_rng(0)
  variables = inception.random_variables(0)
  bias = rng.normal(0.0, 3.0, inception.NUM_LOGITS).astype(np.float32)
  variables["params"]["fc"]["bias"] = jnp.asarray(bias)
  # Sharper random predictions, so that IS is well above 1 and the bias can move it.
  variables["params"]["fc"]["kernel"] = 30.0 * variables["params"]["fc"]["kernel"]
  path = tmp_path / "inception.npz"
  inception.save_weights(path, variables)
  cfg = ml_collections.ConfigDict(dict(
      feature_extractor="inception", inception_weights=str(path), inception_sha256="",
      inception_resize="tf1", feature_batch_size=8))
  extractor = features.build_feature_extractor(cfg, (16, 16, 3), sharding.make_mesh(1))
  # Eight flat colours: distinct pool3 features, so the predictions differ between images.
  colours = rng.integers(0, 256, (8, 1, 1, 3), dtype=np.uint8)
  out = extractor(np.broadcast_to(colours, (8, 16, 16, 3)).copy())

  kernel = np.asarray(variables["params"]["fc"]["kernel"], np.float64)
  unbiased = np.asarray(out["pool"], np.float64) @ kernel
  np.testing.assert_allclose(out["logits"], unbiased, rtol=1e-4, atol=1e-4)
  got = metrics.compute_metrics(("is",), {}, out, is_splits=2)
  by_hand = metrics.inception_score(unbiased, splits=2)
  with_bias = metrics.inception_score(unbiased + bias, splits=2)
  print(f"IS without the fc bias {by_hand}, with it {with_bias}, gen_jax {got}")
  np.testing.assert_allclose((got["is"], got["is_std"]), by_hand, rtol=1e-5)
  assert abs(with_bias[0] - by_hand[0]) > 0.05  # the bias matters here
  assert extractor.protocol["is_logits"] == features.INCEPTION_IS_LOGITS
