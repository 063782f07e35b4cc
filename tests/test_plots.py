"""ddpm_edu.lab.plots: every plot function of the book (base, forward: chapters 1-5, reverse: chapters 6-8,
beyond: chapters 10-11).

Each is called on tiny inputs and must return an Agg figure that renders, without touching rcParams;
the curves and images drawn are compared with the library tensors they come from."""

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ddpm_edu.analytic import MixtureEps
from ddpm_edu.data import images
from ddpm_edu.data.photo import photo
from ddpm_edu.lab import plots as viz
from ddpm_edu.schedules import KINDS, Schedule


@pytest.fixture(scope="module")
def x0():
    return photo(16)


@pytest.fixture(scope="module")
def eps(x0):
    return torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))


# three 2-D Gaussian "classes" (chapter 10)
CLASSES2D = MixtureEps([0.2, 0.5, 0.3], [[-2.0, 0.5], [1.0, 1.5], [1.5, -1.5]], [0.3, 0.6, 0.45], Schedule.linear(50))


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def small_plots(x0, eps):
    """Every plot function called on tiny inputs: name -> thunk."""
    s = Schedule.linear(50, 1e-3, 0.2)
    z = torch.randn(500, generator=gen())
    return {
        "plot_images": lambda: viz.plot_images(x0[None].repeat(4, 1, 1, 1), 2),
        "plot_px_pz": lambda: viz.plot_px_pz(z, 1 + 2 * z, 1 + 2 * torch.randn(500, generator=gen(1)), 1.0, 2.0),
        "plot_image_strip": lambda: viz.plot_image_strip(torch.stack([x0, 3 * x0]), [0, 5], hist=True, suptitle="x"),
        "plot_naive_noise": lambda: viz.plot_naive_noise(x0, 0.1, [0, 3, 7], gen()),
        "plot_variance": lambda: viz.plot_variance([0, 1, 2], {"a": [1, 2, 3], "b": [1, 1, 1]}, {"a": [1, 2, 3]}, logy=True),
        "plot_fixed_noise": lambda: viz.plot_fixed_noise(x0, [0.1, 0.01], [0, 2, 5], gen()),
        "plot_schedules": lambda: viz.plot_schedules({k: Schedule.make(k, 50, 1e-3, 0.2) for k in KINDS}),
        "plot_forward_steps": lambda: viz.plot_forward_steps(x0, s, [0, 25, 50], eps),
        "plot_pixel_histograms": lambda: viz.plot_pixel_histograms({"a": torch.stack([x0, eps]), "b": torch.stack([eps, x0])}, [1, 2]),
        "plot_loss_curve": lambda: viz.plot_loss_curve([{"step": 10, "loss": 1.0}, {"step": 20, "loss": 0.4}]),
        "plot_density_over_t": lambda: viz.plot_density_over_t([0, 1, 2], torch.linspace(-1, 1, 5), torch.rand(3, 5), paths=torch.zeros(3, 2)),
        "plot_samples_over_t": lambda: viz.plot_samples_over_t([0, 1], torch.randn(2, 100, generator=gen()), torch.linspace(-3, 3, 11), n_paths=3),
        "plot_reverse_conditional": lambda: viz.plot_reverse_conditional(_mixture(s), 0.2, 5, torch.linspace(-2, 2, 50)),
        "plot_posterior_variances": lambda: viz.plot_posterior_variances(s),
        "plot_samples_2d": lambda: viz.plot_samples_2d(torch.randn(50, 2, generator=gen()), torch.randn(40, 2, generator=gen(1))),
        "plot_t_weights": lambda: viz.plot_t_weights({"a": s.betas, "b": 1 / s.betas}),
        "plot_vb_terms": lambda: viz.plot_vb_terms({"a": torch.rand(3, 51, generator=gen()) + 0.1}),
        "plot_reverse_steps": lambda: viz.plot_reverse_steps([(5, eps[None]), (0, x0[None])], [(5, x0[None]), (0, x0[None])]),
        "plot_sample_panels": lambda: viz.plot_sample_panels({"images": x0[None], "points": z.reshape(-1, 2)}),
        "plot_clipping": lambda: viz.plot_clipping({"run": _probe_record()}),
        "plot_successor_map": lambda: viz.plot_successor_map(),
        "plot_optimal_variance": lambda: viz.plot_optimal_variance(s, [0.3, 1.0]),
        "plot_tilted_density": lambda: viz.plot_tilted_density(CLASSES2D, 1, [0.0, 2.0], n=21),
        "plot_guidance_grid": lambda: viz.plot_guidance_grid(x0[None, None, None].repeat(2, 3, 2, 1, 1, 1), [0, 1, 2]),
        "plot_forward_batches": lambda: viz.plot_forward_batches(
            {"photo": x0[None], "gray": x0[:1, None].repeat(4, 1, 1, 1)}, s, [0, 25, 50],
            {"photo": eps[None], "gray": eps[:1, None].repeat(4, 1, 1, 1)}),
    }


