"""GAN building blocks: adversarial losses, regularisers and DiffAugment (the networks are
in `gen_jax.nets.gan`)."""

from gen_jax.gan.diffaugment import DIFF_AUGMENTS, diff_augment, parse_policy  # noqa: F401
from gen_jax.gan.losses import GAN_LOSSES, GanLoss  # noqa: F401
from gen_jax.gan.regularizers import (gradient_penalty, lazy_penalty, lazy_weight,  # noqa: F401
                                      lecam_penalty, r1_penalty)
