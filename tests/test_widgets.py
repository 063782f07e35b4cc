"""ddpm_edu.web.explorer and ddpm_edu.web.views: the schedule explorer's Python face, its self-contained HTML,
its embedded images, and how the JS modules are bundled for both views.

The JavaScript itself is tested in test_explorer.py (under node) and in tests/browser/ (in Chromium).
"""

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ddpm_edu.data.photo import photo
from ddpm_edu.data.images import to_uint8
from ddpm_edu.forward import q_sample
from ddpm_edu.schedules import Schedule, summarize
from ddpm_edu.web import explorer, live, views

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def x0():
    return photo(24)


def data_uris(html: str) -> list[str]:
    return re.findall(r"data:image/png;base64,[A-Za-z0-9+/=]+", html)


def test_bundle_has_the_widget_view_and_the_html_view(x0):
    ex = explorer.schedule_explorer(x0, T=100)
    data, _ = ex._repr_mimebundle_()
    assert data[WIDGET_VIEW]["model_id"] == ex.model_id
    assert data["text/plain"] == repr(ex) and "T=100" in repr(ex)
    assert 'class="ddpm-explorer"' in data["text/html"] and "DDPMExplorer.mount" in data["text/html"]


def test_html_is_self_contained(x0):
    html = explorer.schedule_explorer(x0).to_html()
    assert not re.search(r"https?://", html)  # no URL at all: no CDN, no namespace, nothing to fetch
    assert not re.search(r"""\bsrc\s*=\s*["'](?!data:)""", html)  # nothing loaded from anywhere
    assert "<script src" not in html and "import(" not in html
    assert html.count("<script>") == 1 and html.count("</script>") == 1  # the JSON cannot close it early
    assert views.js_bundle(explorer.MODULES) in html  # every module, inline


def test_two_explorers_have_distinct_ids(x0):
    a, b = explorer.schedule_explorer(x0), explorer.schedule_explorer(x0)
    ids = [re.findall(r'id="([^"]+)"', h) for h in (a.to_html(), b.to_html(), a.to_html())]
    assert all(len(i) == 1 for i in ids) and len({i[0] for i in ids}) == 3
    html = a.to_html()
    root = re.findall(r'id="([^"]+)"', html)[0]
    assert f'document.getElementById("{root}")' in html  # the script mounts on its own element


