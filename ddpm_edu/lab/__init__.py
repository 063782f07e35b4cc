"""The book's side: what the chapters need besides the derivation.

* :mod:`~ddpm_edu.lab.plots` -- every figure of the book, by part (plots only: the math lives in the derivation)
* :mod:`~ddpm_edu.lab.figs` -- ``ddpm-edu figs``: the README's PNGs and GIFs
* :mod:`~ddpm_edu.lab.modelcache` -- the book's trained models, cached by their config
* :mod:`~ddpm_edu.lab.cost` -- what a run costs in FLOP and hours (chapter 9)
* :mod:`~ddpm_edu.lab.plan` -- which CIFAR-10 run fits this machine (chapter 9)
* :mod:`~ddpm_edu.lab.tables` -- measurements as one rendered Markdown table (chapters 7-8)
* :mod:`~ddpm_edu.lab.fastmode` -- ``DDPM_EDU_FAST=1``, the one switch that shrinks compute for tests
"""
