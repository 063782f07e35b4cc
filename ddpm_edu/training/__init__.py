"""Training: from a config to a trained, checkpointed model (chapters 7 and 9, and ``ddpm-edu train``).

* :mod:`~ddpm_edu.training.config` -- YAML presets (``configs/``) read into validated, frozen dataclasses
* :mod:`~ddpm_edu.training.build` -- a run's parts from its config: device, precision, schedule, model, data
* :mod:`~ddpm_edu.training.train` -- the trainer: Algorithm 1 with warmup, AMP, clipping, EMA, resume
* :mod:`~ddpm_edu.training.guard` -- the non-finite guard, which never waits for the device
* :mod:`~ddpm_edu.training.ema` -- the exponential moving average of the weights
* :mod:`~ddpm_edu.training.checkpoint` -- atomic, ``weights_only`` checkpoints and safetensors export
* :mod:`~ddpm_edu.training.runlog` -- metrics.jsonl, the loss curve and optional Weights & Biases
* :mod:`~ddpm_edu.training.distributed` -- several processes under ``torchrun``
* :mod:`~ddpm_edu.training.generate` -- samples from a trained model: grids, GIFs, files for FID

Nothing here imports torch when the package is imported, so ``ddpm-edu --help`` stays fast.
"""