PLOT_NAMES = [
    "plot_images",  # base
    "plot_px_pz", "plot_image_strip", "plot_naive_noise", "plot_variance", "plot_fixed_noise",  # forward
    "plot_schedules", "plot_forward_steps", "plot_pixel_histograms", "plot_forward_batches",
    "plot_density_over_t", "plot_samples_over_t", "plot_reverse_conditional", "plot_posterior_variances",  # reverse
    "plot_loss_curve", "plot_samples_2d", "plot_t_weights", "plot_vb_terms", "plot_reverse_steps",
    "plot_sample_panels", "plot_clipping",
    "plot_successor_map", "plot_optimal_variance", "plot_tilted_density", "plot_guidance_grid",  # beyond
]


def test_every_public_plot_function_is_tested(x0, eps):
    public = {n for n in viz.__all__ if n.startswith("plot_")}
    assert public == set(PLOT_NAMES) == set(small_plots(x0, eps))


def test_the_package_re_exports_every_plot_of_its_modules():
    from ddpm_edu.lab.plots import base, beyond, forward, reverse

    modules = (base, forward, reverse, beyond)
    names = [n for m in modules for n in m.__all__]
    assert len(names) == len(set(names))  # each function lives in one module
    assert {n for n in names if n.startswith("plot_")} <= set(viz.__all__)  # every plot is re-exported
    for name in viz.__all__:  # as the module's own object
        owner = next(m for m in modules if name in m.__all__)
        assert getattr(viz, name) is getattr(owner, name)


@pytest.mark.parametrize("name", PLOT_NAMES)
def test_plot_returns_agg_figure_and_leaves_rcparams_alone(name, x0, eps):
    before = dict(matplotlib.rcParams)
    backend = matplotlib.get_backend()
    fig = small_plots(x0, eps)[name]()
    assert isinstance(fig, Figure)
    assert isinstance(fig.canvas, FigureCanvasAgg)
    assert fig.axes, "the figure has no axes"
    assert viz.figure_png(fig, dpi=30).startswith(b"\x89PNG")  # it renders
    assert dict(matplotlib.rcParams) == before
    assert matplotlib.get_backend() == backend


@pytest.mark.parametrize("name", ["plot_images", "plot_variance"])
def test_single_panel_plots_draw_into_a_given_ax(name, x0):
    fig = viz.new_figure((4, 2))
    ax1, ax2 = fig.subplots(1, 2)
    call = {
        "plot_images": lambda ax: viz.plot_images(x0[None], ax=ax),
        "plot_variance": lambda ax: viz.plot_variance([0, 1], {"a": [1, 2]}, {"a": [1, 2]}, ax=ax),
    }[name]
    assert call(ax2) is fig
    assert len(fig.axes) == 2
    assert ax2.has_data() and not ax1.has_data()


def test_multi_panel_plots_redraw_in_place(x0, eps):
    fig = viz.new_figure()
    for T in (10, 20, 30):
        assert viz.plot_schedules(Schedule.linear(T, 1e-3, 0.2), fig=fig) is fig
    assert len(fig.axes) == 3  # cleared between redraws, not stacked


def test_schedule_plot_uses_the_schedule_tensors():
    s = Schedule.cosine(30)
    fig = viz.plot_schedules({"cos": s})
    ax_beta, ax_ab, ax_snr = fig.axes
    np.testing.assert_allclose(ax_beta.lines[0].get_ydata(), s.betas[1:].numpy())
    np.testing.assert_allclose(ax_ab.lines[0].get_ydata(), s.alpha_bar[1:].numpy())
    np.testing.assert_allclose(ax_snr.lines[0].get_ydata(), s.snr[1:].numpy())
    assert ax_snr.get_yscale() == "log"
    with pytest.raises(ValueError, match="panels"):
        viz.plot_schedules(s, panels=("nope",))


