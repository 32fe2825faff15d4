"""WaveNet on a folder of WAV files (e.g. VCTK: one subfolder per speaker), 16 kHz.

The paper's setting (van den Oord et al. 2016): 16 kHz audio, mu-law 256-way softmax,
dilations 1, 2, ..., 512 repeated 3 times (30 layers, kernel 2, receptive field 3,071
samples = 192 ms), global conditioning on the speaker (the class subfolder). The paper
does not state the channel widths; ours are 64 residual / 64 dilation / 256 skip. Clips of
one second (16,000 samples), Adam 1e-3, batch 8.

    python -m gen_jax.main --config=configs/autoregressive/wavenet_audio_folder.py \\
        --workdir=runs/wavenet_vctk --config.data.path=/data/vctk/train \\
        --config.data.eval_path=/data/vctk/test

Unlabelled folders (WAV files directly in data.path): --config.method.class_conditional=False.
The ':smoke' variant reads the embedded tones instead of files.
"""

from configs import common
from configs.autoregressive import _autoregressive


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = _autoregressive.autoregressive_config(
      dict(name="wavenet", dilations=tuple(2 ** i for i in range(10)) * 3, kernel_size=2,
           initial_kernel=2, residual_channels=64, dilation_channels=64, skip_channels=256),
      likelihood="categorical", class_conditional=True)
  _autoregressive.audio_data(c, source="audio_folder", sample_rate=16000, clip_length=16000)
  c.batch_size = 8
  c.num_train_steps = 200_000
  c.optim.learning_rate = 1e-3
  c.ema.decay = 0.9999
  c.trainer.eval_every_steps = 10_000
  c.sample.num_samples = 4
  c.sample.batch_size = 4
  c.sample.grid_size = 4
  if args.smoke:
    _autoregressive.smoke_autoregressive(c)
  c.lock()
  return c
