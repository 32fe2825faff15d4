"""What every layer shares, importing nothing else from gen_jax: the name registry, the
train state and its EMA, the optimiser helpers, and the sample output type.

    core/registry.py  Registry: name -> object, a typo lists the valid names
    core/state.py     TrainState (params, opt_state, ema_params, model_state), EMA update
    core/optim.py     optimiser and learning-rate schedule from config.optim; apply_gradients
    core/sample.py    SampleOutput (samples, nfe)
    core/sharding.py  the device mesh and the batch / replicated shardings
"""
