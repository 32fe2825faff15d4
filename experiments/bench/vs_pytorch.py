"""gen_jax against PyTorch on the same models, timed side by side in one process.

    pip install -e '.[bench]'          # torch==2.13.0 (CPU build) and diffusers==0.42.1
    python experiments/bench/vs_pytorch.py --markdown_out=experiments/bench/vs_pytorch_cpu.md
    GEN_JAX_XLA_CPU_DEFAULTS=0 python experiments/bench/vs_pytorch.py   # jax's plain XLA flags

Models:
* DDPM CIFAR-10 UNet (configs/ddpm/cifar10.py, 35,746,307 parameters) against diffusers'
  `UNet2DModel` with the same layout: block_out_channels (128, 256, 256, 256),
  layers_per_block 2, down (plain, attention, plain, plain), up (plain, plain, attention,
  plain), dropout 0.1, one attention head (as gen_jax; diffusers' default of 8-channel heads
  is ~10x slower on CPU). The parameter counts are checked equal.
  Timed: a train step (batch 8: random t, noised input, epsilon MSE, backward, Adam 2e-4,
  dropout on) and a no-grad forward (batch 64, dropout off). Both sides run the same
  minimal step (no EMA, no clipping), so only the frameworks differ.
* DCGAN MNIST (configs/gan/mnist.py): gen_jax's own train step (the trainer's
  `make_train_step`: one D step and one G step on batch 64, non-saturating loss, Adam 2e-4
  betas (0.5, 0.999), EMA of G) with `flax.linen.ConvTranspose` ("old") and with
  `gen_jax.nets.conv_transpose.ConvTranspose` ("new"), against a PyTorch twin of the same
  networks (same layer shapes, SAME paddings, batch norms, leaky ReLU 0.1), losses,
  optimisers and EMA.

Protocol: `--warmup` untimed calls, then `--repeats` rounds; each round times one call of
every contestant in turn (interleaved, so that other load on the machine hits all alike);
the table gives medians. Both frameworks get `--threads` threads (torch.set_num_threads;
XLA's CPU client sizes its pool from the cores it may use, which this script pins with
os.sched_setaffinity when the machine has more). With --device=cuda both run on the GPU
(torch synchronised after each call, TF32 allowed on both sides as jax's default precision
does) and --precisions=fp32,bf16 adds bf16 rows (gen_jax's `config.precision` against
torch.autocast(bfloat16)); --torch_compile adds torch.compile to the train-step row:

    python experiments/bench/vs_pytorch.py --device=cuda --precisions=fp32,bf16 \
        --train_batch=128 --forward_batch=256 --torch_compile

gen_jax runs with its default XLA flags
(`gen_jax.xla_flags.apply_defaults`, as `gen_jax.main` does); GEN_JAX_XLA_CPU_DEFAULTS=0
turns them off. Ratios > 1 mean gen_jax is faster.
"""

from __future__ import annotations

import contextlib
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

_PARTS = flags.DEFINE_list("parts", ["unet", "dcgan"], "What to compare: unet, dcgan.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed rounds (medians are reported).")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed calls of each contestant first.")
_THREADS = flags.DEFINE_integer("threads", 2, "CPU threads for each framework.")
_TRAIN_BATCH = flags.DEFINE_integer("train_batch", 8, "UNet train-step batch.")
_FORWARD_BATCH = flags.DEFINE_integer("forward_batch", 64, "UNet no-grad forward batch.")
_GAN_BATCH = flags.DEFINE_integer("gan_batch", 64, "DCGAN batch (one D and one G step).")
_DCGAN_OLD = flags.DEFINE_bool("dcgan_old", True,
                                "Also time the DCGAN step with flax's ConvTranspose (slow).")
_MARKDOWN_OUT = flags.DEFINE_string("markdown_out", None, "Also append the table to this file.")
_DEVICE = flags.DEFINE_enum("device", "cpu", ["cpu", "cuda"],
                            "Where both frameworks run (cuda: jax's GPU backend and torch's).")
