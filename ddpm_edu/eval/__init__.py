"""Evaluation: how good the samples are.

* :mod:`~ddpm_edu.eval.metrics` -- the book's measures: the digits classifier score and the energy distance
  of 2-D samples (chapter 8)
* :mod:`~ddpm_edu.eval.fid` -- FID against CIFAR-10, the paper's measure (chapter 9, ``ddpm-edu fid``): the
  optional torch-fidelity extra, the Inception weights and the readers of sample files
"""