def test_image_strip_titles_report_the_true_pixel_range(x0):
    fig = viz.plot_image_strip(torch.stack([x0, 5 * x0]), [0, 9])
    titles = [ax.get_title() for ax in fig.axes]
    assert "t = 9" in titles[1] and f"{(5 * x0).max():.2g}" in titles[1]
    with pytest.raises(ValueError, match="time steps"):
        viz.plot_image_strip(torch.stack([x0, x0]), [0])


def test_save_figure_writes_png(tmp_path):
    p = viz.save_figure(viz.plot_variance([0, 1], {"a": [1, 2]}, {}), tmp_path / "sub" / "v.png", dpi=30)
    assert p.read_bytes().startswith(b"\x89PNG")
    assert [q.name for q in p.parent.iterdir()] == ["v.png"]  # no temporary file left behind


def test_figures_display_themselves_in_a_notebook():
    from IPython.core.formatters import PNGFormatter

    fig = viz.plot_variance([0, 1], {"a": [1, 2]}, {})
    png = PNGFormatter()(fig)  # what IPython shows when a cell returns the figure, without pyplot
    assert png is not None and png.startswith(b"\x89PNG")


def test_figure_bytes_formats():
    fig = viz.plot_images(photo(16)[None])
    assert viz.figure_bytes(fig, "png", 30).startswith(b"\x89PNG")
    small, large = viz.figure_bytes(fig, "jpeg", 30, jpeg_quality=30), viz.figure_bytes(fig, "jpeg", 30, jpeg_quality=95)
    assert small.startswith(b"\xff\xd8\xff") and len(small) < len(large)




# ------------------------------------------------------------------ chapter 6
def _mixture(s):
    from ddpm_edu.analytic import MixtureEps

    return MixtureEps([0.4, 0.6], [[-1.0], [0.8]], [0.2, 0.3], s)


def test_density_over_t_draws_the_density_it_is_given_and_the_paths():
    d = torch.rand(3, 5, generator=gen())
    fig = viz.plot_density_over_t([0, 1, 2], torch.linspace(-1, 1, 5), d, paths=torch.zeros(3, 4))
    ax = fig.axes[0]
    np.testing.assert_allclose(np.asarray(ax.collections[0].get_array()).reshape(5, 3), d.numpy().T)
    assert len(ax.lines) == 4
    with pytest.raises(ValueError, match="shape"):
        viz.plot_density_over_t([0, 1], torch.linspace(-1, 1, 5), d)


def test_density_over_t_reverse_puts_T_on_the_left():
    d = torch.rand(3, 5, generator=gen())
    forward = viz.plot_density_over_t([0, 5, 10], torch.linspace(-1, 1, 5), d).axes[0]
    backward = viz.plot_samples_over_t([10, 5, 0], torch.randn(3, 50, generator=gen()), torch.linspace(-3, 3, 7),
                                       reverse=True).axes[0]
    assert forward.get_xlim() == (0, 10) and backward.get_xlim() == (10, 0)


def test_samples_over_t_histograms_integrate_to_one():
    edges = torch.linspace(-4, 4, 17)
    states = torch.randn(2, 1000, generator=gen()) * 0.5
    fig = viz.plot_samples_over_t([0, 1], states, edges)
    h = np.asarray(fig.axes[0].collections[0].get_array()).reshape(16, 2)
    np.testing.assert_allclose(h.sum(0) * 0.5, 1.0)  # bin width 0.5; every sample lies inside the edges


def test_reverse_conditional_curves_come_from_the_mixture():
    s = Schedule.linear(50, 1e-3, 0.2)
    mix, x = _mixture(s), torch.linspace(-3, 3, 301, dtype=torch.float64)
    ax = viz.plot_reverse_conditional(mix, 0.4, 10, x).axes[0]
    exact = ax.lines[2].get_ydata()
    np.testing.assert_allclose(exact, mix.reverse_log_density(x[:, None], torch.tensor([[0.4]], dtype=torch.float64), 10).exp().numpy())
    np.testing.assert_allclose(ax.lines[0].get_ydata(), mix.density(x[:, None], 9).numpy())
    gauss = ax.lines[3].get_ydata()
    assert (gauss * 0.02).sum() == pytest.approx(1.0, abs=1e-3)  # a normalised Gaussian on the grid


