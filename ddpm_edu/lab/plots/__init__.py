"""Every figure of the book, by part; ``from ddpm_edu.lab.plots import plot_schedules`` finds each one here.

* :mod:`~ddpm_edu.lab.plots.base` -- the plumbing: figures without pyplot, PNG/JPEG bytes, files, image
  grids (:func:`~ddpm_edu.lab.plots.base.plot_images`) and GIFs embedded in the page (:func:`~ddpm_edu.lab.plots.base.gif_html`)
* :mod:`~ddpm_edu.lab.plots.forward` -- Part I, the forward process (chapters 1-5)
* :mod:`~ddpm_edu.lab.plots.reverse` -- Part II, reversing it (chapters 6-8; chapter 9 reuses the loss
  curve and the sample panels)
* :mod:`~ddpm_edu.lab.plots.beyond` -- Part IV, beyond DDPM (chapters 10-11)

The chapter that uses a function is named in its docstring; ``ddpm_edu.lab.figs.make_all`` regenerates
the README's figures from these same functions.
"""

from __future__ import annotations

from ddpm_edu.lab.plots.base import (
    BookFigure,
    figure_bytes,
    figure_png,
    gif_html,
    new_figure,
    plot_images,
    save_figure,
)
from ddpm_edu.lab.plots.forward import (
    plot_fixed_noise,
    plot_forward_batches,
    plot_forward_steps,
    plot_image_strip,
    plot_naive_noise,
    plot_pixel_histograms,
    plot_px_pz,
    plot_schedules,
    plot_variance,
)
from ddpm_edu.lab.plots.reverse import (
    plot_clipping,
    plot_density_over_t,
    plot_loss_curve,
    plot_posterior_variances,
    plot_reverse_conditional,
    plot_reverse_steps,
    plot_sample_panels,
    plot_samples_2d,
    plot_samples_over_t,
    plot_t_weights,
    plot_vb_terms,
)
from ddpm_edu.lab.plots.beyond import (
    plot_guidance_grid,
    plot_optimal_variance,
    plot_successor_map,
    plot_tilted_density,
)

__all__ = [
    "BookFigure", "new_figure", "figure_png", "figure_bytes", "save_figure", "plot_images", "gif_html",
    "plot_px_pz", "plot_image_strip", "plot_naive_noise", "plot_variance", "plot_fixed_noise",
    "plot_schedules", "plot_forward_steps", "plot_pixel_histograms", "plot_forward_batches",
    "plot_density_over_t", "plot_samples_over_t", "plot_reverse_conditional", "plot_posterior_variances",
    "plot_loss_curve", "plot_samples_2d", "plot_t_weights", "plot_vb_terms", "plot_reverse_steps",
    "plot_sample_panels", "plot_clipping", "plot_successor_map", "plot_optimal_variance", "plot_tilted_density",
    "plot_guidance_grid",
]