def test_embedded_images_decode_to_the_image_size(x0):
    ex = explorer.schedule_explorer(x0, seed=3)
    uris = data_uris(ex.to_html())
    assert len(uris) == 2  # x0 and eps, once each
    for uri in uris:
        img = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
        assert img.format == "PNG" and img.mode == "RGB" and img.size == (24, 24)
    x0_back, eps = ex.embedded()
    assert np.array_equal(to_uint8(x0_back), to_uint8(x0))  # x0 survives exactly, as 8-bit pixels
    want = torch.randn(x0.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    inside = want.abs() < 3.9
    assert (eps - want)[inside].abs().max() <= 0.5 / explorer.EPS_SCALE + 1e-12  # quantised to steps of 1/32
    assert abs(eps.std() - 1) < 0.1


def test_default_image_is_the_photograph_and_small():
    html = explorer.schedule_explorer().to_html()
    assert explorer.schedule_explorer().config["size"] == [96, 96]
    assert len(html) < 150_000  # x0, eps and the module: well under the old 10-frame animation


def test_grey_images_are_expanded_to_rgb():
    ex = explorer.schedule_explorer(torch.zeros(1, 8, 8))
    assert ex.embedded()[0].shape == (3, 8, 8)


@pytest.mark.parametrize(
    "settings",
    [
        dict(kind="linear", beta_1=3e-4, beta_T=0.05, T=500),
        dict(kind="quadratic", beta_1=1e-4, beta_T=0.02, T=1000),
        dict(kind="sigmoid", beta_1=1e-5, beta_T=0.1, T=37),
        dict(kind="cosine", s=0.02, T=250),
    ],
)
def test_schedule_round_trips_the_browser_settings(x0, settings):
    ex = explorer.schedule_explorer(x0, T=10)
    # what the browser sends when the reader moves the controls
    ex.set_state({"t": 3, **settings})
    if settings["kind"] == "cosine":
        want = Schedule.cosine(settings["T"], settings["s"])
    else:
        want = Schedule.make(settings["kind"], settings["T"], settings["beta_1"], settings["beta_T"])
    got = ex.schedule()
    assert got.T == want.T
    for name in ("betas", "alpha_bar", "snr"):
        assert torch.equal(getattr(got, name), getattr(want, name))
    assert ex.summary() == summarize(want) and ex.error is None


def test_constant_ties_beta_1_to_beta_T(x0):
    ex = explorer.schedule_explorer(x0, constant=True, beta_T=0.01, controls=["beta_T", "t"])
    assert ex.beta_1 == ex.beta_T == 0.01 and ex.config["constant"] and ex.config["controls"] == ["beta_T", "t"]
    assert torch.allclose(ex.schedule().alpha_bar, torch.tensor(0.99, dtype=torch.float64) ** torch.arange(1001))


def test_the_shown_image_is_the_closed_form(x0):
    ex = explorer.schedule_explorer(x0, T=50)
    x0e, eps = ex.embedded()
    xt = q_sample(x0e[None], 20, eps[None], ex.schedule())[0]
    ab = ex.schedule().alpha_bar[20]
    assert torch.allclose(xt, ab.sqrt() * x0e + (1 - ab).sqrt() * eps)


@pytest.mark.parametrize(
    "settings, text",
    [
        (dict(beta_1=0.05, beta_T=0.01), "beta_1 <= beta_T"),
        (dict(beta_T=1.0), "open interval (0, 1)"),
        (dict(beta_1=0.0), "open interval (0, 1)"),
    ],
)
def test_invalid_settings_give_a_message_not_a_traceback(x0, settings, text):
    ex = explorer.schedule_explorer(x0, **settings)  # must not raise
    assert text in ex.error
    with pytest.raises(ValueError, match=re.escape(text)):
        ex.schedule()
    data, _ = ex._repr_mimebundle_()  # displaying it must not raise either
    assert "DDPMExplorer.mount" in data["text/html"]  # the browser shows the message itself


def test_settings_from_the_browser_can_be_invalid_and_recover(x0):
    ex = explorer.schedule_explorer(x0)
    ex.set_state({"beta_1": 0.1})  # > beta_T = 0.02
    assert "beta_1 <= beta_T" in ex.error
    ex.set_state({"beta_T": 0.5})
    assert ex.error is None and ex.schedule().betas[-1] == 0.5


@pytest.mark.parametrize(
    "kwargs, text",
    [
        (dict(kind="nope"), "unknown schedule kind"),
        (dict(controls=["beta"]), "unknown controls"),
        (dict(kind="cosine", constant=True), "constant=True"),
        (dict(T=0), "T must be an integer >= 1"),
        (dict(T=10, t=11), "t must lie in 0..T"),
    ],
)
def test_mistakes_of_the_caller_raise(x0, kwargs, text):
    with pytest.raises(ValueError, match=re.escape(text)):
        explorer.schedule_explorer(x0, **kwargs)


def test_wrong_image_shape_raises():
    with pytest.raises(ValueError, match="img must be"):
        explorer.schedule_explorer(torch.zeros(2, 8, 8))


# --------------------------------------------------------------------------- the bundles (ddpm_edu.web.views)
JS = Path(views.__file__).parent / "js"


def needs(module: str) -> set[str]:
    """The modules that a module of js/ requires when it is not bundled (the last lines of each file)."""
    return set(re.findall(r'require\("\./([\w.]+\.js)"\)', (JS / module).read_text()))


@pytest.mark.parametrize("modules", [explorer.MODULES, live.MODULES], ids=["explorer", "live"])
def test_each_bundled_module_comes_after_the_modules_it_needs(modules):
    for i, m in enumerate(modules):
        assert needs(m) <= set(modules[:i]), f"{m} needs {sorted(needs(m) - set(modules[:i]))} before it"
    bundle = views.js_bundle(modules)
    assert bundle.startswith("var DDPMMessageTable = {")  # text.js reads the table as a global
    assert bundle.index("DDPMMessageTable") < bundle.index("var DDPMText")


def test_every_module_is_in_a_bundle():
    shipped = {p.name for p in JS.glob("*.js")}
    assert shipped == set(explorer.MODULES) | set(live.MODULES)


def test_the_message_table_cannot_close_the_inline_script(monkeypatch):
    real = views.js_source
    monkeypatch.setattr(views, "js_source", lambda name: '{"x": "</script>"}' if name == "messages.json" else real(name))
    assert "</script>" not in views.js_bundle(("text.js",))
