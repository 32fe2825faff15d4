"""WaveNet on the embedded synthetic tones (data.source=audio_tones; no download).

8 kHz clips of 1,024 samples of four waveform classes (gen_jax/data/audio.py), mu-law
256-way softmax (`:likelihood=dlm` for a 10-component discretized logistic mixture over
the same 256 codes), global conditioning on the waveform class. Two stacks of dilations
1..128 (receptive field 512 samples), 32 residual / 32 dilation / 128 skip channels, Adam
1e-3, batch 16. tests/autoregressive/test_learning.py trains a smaller one to a stated
bits per sample.

    python -m gen_jax.main --config=configs/autoregressive/wavenet_tones.py \\
        --workdir=runs/wavenet_tones
"""

from configs import common
from configs.autoregressive import _autoregressive


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False, likelihood="categorical")
  c = _autoregressive.autoregressive_config(
      dict(name="wavenet", dilations=tuple(2 ** i for i in range(8)) * 2, kernel_size=2,
           initial_kernel=2, residual_channels=32, dilation_channels=32, skip_channels=128),
      likelihood=args.likelihood, num_mix=10, class_conditional=True)
  _autoregressive.audio_data(c, source="audio_tones", sample_rate=8000, clip_length=1024)
  c.batch_size = 16
  c.num_train_steps = 5000
  c.optim.learning_rate = 1e-3
  c.ema.decay = 0.999
  c.trainer.eval_every_steps = 1000
  c.trainer.sample_every_steps = 1000
  c.sample.num_samples = 8
  c.sample.batch_size = 8
  c.sample.grid_size = 8
  if args.smoke:
    _autoregressive.smoke_autoregressive(c)
  c.lock()
  return c
