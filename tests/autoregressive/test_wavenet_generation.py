"""The cached (fast WaveNet) generator equals the naive one and the teacher-forced network."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.autoregressive.helpers import small_method


@pytest.mark.parametrize("likelihood,kernel,initial", [("categorical", 2, 2), ("dlm", 3, 3)])
def test_cached_generator_equals_naive_generator(likelihood, kernel, initial):
  method = small_method(
      "wavenet_tones.py", (40, 1), num_classes=3, likelihood=likelihood,
      model=dict(dilations=(1, 2, 4), kernel_size=kernel, initial_kernel=initial))
  assert method.net.receptive_field < 40  # the naive window slides
  state = method.init(jax.random.key(0), None)
  params = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(jax.random.key(1), p.shape),
                        state.params)  # away from the zero-bias init
  rng = jax.random.key(2)
  cached, out_c = jax.jit(lambda p: method.generate(p, rng, 3, cached=True))(params)
  naive, out_n = jax.jit(lambda p: method.generate(p, rng, 3, cached=False))(params)
  np.testing.assert_allclose(out_c, out_n, rtol=1e-4, atol=1e-4)
  np.testing.assert_array_equal(cached, naive)
  assert len(np.unique(np.asarray(cached))) > 5  # real draws, not a constant
  # Teacher forcing: the full network on the generated codes gives the same outputs.
  full = method.apply(params, method.net_input(cached), method.sample_labels(3))
  np.testing.assert_allclose(out_c, full, rtol=1e-4, atol=1e-4)


def test_sample_decodes_codes_to_waveforms():
  method = small_method("wavenet_tones.py", (16, 1), num_classes=4)
  state = method.init(jax.random.key(0), None)
  state = state.replace(ema_params=state.params)
  out = method.sample(state, jax.random.key(1), 4)
  assert out.samples.shape == (4, 16, 1) and out.nfe == 16
  assert float(jnp.max(jnp.abs(out.samples))) <= 1.0
