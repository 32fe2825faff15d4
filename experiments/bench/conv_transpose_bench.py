"""Transposed convolutions on this backend: flax's `nn.ConvTranspose` against
`gen_jax.nets.conv_transpose.ConvTranspose`, and where a DCGAN train step spends its time.

    python experiments/bench/conv_transpose_bench.py \
        --markdown_out=experiments/bench/conv_transpose_bench_cpu.md

Three tables, medians of --repeats jitted calls after one warm-up, in ms:

1. Layers: forward, input gradient and kernel gradient alone (each a jitted `jax.vjp`
   for one argument with a fixed cotangent, so XLA drops what that gradient does not need)
   of the DCGAN generators' 4x4 stride-2 layers (MNIST: configs/gan/mnist.py, CIFAR-10:
   configs/gan/dcgan.py) with flax's layer ("old") and gen_jax's ("new"); and, to look for
   the same pathology elsewhere, the discriminator's 4x4 stride-2 `nn.Conv` (whose input
   gradient is a convolution of a dilated cotangent, the same kind of op).
2. The DCGAN generators: forward, and forward + backward (gradient of a sum of squares
   with respect to every parameter), old and new.
3. One train step of configs/gan/mnist.py (batch 64) cut into parts: G forward; D forward;
   the D loss's value and gradient (G forward included, as in the step); the G loss's
   value and gradient; the two Adam updates; and the whole jitted step of the trainer
   (EMA included). Each part is jitted alone, so the parts need not add up exactly.

gen_jax's default XLA flags are applied first, as `gen_jax.main` does
(GEN_JAX_XLA_CPU_DEFAULTS=0 turns them off). The compilation cache is off.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_REPO = Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:
  sys.path.insert(0, str(_REPO))

from absl import app, flags  # noqa: E402

_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed calls per measurement.")
_BATCH = flags.DEFINE_integer("batch", 64, "Batch of every measurement.")
_PARTS = flags.DEFINE_list("parts", ["layers", "generators", "step"], "Tables to produce.")
_MARKDOWN_OUT = flags.DEFINE_string("markdown_out", None, "Also write the tables here.")

# (name, input H = W, input channels, output channels)
_DECONVS = [("MNIST G deconv_0", 7, 256, 128), ("MNIST G deconv_1", 14, 128, 64),
            ("CIFAR-10 G deconv_0", 4, 512, 256), ("CIFAR-10 G deconv_1", 8, 256, 128),
            ("CIFAR-10 G deconv_2", 16, 128, 64)]
_DCONVS = [("MNIST D conv_1 (4x4 /2)", 28, 32, 32), ("MNIST D conv_5 (4x4 /2)", 7, 128, 128)]


def _median_ms(fn, *args) -> float:
  import jax  # pylint: disable=g-import-not-at-top
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(_REPEATS.value):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def _layer_times(layer, x) -> tuple[float, float, float]:
  """(forward, input gradient, kernel gradient) ms of a flax layer at input x."""
  import jax  # pylint: disable=g-import-not-at-top
  variables = layer.init(jax.random.key(0), x)
  y = layer.apply(variables, x)
  g = jax.random.normal(jax.random.key(1), y.shape)
  forward = jax.jit(layer.apply)
  d_x = jax.jit(lambda v, x, g: jax.vjp(lambda x: layer.apply(v, x), x)[1](g))
  d_k = jax.jit(lambda v, x, g: jax.vjp(lambda v: layer.apply(v, x), v)[1](g))
  return _median_ms(forward, variables, x), _median_ms(d_x, variables, x, g), _median_ms(
      d_k, variables, x, g)


def layers_table() -> list[str]:
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from gen_jax.nets.conv_transpose import ConvTranspose  # pylint: disable=g-import-not-at-top
  b = _BATCH.value
  lines = ["| layer (batch %d) | forward old / new | input grad old / new | "
           "kernel grad old / new | kernel grad speed-up |" % b,
           "| --- | ---: | ---: | ---: | ---: |"]
  for name, size, c_in, c_out in _DECONVS:
    x = jax.random.normal(jax.random.key(2), (b, size, size, c_in))
    old = _layer_times(nn.ConvTranspose(c_out, (4, 4), (2, 2), "SAME"), x)
    new = _layer_times(ConvTranspose(c_out, (4, 4), (2, 2), "SAME"), x)
    lines.append(f"| {name} {size}x{size}x{c_in} -> {c_out} | {old[0]:.0f} / {new[0]:.0f} | "
                 f"{old[1]:.0f} / {new[1]:.0f} | {old[2]:.0f} / {new[2]:.0f} | "
                 f"{old[2] / new[2]:.1f}x |")
    print(lines[-1], flush=True)
  for name, size, c_in, c_out in _DCONVS:
    x = jax.random.normal(jax.random.key(2), (b, size, size, c_in))
    f, dx, dk = _layer_times(nn.Conv(c_out, (4, 4), (2, 2), "SAME"), x)
    lines.append(f"| {name} {size}x{size}x{c_in} -> {c_out} (nn.Conv) | {f:.0f} | {dx:.0f} | "
                 f"{dk:.0f} | |")
    print(lines[-1], flush=True)
  return lines


def _generator(config_module, conv_transpose):
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  from gen_jax.nets.gan import DCGANGenerator  # pylint: disable=g-import-not-at-top
  c = config_module.get_config()
  shape = (28, 28, 1) if c.data.name == "mnist" else (32, 32, 3)
  with mock.patch.object(nn, "ConvTranspose", conv_transpose):
    return DCGANGenerator(out_shape=shape, ch=c.model.generator.ch), c.method.z_dim


def generators_table() -> list[str]:
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from configs.gan import dcgan, mnist  # pylint: disable=g-import-not-at-top
  from gen_jax.nets.conv_transpose import ConvTranspose  # pylint: disable=g-import-not-at-top
  lines = [f"| generator (batch {_BATCH.value}) | forward old / new | forward + backward "
           "old / new | speed-up of forward + backward |", "| --- | ---: | ---: | ---: |"]
  for name, cfg in [("configs/gan/mnist.py", mnist), ("configs/gan/dcgan.py", dcgan)]:
    row = []
    for conv in (nn.ConvTranspose, ConvTranspose):
      with mock.patch.object(nn, "ConvTranspose", conv):  # patched while jax traces
        gen, z_dim = _generator(cfg, conv)
        z = jax.random.normal(jax.random.key(0), (_BATCH.value, z_dim))
        variables = jax.jit(lambda k: gen.init(k, z, train=False))(jax.random.key(1))
        fwd = jax.jit(lambda v, z: gen.apply(v, z, train=True, mutable=["batch_stats"])[0])

        def loss(p, v, z):
          out, _ = gen.apply({**v, "params": p}, z, train=True, mutable=["batch_stats"])
          return jnp.sum(out ** 2)

        grad = jax.jit(jax.grad(loss))
        row += [_median_ms(fwd, variables, z),
                _median_ms(grad, variables["params"], variables, z)]
    lines.append(f"| {name} | {row[0]:.0f} / {row[2]:.0f} | {row[1]:.0f} / {row[3]:.0f} | "
                 f"{row[1] / row[3]:.1f}x |")
    print(lines[-1], flush=True)
  return lines


def step_table() -> list[str]:
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from configs.gan import mnist  # pylint: disable=g-import-not-at-top
  from experiments.bench.vs_pytorch import jax_dcgan  # pylint: disable=g-import-not-at-top
  from gen_jax.data import DatasetInfo  # pylint: disable=g-import-not-at-top
  from gen_jax.gan.losses import GAN_LOSSES  # pylint: disable=g-import-not-at-top
  from gen_jax.methods.base import build_method  # pylint: disable=g-import-not-at-top
  from gen_jax.nets.conv_transpose import ConvTranspose  # pylint: disable=g-import-not-at-top

  b = _BATCH.value
  parts = {}
  for label, conv in [("old", nn.ConvTranspose), ("new", ConvTranspose)]:
    with mock.patch.object(nn, "ConvTranspose", conv):
      c = mnist.get_config()
      method = build_method(c, DatasetInfo((28, 28, 1), 10, 60_000))
      real = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (b, 28, 28, 1)), jnp.float32)
      state = jax.jit(method.init)(jax.random.key(0), {"image": real})
      p, ms = state.params, state.model_state
      z, _ = method.latents(jax.random.key(1), b)
      loss = GAN_LOSSES.get(method.loss)

      def g_fwd(gp):
        return method.generate(gp, ms["generator"], z, None, train=True)[0]

      def d_fwd(dp, x):
        return method.discriminate(dp, ms["discriminator"], x, None, None, train=True)[0]

      def d_loss(dp, gp):
        fake = jax.lax.stop_gradient(g_fwd(gp))
        return loss.discriminator(d_fwd(dp, real), d_fwd(dp, fake))

      def g_loss(gp, dp):
        return loss.generator(d_fwd(dp, g_fwd(gp)))

      d_grads = jax.grad(d_loss)(p["discriminator"], p["generator"])
      g_grads = jax.grad(g_loss)(p["generator"], p["discriminator"])
      adam = jax.jit(lambda o, g, params: [opt.update(gr, s, pr) for opt, s, gr, pr in zip(
          (method.optimizer_d, method.optimizer_g), o, g, params)])
      opt_args = ((state.opt_state["discriminator"], state.opt_state["generator"]),
                  (d_grads, g_grads), (p["discriminator"], p["generator"]))
      parts[label] = {
          "G forward": _median_ms(jax.jit(g_fwd), p["generator"]),
          "D forward (one batch)": _median_ms(jax.jit(d_fwd), p["discriminator"], real),
          "D loss value and gradient": _median_ms(jax.jit(jax.value_and_grad(d_loss)),
                                                  p["discriminator"], p["generator"]),
          "G loss value and gradient": _median_ms(jax.jit(jax.value_and_grad(g_loss)),
                                                  p["generator"], p["discriminator"]),
          "Adam updates (D and G)": _median_ms(adam, *opt_args),
      }
      step = jax_dcgan(b, None if label == "old" else ConvTranspose)
      parts[label]["whole train step (trainer)"] = _median_ms(step)
      print(label, parts[label], flush=True)
  lines = [f"| configs/gan/mnist.py step part (batch {b}) | old ms | new ms |",
           "| --- | ---: | ---: |"]
  lines += [f"| {k} | {parts['old'][k]:.0f} | {parts['new'][k]:.0f} |" for k in parts["old"]]
  return lines


def main(argv):
  del argv
  from gen_jax import xla_flags  # pylint: disable=g-import-not-at-top
  xla_flags.apply_defaults()
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_enable_compilation_cache", False)
  tables = {"layers": layers_table, "generators": generators_table, "step": step_table}
  out = [f"jax {jax.__version__}, {jax.devices()[0].device_kind}, XLA_FLAGS="
         f"{os.environ.get('XLA_FLAGS', '')!r}, median of {_REPEATS.value}, ms", ""]
  for part in _PARTS.value:
    out += tables[part]() + [""]
  load = os.getloadavg()
  out.append(f"load average at the end: {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}")
  text = "\n".join(out)
  print(text)
  if _MARKDOWN_OUT.value:
    with open(_MARKDOWN_OUT.value, "a") as f:
      f.write(text + "\n\n")


if __name__ == "__main__":
  app.run(main)