def test_posterior_variances_plot_the_schedule_tensors():
    s = Schedule.linear(50, 1e-3, 0.2)
    ax_v, ax_r = viz.plot_posterior_variances(s).axes
    np.testing.assert_allclose(ax_v.lines[0].get_ydata(), s.betas[2:].numpy())
    np.testing.assert_allclose(ax_v.lines[1].get_ydata(), s.beta_tilde[2:].numpy())
    ratio = ax_r.lines[0].get_ydata()
    assert ratio[0] == 0 and np.all(ratio[1:] > 0) and np.all(ratio <= 1)
def test_samples_2d_draws_data_and_samples_as_given():
    data, samples = torch.randn(30, 2, generator=gen()), 5 * torch.randn(20, 2, generator=gen(1))
    fig = viz.plot_samples_2d(data, samples, title="toy")
    ax = fig.axes[0]
    d, x = (c.get_offsets() for c in ax.collections)
    np.testing.assert_allclose(d, data.numpy(), rtol=1e-6)
    np.testing.assert_allclose(x, samples.numpy(), rtol=1e-6)
    lim = 1.2 * data.abs().max().item()  # the default frame follows the data, not the samples
    np.testing.assert_allclose(ax.get_xlim(), (-lim, lim), rtol=1e-6)
    assert ax.get_title() == "toy"
    assert viz.plot_samples_2d(data, samples, lim=2.0).axes[0].get_ylim() == (-2.0, 2.0)


def test_t_weights_plots_entries_1_to_T_and_drops_infinite_ones():
    s = Schedule.linear(20, 1e-3, 0.2)
    w = s.betas / (1 - s.alpha_bar.roll(1))  # entry 1 is beta_1 / 0 = inf; entry 0 is ignored
    ax = viz.plot_t_weights({"w": w, "one": torch.ones(s.T + 1)}).axes[0]
    line_w, line_one = ax.lines
    np.testing.assert_array_equal(line_w.get_xdata(), np.arange(2, s.T + 1))
    np.testing.assert_allclose(line_w.get_ydata(), w[2:].numpy())
    np.testing.assert_array_equal(line_one.get_xdata(), np.arange(1, s.T + 1))
    assert ax.get_yscale() == "log"
def test_vb_terms_plots_the_mean_of_each_term_at_its_t_and_leaves_out_L_T():
    from ddpm_edu.analytic import GaussianEps
    from ddpm_edu.likelihood import vb_terms_per_variance

    s = Schedule.linear(20, 1e-3, 0.2)
    x0 = torch.linspace(-1, 1, 17, dtype=torch.float64)[:12].reshape(3, 4)
    terms = vb_terms_per_variance(GaussianEps(0.0, 0.5, s), x0, s, levels=17, generator=gen())
    ax = viz.plot_vb_terms(terms).axes[0]
    assert [line.get_label() for line in ax.lines] == list(terms)
    for line, x in zip(ax.lines, terms.values()):
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, s.T + 1))  # L_{t-1} at t; no L_T
        np.testing.assert_allclose(line.get_ydata(), x[:, :-1].mean(0).numpy(), rtol=1e-12)
    assert ax.get_xscale() == ax.get_yscale() == "log"


# ---------------------------------------------------------------------- chapter 8
def _recorded_run(T=20, B=5):
    from ddpm_edu.analytic import GaussianEps
    from ddpm_edu.sampling import TrajectoryRecorder, sample

    s = Schedule.linear(T, 1e-3, 0.3)
    rec = TrajectoryRecorder(T, frames=8)
    sample(GaussianEps(0.0, 0.5, s), (B, 1, 8, 8), s, generator=torch.Generator().manual_seed(0), callback=rec)
    return rec


def test_reverse_steps_shows_x_t_over_x0_hat_at_recorded_times():
    rec = _recorded_run()
    fig = viz.plot_reverse_steps(rec.frames, rec.x0_frames, columns=4, images=4)
    axes = fig.axes
    assert len(axes) == 8  # 2 rows x 4 columns
    ts = [rec.frames[k][0] for k in np.round(np.linspace(0, len(rec.frames) - 1, 4)).astype(int)]
    assert [ax.get_title() for ax in axes[:4]] == [f"t = {t}" for t in ts]
    assert ts[0] == 20 and ts[-1] == 0
    # the bottom-left panel is x0_hat at t = T, the top-left x_T: each is the image_grid of that state
    np.testing.assert_array_equal(axes[4].images[0].get_array(), images.image_grid(rec.x0_frames[0][1][:4], 2))
    np.testing.assert_array_equal(axes[0].images[0].get_array(), images.image_grid(rec.frames[0][1][:4], 2))
    with pytest.raises(ValueError, match="as many"):
        viz.plot_reverse_steps(rec.frames, rec.x0_frames[:-1])


