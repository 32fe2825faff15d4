"""Normalizing flows: bijectors, coupling layers, actnorm, 1x1 convolutions, multi-scale
architectures (NICE, RealNVP, Glow) and MADE/MAF, all as shape-preserving Flax bijectors."""

from gen_jax.flows.actnorm import ActNorm  # noqa: F401
from gen_jax.flows.architectures import (FLOWS, build_conditioner, build_flow,  # noqa: F401
                                         conditioner_names)
from gen_jax.flows.bijectors import (Bijector, Chain, Flow, Inverse,  # noqa: F401
                                     standard_normal_log_prob, sum_except_batch)
from gen_jax.flows.coupling import Coupling, make_mask  # noqa: F401
from gen_jax.flows.invconv import InvConv1x1, Permute  # noqa: F401
from gen_jax.flows.made import MADE, made_masks  # noqa: F401
from gen_jax.flows.maf import MaskedAutoregressive  # noqa: F401
from gen_jax.flows.multiscale import (LearnedPrior, MultiScale, Squeeze,  # noqa: F401
                                      SplitPrior, squeeze, unsqueeze)