_PRECISIONS = flags.DEFINE_list(
    "precisions", ["fp32"], "UNet rows to time: fp32, and bf16 (gen_jax's config.precision "
    "against torch.autocast(bfloat16); parameters and Adam state stay float32 on both sides).")
_TORCH_COMPILE = flags.DEFINE_bool("torch_compile", False,
                                   "Also time the UNet train step under torch.compile.")

_INSTALL = ("vs_pytorch.py needs torch and diffusers: pip install -e '.[bench]' "
            "(torch==2.13.0 CPU build, diffusers==0.42.1), best in a separate virtualenv.")
UNET_PARAMS = 35_746_307
T = 1000


def _alphas_cumprod():
  import numpy as np  # pylint: disable=g-import-not-at-top
  return np.cumprod(1.0 - np.linspace(1e-4, 0.02, T)).astype(np.float32)


def interleaved(contestants: dict, repeats: int, warmup: int) -> dict[str, float]:
  """Median seconds of each callable (each must block until its result is ready)."""
  for fn in contestants.values():
    for _ in range(warmup):
      fn()
  times = {name: [] for name in contestants}
  for _ in range(repeats):
    for name, fn in contestants.items():
      start = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - start)
  return {name: statistics.median(ts) for name, ts in times.items()}


# ------------------------------------------------------------------------------ UNet