def test_sample_panels_draw_images_and_points():
    g = torch.Generator().manual_seed(0)
    imgs, pts = torch.rand(4, 1, 8, 8, generator=g) * 2 - 1, torch.randn(30, 2, generator=g)
    fig = viz.plot_sample_panels({"a": imgs, "b": pts}, reference=torch.zeros(10, 2))
    ax_a, ax_b = fig.axes
    assert ax_a.get_title() == "a" and ax_b.get_title() == "b"
    np.testing.assert_array_equal(ax_a.images[0].get_array(), images.image_grid(imgs))
    offsets = ax_b.collections[1].get_offsets()
    np.testing.assert_allclose(np.asarray(offsets), pts.double().numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="expected images"):
        viz.plot_sample_panels({"bad": torch.zeros(3, 3)})


def test_gif_html_embeds_the_gif_bytes(tmp_path):
    import base64

    from ddpm_edu.data.images import save_gif

    frames = [np.full((6, 6), v, dtype=np.uint8) for v in (0, 120, 255)]
    path = save_gif(frames, tmp_path / "a.gif", fps=5)
    html = viz.gif_html(path, width=100, alt='three frames: black, grey, "white"').data
    payload = html.split("base64,")[1].split('"')[0]
    assert base64.b64decode(payload) == path.read_bytes() and 'width="100"' in html
    assert 'alt="three frames: black, grey, &quot;white&quot;"' in html  # escaped: the quote cannot end the attribute
    with pytest.raises(ValueError, match="GIF"):
        viz.gif_html(b"\x89PNG....", alt="not a GIF")
    with pytest.raises(ValueError, match="alt must say what the animation shows"):
        viz.gif_html(path, alt="  ")
    with pytest.raises(TypeError, match="alt"):
        viz.gif_html(path)  # no default: every GIF on a page says what it shows


# ---------------------------------------------------------------------- chapter 5, second edition
def test_forward_batches_show_the_closed_form_of_each_batch(x0, eps):
    from ddpm_edu.forward import q_sample

    s = Schedule.linear(40, 1e-3, 0.2)
    g = torch.Generator().manual_seed(1)
    digits = torch.rand(6, 1, 8, 8, generator=g) * 2 - 1
    e_digits = torch.randn(digits.shape, generator=g)
    ts = [0, 10, 40]
    fig = viz.plot_forward_batches({"photo": x0[None], "digits": digits}, s, ts, {"photo": eps[None], "digits": e_digits})
    axes = fig.axes
    assert len(axes) == 2 * len(ts)
    for k, t in enumerate(ts):
        np.testing.assert_array_equal(axes[k].images[0].get_array(), images.image_grid(q_sample(x0[None], t, eps[None], s)))
        np.testing.assert_array_equal(axes[3 + k].images[0].get_array(), images.image_grid(q_sample(digits, t, e_digits, s)))
        assert f"t={t}" in axes[k].get_title()
    np.testing.assert_array_equal(axes[3].images[0].get_array(), images.image_grid(digits))  # t = 0 is the data itself
    with pytest.raises(ValueError, match="shape"):
        viz.plot_forward_batches({"d": digits}, s, ts, {"d": e_digits[:2]})


