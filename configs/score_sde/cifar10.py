"""Score SDEs on CIFAR-10: the paper's table as variants of one config (Song et al., ICLR 2021,
Tables 2-3; `configs/{ve,vp,subvp}/cifar10_*.py` of the official code).

    --config=configs/score_sde/cifar10.py:variant=NAME      (default ve_ncsnpp_continuous)

| variant                      | SDE    | network (parameters)      | loss            | paper         |
| ---------------------------- | ------ | ------------------------- | --------------- | ------------- |
| ve_ncsnpp_continuous         | VE     | NCSN++ (62,758,915)       | dsm             | FID 2.38      |
| ve_ncsnpp_deep_continuous    | VE     | NCSN++ deep (107,587,075) | dsm             | FID 2.20      |
| vp_ddpmpp_continuous         | VP     | DDPM++ (61,804,419)       | dsm             | FID 2.55      |
| subvp_ddpmpp_deep_continuous | sub-VP | DDPM++ deep (106,632,579) | dsm             | 2.99 bits/dim |
| vp_ddpm                      | VP     | DDPM UNet (35,746,307)    | L_simple        | FID 3.17      |

Parameter counts are those of the reference code's networks (score_sde's `models/ncsnpp.py`
built from its `configs/{ve,vp,subvp}/cifar10_*_continuous.py`; NCSN++ there uses
progressive="none", progressive_input="residual"); gen_jax's NCSNpp reproduces them and the
reference's outputs exactly (tests/nets/test_ncsnpp_reference.py).

vp_ddpm is a name for configs/ddpm/cifar10.py (Ho et al. 2020's settings): DDPM's chain is the
VP SDE's N = 1000 discretisation, so the SDE paper's DDPM baseline is that config itself.

Adam 2e-4, 5000 warm-up steps, clipping at 1, batch 128, random flips; 1.3M steps (0.95M for
the deep models); EMA 0.999 for NCSN++ and 0.9999 otherwise. Sampling: PC with reverse
diffusion + Langevin (snr 0.16) for VE, Euler-Maruyama predictor without corrector for the
continuous VP / sub-VP models (as in the paper's configs); any sampler from the command line:

    python -m gen_jax.main --config=configs/score_sde/cifar10.py:variant=vp_ddpmpp_continuous \
        --workdir=runs/vp --mode=sample --config.sample.sampler=ode
    python -m gen_jax.main --config=configs/score_sde/cifar10.py:variant=subvp_ddpmpp_deep_continuous \
        --workdir=runs/subvp --mode=eval       # bits/dim of the (dequantized) test split

The VE noise range is doubled to [0.02, 100] because gen_jax feeds images in [-1, 1] (see
_score_sde.py). The smoke variant shrinks whichever variant is chosen.
"""

from configs import common
from configs.ddpm import cifar10 as ddpm_cifar10
from configs.score_sde import _score_sde

VARIANTS = ("ve_ncsnpp_continuous", "ve_ncsnpp_deep_continuous", "vp_ddpmpp_continuous",
            "subvp_ddpmpp_deep_continuous", "vp_ddpm")


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False, variant="ve_ncsnpp_continuous")
  v = args.variant
  if v not in VARIANTS:
    raise ValueError(f"Unknown CIFAR-10 variant {v!r}; choose one of: {', '.join(VARIANTS)}.")
  if v == "vp_ddpm":
    return ddpm_cifar10.get_config("smoke" if args.smoke else None)
  deep = "deep" in v
  blocks = 8 if deep else 4
  if v.startswith("ve_"):
    c = _score_sde.score_sde_config(sde="vesde",
                                    model=_score_sde.ncsnpp_model(num_res_blocks=blocks))
    c.ema.decay = 0.999
    c.sample.pc.predictor = "reverse_diffusion"
    c.sample.pc.corrector = "langevin"
  else:
    c = _score_sde.score_sde_config(sde=v.split("_")[0] + "sde",
                                    model=_score_sde.ddpmpp_model(num_res_blocks=blocks))
    c.ema.decay = 0.9999
    c.sample.pc.predictor = "euler_maruyama"
    c.sample.pc.corrector = "none"
  c.method.likelihood.enabled = v.startswith("subvp")
  c.data.source = "tfds"
  c.data.name = "cifar10"
  c.data.random_flip = True
  c.num_train_steps = 950_000 if deep else 1_300_000
  if args.smoke:
    _score_sde.smoke_score_sde(c)
  c.lock()
  return c