def jax_unet(train_batch: int, forward_batch: int, precision: str = "fp32"):
  """(train step, no-grad forward, parameter count) of gen_jax's DDPM CIFAR-10 UNet."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from configs.ddpm import cifar10  # pylint: disable=g-import-not-at-top
  from gen_jax.core.precision import dtype_of  # pylint: disable=g-import-not-at-top
  from gen_jax.nets import build_net  # pylint: disable=g-import-not-at-top

  model_cfg = cifar10.get_config().model.to_dict()
  model = build_net(model_cfg.pop("name"), dtype=dtype_of(precision), **model_cfg)
  x = jnp.zeros((train_batch, 32, 32, 3))
  params = jax.jit(lambda k: model.init(k, x, jnp.zeros((train_batch,)), train=False))(
      jax.random.key(0))["params"]
  count = sum(p.size for p in jax.tree.leaves(params))
  opt = optax.adam(2e-4)
  abar = jnp.asarray(_alphas_cumprod())

  def train_step(params, opt_state, x0, key):
    k_t, k_eps, k_drop = jax.random.split(key, 3)
    t = jax.random.randint(k_t, (x0.shape[0],), 0, T)
    eps = jax.random.normal(k_eps, x0.shape)
    a = abar[t][:, None, None, None]
    x_t = jnp.sqrt(a) * x0 + jnp.sqrt(1 - a) * eps

    def loss_fn(p):
      out = model.apply({"params": p}, x_t, t.astype(jnp.float32), train=True,
                        rngs={"dropout": k_drop})
      return jnp.mean((out - eps) ** 2)

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  step = jax.jit(train_step, donate_argnums=(0, 1))
  forward = jax.jit(lambda p, x, t: model.apply({"params": p}, x, t, train=False))
  state = {"params": params, "opt": opt.init(params), "i": 0}
  x0 = jax.random.uniform(jax.random.key(1), (train_batch, 32, 32, 3), minval=-1, maxval=1)
  xf = jax.random.normal(jax.random.key(2), (forward_batch, 32, 32, 3))
  tf = jnp.full((forward_batch,), 500.0)

  def run_step():
    state["i"] += 1
    state["params"], state["opt"], loss = step(state["params"], state["opt"], x0,
                                               jax.random.key(state["i"]))
    jax.block_until_ready(loss)

  return run_step, lambda: jax.block_until_ready(forward(state["params"], xf, tf)), count


def torch_device():
  """(torch device, a function that waits for its queued work)."""
  import torch  # pylint: disable=g-import-not-at-top
  if _DEVICE.value == "cuda":
    return torch.device("cuda"), torch.cuda.synchronize
  return torch.device("cpu"), lambda: None


def torch_unet(train_batch: int, forward_batch: int, precision: str = "fp32",
               compile_model: bool = False):
  """(train step, no-grad forward, parameter count) of the same UNet in diffusers.

  precision "bf16" runs the forward passes under torch.autocast(bfloat16) (parameters and
  Adam state stay float32, as in gen_jax); compile_model wraps the model in torch.compile.
  """
  import contextlib as ctx  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from diffusers import UNet2DModel  # pylint: disable=g-import-not-at-top

  dev, sync = torch_device()
  autocast = ((lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if precision == "bf16"
              else ctx.nullcontext)
  model = UNet2DModel(
      sample_size=32, in_channels=3, out_channels=3, block_out_channels=(128, 256, 256, 256),
      layers_per_block=2, down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D",
                                            "DownBlock2D"),
      up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
      dropout=0.1, attention_head_dim=256, norm_num_groups=32).to(dev)
  count = sum(p.numel() for p in model.parameters())
  opt = torch.optim.Adam(model.parameters(), lr=2e-4)
  net = torch.compile(model) if compile_model else model
  abar = torch.from_numpy(_alphas_cumprod()).to(dev)
  x0 = torch.rand(train_batch, 3, 32, 32, device=dev) * 2 - 1
  xf = torch.randn(forward_batch, 3, 32, 32, device=dev)
  tf = torch.full((forward_batch,), 500, dtype=torch.long, device=dev)

  def run_step():
    model.train()
    t = torch.randint(0, T, (train_batch,), device=dev)
    eps = torch.randn_like(x0)
    a = abar[t].view(-1, 1, 1, 1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    with autocast():
      out = net(x_t, t).sample
    loss = torch.nn.functional.mse_loss(out.float(), eps)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sync()

  def run_forward():
    model.eval()
    with torch.no_grad(), autocast():
      net(xf, tf)
    sync()

  return run_step, run_forward, count


def compare_unet(precision: str) -> list[str]:
  j_step, j_fwd, j_count = jax_unet(_TRAIN_BATCH.value, _FORWARD_BATCH.value, precision)
  t_step, t_fwd, t_count = torch_unet(_TRAIN_BATCH.value, _FORWARD_BATCH.value, precision)
  if j_count != UNET_PARAMS or t_count != UNET_PARAMS:
    raise AssertionError(f"UNet parameter counts: gen_jax {j_count:,}, diffusers {t_count:,}; "
                         f"both should be {UNET_PARAMS:,}.")
  steps = {"jax": j_step, "torch": t_step}
  if _TORCH_COMPILE.value:
    compiled = torch_unet(_TRAIN_BATCH.value, _FORWARD_BATCH.value, precision,
                          compile_model=True)[0]
    try:
      compiled()  # compiles; a failure leaves the eager rows standing
      steps["torch.compile"] = compiled
    except Exception as e:  # pylint: disable=broad-except
      print(f"torch.compile failed, row skipped: {type(e).__name__}: {e}", flush=True)
  step = interleaved(steps, _REPEATS.value, _WARMUP.value)
  fwd = interleaved({"jax": j_fwd, "torch": t_fwd}, _REPEATS.value, _WARMUP.value)
  rows = []
  for what, batch, s in [(f"UNet train step, batch {_TRAIN_BATCH.value}", _TRAIN_BATCH.value,
                          step),
                         (f"UNet no-grad forward, batch {_FORWARD_BATCH.value}",
                          _FORWARD_BATCH.value, fwd)]:
    rows.append(f"| {what}, {precision} (images/s) | {batch / s['jax']:.2f} | | "
                f"{batch / s['torch']:.2f} | {s['torch'] / s['jax']:.2f} | |")
    if "torch.compile" in s:
      rows.append(f"| {what}, {precision}, against torch.compile (images/s) | "
                  f"{batch / s['jax']:.2f} | | {batch / s['torch.compile']:.2f} | "
                  f"{s['torch.compile'] / s['jax']:.2f} | |")
  return rows


# ------------------------------------------------------------------------------ DCGAN


def jax_dcgan(batch: int, conv_transpose=None):
  """gen_jax's trainer step for configs/gan/mnist.py; conv_transpose replaces
  flax.linen.ConvTranspose in the networks when given."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from configs.gan import mnist  # pylint: disable=g-import-not-at-top
  from gen_jax.data import DatasetInfo  # pylint: disable=g-import-not-at-top
  from gen_jax.methods.base import build_method  # pylint: disable=g-import-not-at-top
  from gen_jax.core import sharding as sharding_lib  # pylint: disable=g-import-not-at-top
  from gen_jax.train import step as step_lib  # pylint: disable=g-import-not-at-top

  patch = (mock.patch.object(nn, "ConvTranspose", conv_transpose) if conv_transpose
           else contextlib.nullcontext())
  with patch:  # the networks are traced (and so built) during init and lowering
    c = mnist.get_config()
    c.unlock()
    c.batch_size = batch
    method = build_method(c, DatasetInfo((28, 28, 1), 10, 60_000))
    mesh = sharding_lib.make_mesh(1)
    rng = np.random.default_rng(0)
    data = sharding_lib.make_global_batch(
        {"image": rng.uniform(-1, 1, (batch, 28, 28, 1)).astype(np.float32),
         "label": rng.integers(0, 10, (batch,)).astype(np.int32)}, mesh)
    state = jax.jit(method.init, out_shardings=sharding_lib.replicated(mesh))(
        jax.random.key(0), data)
    names = step_lib.metric_names(method, state, data, jax.random.key(1))
    collection = step_lib.metrics_collection(names)
    train_step = step_lib.make_train_step(method, collection, mesh, c.ema.decay, c.ema.warmup)
    acc = step_lib.empty_like_collection(collection, mesh)
    compiled = train_step.lower(state, data, jax.random.key(1), acc).compile()
  box = {"state": state, "acc": acc, "i": 0}

  def run_step():
    box["i"] += 1
    box["state"], box["acc"], metrics, _ = compiled(box["state"], data,
                                                    jax.random.key(box["i"]), box["acc"])
    jax.block_until_ready(metrics)

  return run_step


