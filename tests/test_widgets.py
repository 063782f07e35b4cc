"""ddpm_edu.widgets: live widgets, their static HTML players, and messages for bad parameters."""

import ipywidgets as W
import matplotlib
import pytest

from ddpm_edu import viz, widgets
from ddpm_edu.data import photo
from ddpm_edu.schedules import Schedule

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
JPEG = b"\xff\xd8\xff"  # the live image is a JPEG


@pytest.fixture(scope="module")
def x0():
    return photo(16)


def n_frames(html: str) -> int:
    return html.count("data:image/jpeg;base64") + html.count("data:image/png;base64")


def test_beta_explorer_bundle_has_widget_view_and_static_html(x0):
    ex = widgets.beta_explorer(x0, frames=3, T=100)
    bundle = ex._repr_mimebundle_()
    assert WIDGET_VIEW in bundle and bundle[WIDGET_VIEW]["model_id"] == ex.widget.model_id
    assert "text/plain" in bundle
    html = bundle["text/html"]
    assert n_frames(html) == 3 and 'type="range"' in html
    assert isinstance(ex.widget, W.VBox)
    assert set(ex.controls) == {"kind", "beta_1", "beta_T", "T"}
    assert ex.error is None and bytes(ex.image.value).startswith(JPEG)


@pytest.mark.parametrize("frames", [2, 5])
def test_static_animation_has_the_requested_frames(x0, frames):
    assert n_frames(widgets.beta_explorer(x0, T=50, frames=frames).to_html()) == frames
    assert n_frames(widgets.forward_explorer(x0, Schedule.linear(40), frames=frames).to_html()) == frames


def test_static_sweep_skips_invalid_frames(x0):
    # beta_1 = 0.01 is larger than the first two beta_T values of the sweep: those frames are dropped.
    html = widgets.beta_explorer(x0, beta_1=0.01, beta_T=0.05, T=50, sweep=[0.001, 0.005, 0.02, 0.05]).to_html()
    assert n_frames(html) == 2


@pytest.mark.parametrize(
    "params, text",
    [
        (dict(beta_1=0.05, beta_T=0.01), "beta_1 <= beta_T"),
        (dict(beta_T=1.0), "open interval (0, 1)"),
        (dict(beta_1=1.0), "open interval (0, 1)"),
        (dict(kind="nope"), "unknown schedule kind"),
    ],
)
def test_bad_parameters_give_the_library_message_not_a_traceback(x0, params, text):
    ex = widgets.beta_explorer(x0, T=50, frames=2, **params)  # must not raise
    assert text in ex.error
    bundle = ex._repr_mimebundle_()  # displaying it must not raise either
    assert text.replace("<", "&lt;") in ex.message.value and ex.image.layout.display == "none"
    assert bundle["text/html"] == ex.to_html()
    assert "traceback" not in ex.to_html().lower()
    assert widgets.message_html(ex.error) == ex.to_html()  # the static view is the message box


def test_live_controls_show_a_message_and_recover(x0):
    ex = widgets.beta_explorer(x0, T=50, frames=2)
    ex.widget
    ex.controls["beta_1"].value = 0.1  # > beta_T = 0.02
    assert "beta_1 <= beta_T" in ex.error and "beta_1 &lt;= beta_T" in ex.message.value
    assert ex.image.layout.display == "none"
    ex.controls["beta_T"].value = 1.0
    assert "open interval (0, 1)" in ex.error
    ex.controls["beta_T"].value = 0.5
    assert ex.error is None and ex.message.value == "" and ex.image.layout.display is None
    ex.controls["kind"].value = "cosine"
    assert ex.controls["beta_1"].disabled and "cosine" in ex.message.value


def test_live_image_changes_with_the_slider(x0):
    ex = widgets.forward_explorer(x0, Schedule.linear(40), frames=2)
    first = ex.widget and ex.image.value
    ex.controls["t"].value = 40
    assert bytes(ex.image.value) != bytes(first) and bytes(ex.image.value).startswith(JPEG)


def test_explorer_times():
    assert widgets.explorer_times(1000, (0.0, 0.1, 0.25, 0.5, 1.0)) == [0, 100, 250, 500, 1000]
    assert widgets.explorer_times(3, (0.0, 0.1, 1.0)) == [0, 3]


def test_animation_html_embeds_one_image_per_frame():
    fig = viz.new_figure((2, 2), dpi=20)
    ax = fig.add_subplot()
    before = dict(matplotlib.rcParams)
    html = widgets.animation_html(fig, lambda i: ax.plot([0, 1], [0, i]), 4, frame_format="png")
    assert html.count("data:image/png;base64") == 4
    assert 'type="range"' in html  # the kernel-free slider
    assert dict(matplotlib.rcParams) == before
    jpeg = widgets.animation_html(fig, lambda i: ax.plot([0, 1], [0, i]), 2, frame_format="jpeg")
    assert jpeg.count("data:image/jpeg;base64") == 2
    with pytest.raises(ValueError, match="n_frames"):
        widgets.animation_html(fig, lambda i: None, 0)


def test_message_html_escapes():
    h = widgets.message_html("beta_1 <= beta_T")
    assert "beta_1 &lt;= beta_T" in h and "<div" in h
    assert widgets.message_html("x", "note") != widgets.message_html("x")  # a note is styled apart from an error
