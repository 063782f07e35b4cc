"""Evaluation: how good the samples are.

* :mod:`~ddpm_edu.eval.metrics` -- the book's measures: the digits classifier score, the energy distance of
  2-D samples (chapter 8), and FID against CIFAR-10 (chapter 9)
"""