def torch_dcgan(batch: int):
  """One D and one G step of the PyTorch twin of configs/gan/mnist.py's DCGAN."""
  import copy  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top

  z_dim, g_ch, d_ch = 64, 256, 32

  class Generator(nn.Module):
    """Dense 7x7x256, BN, ReLU, (ConvT 4x4/2, BN, ReLU) x 2 -> 28x28x64, conv3x3, tanh."""

    def __init__(self):
      super().__init__()
      self.linear = nn.Linear(z_dim, 7 * 7 * g_ch)
      self.bn0 = nn.BatchNorm2d(g_ch, momentum=0.1, eps=1e-5)
      self.deconv0 = nn.ConvTranspose2d(g_ch, g_ch // 2, 4, 2, padding=1)  # 7 -> 14 (SAME)
      self.bn1 = nn.BatchNorm2d(g_ch // 2)
      self.deconv1 = nn.ConvTranspose2d(g_ch // 2, g_ch // 4, 4, 2, padding=1)  # 14 -> 28
      self.bn2 = nn.BatchNorm2d(g_ch // 4)
      self.conv_out = nn.Conv2d(g_ch // 4, 1, 3, padding=1)

    def forward(self, z):
      h = F.relu(self.bn0(self.linear(z).view(-1, g_ch, 7, 7)))
      h = F.relu(self.bn1(self.deconv0(h)))
      h = F.relu(self.bn2(self.deconv1(h)))
      return torch.tanh(self.conv_out(h))

  class Discriminator(nn.Module):
    """The "standard CNN" with batch norm: SAME paddings as flax (28 -> 14 -> 7 -> 4)."""

    def __init__(self):
      super().__init__()
      specs = [(d_ch, 3, 1), (d_ch, 4, 2), (2 * d_ch, 3, 1), (2 * d_ch, 4, 2),
               (4 * d_ch, 3, 1), (4 * d_ch, 4, 2), (8 * d_ch, 3, 1)]
      layers, c_in, size = [], 1, 28
      for i, (c, k, s) in enumerate(specs):
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)  # TensorFlow/flax SAME padding
        layers.append(nn.ZeroPad2d((total // 2, total - total // 2) * 2))  # l, r, t, b
        layers.append(nn.Conv2d(c_in, c, k, s))
        if i > 0:
          layers.append(nn.BatchNorm2d(c))
        layers.append(nn.LeakyReLU(0.1))
        c_in, size = c, out
      self.body = nn.Sequential(*layers)
      self.linear = nn.Linear(c_in * size * size, 1)

    def forward(self, x):
      return self.linear(self.body(x).flatten(1))[:, 0]

  dev, sync = torch_device()
  g, d = Generator().to(dev), Discriminator().to(dev)
  ema = copy.deepcopy(g).requires_grad_(False)
  opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
  opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
  real = torch.rand(batch, 1, 28, 28, device=dev) * 2 - 1

  def run_step():
    g.train()
    d.train()
    with torch.no_grad():
      fake = g(torch.randn(batch, z_dim, device=dev))
    d_loss = F.softplus(-d(real)).mean() + F.softplus(d(fake)).mean()
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    d.requires_grad_(False)
    g_loss = F.softplus(-d(g(torch.randn(batch, z_dim, device=dev)))).mean()
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    d.requires_grad_(True)
    with torch.no_grad():
      for e, p in zip(ema.parameters(), g.parameters()):
        e.lerp_(p, 1 - 0.999)
    sync()

  return run_step


def compare_dcgan() -> list[str]:
  from gen_jax.nets.conv_transpose import ConvTranspose  # pylint: disable=g-import-not-at-top
  contestants = {"new": jax_dcgan(_GAN_BATCH.value, ConvTranspose),
                 "torch": torch_dcgan(_GAN_BATCH.value)}
  if _DCGAN_OLD.value:
    contestants["old"] = jax_dcgan(_GAN_BATCH.value)
  s = interleaved(contestants, _REPEATS.value, _WARMUP.value)
  old = (f"{1 / s['old']:.3f} | ", f"{s['torch'] / s['old']:.3f}") if "old" in s else ("| ", "")
  return [f"| DCGAN MNIST train step, batch {_GAN_BATCH.value} (steps/s) | {1 / s['new']:.3f} | "
          f"{old[0]}{1 / s['torch']:.2f} | {s['torch'] / s['new']:.3f} | {old[1]} |"]


def main(argv):
  del argv
  try:
    import diffusers  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    sys.exit(_INSTALL)
  from gen_jax import xla_flags  # pylint: disable=g-import-not-at-top
  applied = xla_flags.apply_defaults()
  if _DEVICE.value == "cuda":
    # jax's default float32 matrix products and convolutions on these GPUs use TF32; torch's
    # default keeps TF32 for convolutions only. Both use TF32 here.
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
  else:
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > _THREADS.value:
      os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:_THREADS.value])
    torch.set_num_threads(_THREADS.value)
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_enable_compilation_cache", False)

  rows = []
  compares = [("unet", lambda p=p: compare_unet(p)) for p in _PRECISIONS.value]
  for part, compare in compares + [("dcgan", compare_dcgan)]:
    if part in _PARTS.value:
      rows += compare()
      print("\n".join(rows), flush=True)  # progress: the full table comes at the end
  load = os.getloadavg()
  lines = [
      f"jax {jax.__version__} ({jax.devices()[0].device_kind}), torch {torch.__version__}, "
      f"{_DEVICE.value}, " + (f"{_THREADS.value} threads each; " if _DEVICE.value == "cpu"
                              else "TF32 allowed on both; ") + f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r} "
      f"({'gen_jax defaults applied' if applied else 'gen_jax defaults not applied'}); "
      f"median of {_REPEATS.value} interleaved rounds after {_WARMUP.value} warm-up calls; "
      f"load average at the end {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}",
      "",
      "| measure | gen_jax | gen_jax, flax ConvTranspose | PyTorch | gen_jax / PyTorch | "
      "flax ConvTranspose / PyTorch |",
      "| --- | ---: | ---: | ---: | ---: | ---: |",
      *rows]
  table = "\n".join(lines)
  print(table)
  if _MARKDOWN_OUT.value:
    with open(_MARKDOWN_OUT.value, "a") as f:
      f.write(table + "\n\n")


if __name__ == "__main__":
  app.run(main)
