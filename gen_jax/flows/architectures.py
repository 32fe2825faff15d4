"""Flow architectures registered by name: `build_flow("glow", **config.model)`.

  glow     Kingma & Dhariwal 2018: L levels of [squeeze, K x (actnorm, invertible 1x1 conv,
           affine coupling), split with a learned prior]; a learned top prior.
  realnvp  Dinh et al. 2017: per scale 3 checkerboard couplings, squeeze, 3 channel
           couplings, factor out half (standard normal); 4 checkerboard couplings last.
  nice     Dinh et al. 2015: additive couplings with MLPs on alternating (checkerboard)
           halves, then a diagonal scaling layer (the paper's logistic prior is replaced by
           the standard normal base of every flow here).
  maf      Papamakarios et al. 2017: MADE-Gaussian layers, alternating the variable order.

Each builder returns a `Bijector` mapping data of shape [B, ...] to a latent of the same
shape (see `Flow`).

The builders with neural conditioners (glow, realnvp, nice) take `dtype`, the conditioners'
computation dtype (`config.precision`; the bijectors' own maths, actnorm, the invertible
1x1 convolution and every log-determinant stay float32), and `remat`, which recomputes
each coupling's conditioner in the backward pass instead of storing its activations.
Glow's `scan_blocks` compiles each level's repeated steps once (`flows/scan.py`).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

from gen_jax.flows.actnorm import ActNorm
from gen_jax.flows.bijectors import Bijector, Chain
from gen_jax.flows.coupling import Coupling
from gen_jax.flows.invconv import InvConv1x1, Permute
from gen_jax.flows.maf import MaskedAutoregressive
from gen_jax.flows.multiscale import LearnedPrior, MultiScale, SplitPrior
from gen_jax.flows.scan import ScanChain
from gen_jax.nets import NETS, build_net
from gen_jax.core.registry import Registry

FLOWS: Registry[Callable[..., Bijector]] = Registry("flow architecture")

PERMUTATIONS = ("lu", "conv", "reverse")


_CONDITIONER_PREFIX = "flow_"


def conditioner_names() -> list[str]:
  """Names a flow config may give a conditioner: the "flow_*" networks of `NETS`."""
  return [n[len(_CONDITIONER_PREFIX):] for n in NETS.names() if n.startswith(_CONDITIONER_PREFIX)]


def build_conditioner(name: str, *, dtype: Any = jnp.float32, remat: bool = False,
                      **kwargs) -> nn.Module:
  """The coupling conditioner `name` ("conv", "resnet", "mlp"), i.e. the network
  `NETS["flow_" + name]`, with its keyword arguments (a typo is a clear error).

  `remat` rematerialises the conditioner (flax `nn.remat`; the same parameters).
  """
  if name not in conditioner_names():
    raise ValueError(f"Unknown flow conditioner {name!r}; choose one of: "
                     f"{', '.join(conditioner_names())}.")
  net = build_net(_CONDITIONER_PREFIX + name, dtype=dtype, **kwargs)
  if not remat:
    return net
  # net(x, out_features): out_features (argument 2, counting the module) is a Python int.
  fields = {f: getattr(net, f) for f in type(net).__dataclass_fields__
            if f not in ("parent", "name")}
  return nn.remat(type(net), static_argnums=(2,))(**fields)


@FLOWS.register("glow")
def glow(num_levels: int = 3, depth: int = 32, width: int = 512, coupling: str = "affine",
         permutation: str = "lu", learn_top: bool = True, learned_split_prior: bool = True,
         conditioner: str = "conv", dtype: Any = jnp.float32, remat: bool = False,
         scan_blocks: bool = False) -> Bijector:
  """Glow for images [B, H, W, C] with H, W divisible by 2**num_levels.

  `scan_blocks`: each level's `depth` steps run as one `ScanChain` (compiled once, the
  parameters stacked per level; `flows.scan.to_scanned` converts an unscanned checkpoint's
  params and consts with chain="post", layers_per_step=3). The same function either way.
  """
  if coupling not in ("affine", "additive"):
    raise ValueError(f"glow coupling must be 'affine' or 'additive', got {coupling!r}.")
  if permutation not in PERMUTATIONS:
    raise ValueError(f"glow permutation must be one of {PERMUTATIONS}, got {permutation!r}.")

  def step():
    mix = Permute() if permutation == "reverse" else InvConv1x1(lu=permutation == "lu")
    net = build_conditioner(conditioner, width=width, dtype=dtype, remat=remat)
    return [ActNorm(), mix, Coupling(net, mask="channel", parity=0,
                                     scale="sigmoid" if coupling == "affine" else "additive")]

  def steps():
    if scan_blocks:
      return ScanChain(Chain(step()), length=depth)
    return Chain([layer for _ in range(depth) for layer in step()])

  level = MultiScale(post=steps(), split=LearnedPrior() if learn_top else None)
  for _ in range(num_levels - 1):
    level = MultiScale(post=steps(), split=SplitPrior(learned=learned_split_prior), inner=level)
  return level


@FLOWS.register("realnvp")
def realnvp(num_scales: int = 2, width: int = 64, num_blocks: int = 8,
            couplings_per_scale: int = 3, final_couplings: int = 4,
            actnorm: bool = False, dtype: Any = jnp.float32, remat: bool = False) -> Bijector:
  """RealNVP for images [B, H, W, C] with H, W divisible by 2**(num_scales - 1)."""

  def couplings(n, mask):
    layers = []
    for i in range(n):
      net = build_conditioner("resnet", width=width, num_blocks=num_blocks, dtype=dtype,
                              remat=remat)
      layers.append(Coupling(net, mask=mask, parity=i % 2, scale="exp_tanh"))
      if actnorm:
        layers.append(ActNorm())
    return Chain(layers)

  level = MultiScale(pre=couplings(final_couplings, "checkerboard"), squeeze=False)
  for _ in range(num_scales - 1):
    level = MultiScale(pre=couplings(couplings_per_scale, "checkerboard"),
                       post=couplings(couplings_per_scale, "channel"),
                       split=None, inner=level)
  return level


@FLOWS.register("nice")
def nice(num_couplings: int = 4, width: int = 1000, depth: int = 5,
         dtype: Any = jnp.float32, remat: bool = False) -> Bijector:
  """NICE for images or vectors: additive MLP couplings and a final diagonal scaling."""
  mlp = lambda: build_conditioner("mlp", width=width, depth=depth, dtype=dtype, remat=remat)
  layers = [Coupling(mlp(), mask="checkerboard", parity=i % 2, scale="additive")
            for i in range(num_couplings)]
  return Chain(layers + [ActNorm(data_init=False)])


@FLOWS.register("maf")
def maf(num_layers: int = 5, hidden: Sequence[int] = (64, 64), actnorm: bool = False) -> Bijector:
  """MAF for vectors [B, D]: MADE layers alternating the order (optionally with actnorm)."""
  layers = []
  for i in range(num_layers):
    layers.append(MaskedAutoregressive(tuple(hidden), reverse=i % 2 == 1))
    if actnorm:
      layers.append(ActNorm())
  return Chain(layers)


def build_flow(name: str, *, dtype: Any = None, **kwargs) -> Bijector:
  """The architecture `name` built with `kwargs` (e.g. `config.model` minus its name).

  `dtype`: the conditioners' computation dtype (None: float32); an architecture without
  neural conditioners (maf) refuses a narrower one.
  """
  builder = FLOWS.get(name)
  valid = set(inspect.signature(builder).parameters)
  if dtype is not None and jnp.dtype(dtype) != jnp.dtype(jnp.float32):
    if "dtype" not in valid:
      raise ValueError(f"Flow {name!r} computes in float32 only; it does not support "
                       f"config.precision={jnp.dtype(dtype).name!r}. Set config.precision='fp32'.")
    kwargs["dtype"] = dtype
  unknown = sorted(set(kwargs) - valid)
  if unknown:
    raise ValueError(f"Flow {name!r} has no argument(s) {unknown}; valid: {sorted(valid)}.")
  return builder(**kwargs)