# ---------------------------------------------------------------------- chapter 8, second edition
def _probe_record():
    """A ClipProbe after a short run of the exact eps* of wide Gaussian data (std 2), whose guesses leave [-1, 1]."""
    from ddpm_edu.analytic import GaussianEps
    from ddpm_edu.eval.metrics import ClipProbe
    from ddpm_edu.sampling import sample

    s = Schedule.cosine(12)
    probe = ClipProbe(GaussianEps(0.0, 2.0, s), s)
    sample(probe, (200, 1), s, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return probe


def test_clipping_plot_draws_the_probe_records_from_T_down():
    probe = _probe_record()
    ax_out, ax_max, ax_shift = viz.plot_clipping({"a": probe}).axes
    t = np.arange(1, 13)
    for ax, rec in ((ax_out, probe.outside), (ax_max, probe.max_abs)):
        line = ax.lines[0]
        np.testing.assert_array_equal(line.get_xdata(), t)
        np.testing.assert_allclose(line.get_ydata(), [rec[k] for k in t])
        assert ax.get_xlim()[0] > ax.get_xlim()[1]  # T on the left
    drawn = [k for k in t[1:] if probe.shift[k] > 0]  # t = 1 has no sigma_t; a log scale cannot show 0
    assert 5 < len(drawn) < 11  # this run has steps where clamping changes nothing, and steps where it does
    np.testing.assert_array_equal(ax_shift.lines[0].get_xdata(), drawn)
    np.testing.assert_allclose(ax_shift.lines[0].get_ydata(), [probe.shift[k] for k in drawn])


def test_successor_map_joins_each_successor_to_its_chapters():
    """One line per (successor, chapter) pair of SUCCESSORS, and a label for each chapter and successor."""
    from ddpm_edu.lab.successors import CHAPTERS, SUCCESSORS

    fig = viz.plot_successor_map()
    ax = fig.axes[0]
    assert len(ax.lines) == sum(len(s.chapters) for s in SUCCESSORS)
    labels = {t.get_text() for t in ax.texts}
    assert {f"ch. {c}: {name}" for c, name in CHAPTERS.items()} | {f"{s.name} ({s.year})" for s in SUCCESSORS} == labels


def test_optimal_variance_weight_is_1_for_unit_data_and_in_0_1_for_narrow_data():
    """v_t = 1 exactly where sigma*_t^2 = beta_t (data N(0, 1)); narrower data give v_t in [0, 1]."""
    s = Schedule.linear(100, 1e-3, 0.2)
    fig = viz.plot_optimal_variance(s, [1.0, 0.2])
    unit, narrow = (line.get_ydata() for line in fig.axes[0].lines[:2])
    assert np.allclose(unit, 1.0, atol=1e-9)
    assert (narrow >= -1e-9).all() and (narrow <= 1 + 1e-9).all() and narrow.min() < 0.5


def test_tilted_density_panels_are_the_normalised_tilted_density_and_sharpen_with_w():
    """Each panel's image is exp((1 + w) log q(x | y) - w log q(x)) normalised on the grid, computed here from the
    two Gaussians' closed forms; its spread about class y's mean shrinks as w grows (chapter 10)."""
    n, lim, y = 41, 3.0, 1
    fig = viz.plot_tilted_density(CLASSES2D, y, [0.0, 1.0, 4.0], n=n, lim=lim)
    g = np.linspace(-lim, lim, n)
    x1, x2 = np.meshgrid(g, g, indexing="xy")
    pts = np.stack([x1, x2], -1)  # (n, n, 2)
    w_k, mu, sd = CLASSES2D.w.numpy(), CLASSES2D.mu.numpy(), CLASSES2D.std.numpy()
    dens = [np.exp(-((pts - mu[k]) ** 2).sum(-1) / (2 * sd[k] ** 2)) / (2 * np.pi * sd[k] ** 2) for k in range(3)]
    mix = sum(w_k[k] * dens[k] for k in range(3))
    spread = []
    for ax, w in zip(fig.axes, [0.0, 1.0, 4.0]):
        img = np.asarray(ax.images[0].get_array())
        want = dens[y] ** (1 + w) / mix**w
        np.testing.assert_allclose(img, want / want.sum(), rtol=1e-9, atol=1e-15)
        spread.append(float((img * ((pts - mu[y]) ** 2).sum(-1)).sum()))
    assert spread[0] > spread[1] > spread[2]


def test_tilted_density_refuses_a_negative_weight():
    with pytest.raises(ValueError, match="guidance weight"):
        viz.plot_tilted_density(CLASSES2D, 0, [-1.0])


def test_guidance_grid_puts_each_class_in_its_row_and_each_weight_in_its_column():
    """Cell (k, j) shows exactly the images x[k, j], tiled in one row; a wrong shape is refused."""
    x = torch.rand(3, 2, 4, 1, 8, 8, generator=gen()) * 2 - 1
    fig = viz.plot_guidance_grid(x, [0.0, 2.0], labels=[3, 5, 7])
    assert len(fig.axes) == 6
    for k in range(3):
        for j in range(2):
            img = np.asarray(fig.axes[2 * k + j].images[0].get_array())
            np.testing.assert_array_equal(img, images.image_grid(x[k, j], nrow=4))
    assert [a.get_title() for a in fig.axes[:2]] == ["w = 0", "w = 2"]
    assert [fig.axes[2 * k].texts[0].get_text() for k in range(3)] == ["3", "5", "7"]
    with pytest.raises(ValueError, match="one column per weight"):
        viz.plot_guidance_grid(x, [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="labels"):
        viz.plot_guidance_grid(x, [0.0, 2.0], labels=[1, 2])
