"""The DDPM U-Net (Ho et al. 2020, appendix B; chapter 9)."""

import math

import pytest
import torch

from ddpm_edu.nets.unet import (
    PRESETS,
    AttnBlock,
    Block,
    UNet,
    count_params,
    num_groups,
    summary_markdown,
    timestep_embedding,
    unet_kwargs,
    unet_problems,
    unet_summary,
)

# Small configurations that still exercise every code path.
WITH_ATTN = dict(in_ch=2, out_ch=4, ch=48, ch_mult=(1, 3, 2), num_res_blocks=1, attn_resolutions=(8, 4),
                 dropout=0.2, image_size=16, num_heads=2)
NO_ATTN = dict(in_ch=3, ch=32, ch_mult=(2, 1), num_res_blocks=3, attn_resolutions=(), dropout=0.0, image_size=8)
CONDITIONAL = {**WITH_ATTN, "num_classes": 3}  # chapter 10: a class embedding added to the time embedding
CONFIGS = {**PRESETS, "with_attn": WITH_ATTN, "no_attn": NO_ATTN, "conditional": CONDITIONAL}


def unet_param_count(
    *,
    in_ch: int = 3,
    out_ch: int | None = None,
    ch: int = 128,
    ch_mult: tuple[int, ...] = (1, 2, 2, 2),
    num_res_blocks: int = 2,
    attn_resolutions: tuple[int, ...] = (16,),
    dropout: float = 0.1,
    image_size: int = 32,
    num_heads: int = 1,
    num_classes: int | None = None,
) -> int:
    """The parameter count of ``UNet(**kwargs)``, by arithmetic on the architecture (nothing is built).

    A k x k conv from a to b channels has k^2 a b + b parameters, a Linear a b + b, a GroupNorm 2 c, and
    an embedding of K classes and "no label" (K + 1) 4 ch.
    """
    out_ch = in_ch if out_ch is None else out_ch
    tc = 4 * ch

    def res(a: int, b: int) -> int:  # norm1, conv1, temb_proj, norm2, conv2, 1x1 skip
        return 2 * a + (9 * a * b + b) + (tc * b + b) + 2 * b + (9 * b * b + b) + ((a * b + b) if a != b else 0)

    def attn(c: int) -> int:  # norm, q, k, v, proj
        return 2 * c + 4 * (c * c + c)

    n = (ch * tc + tc) + (tc * tc + tc) + (9 * in_ch * ch + ch)  # temb MLP, conv_in
    n += (num_classes + 1) * tc if num_classes is not None else 0  # label embedding
    skips, c, r = [ch], ch, image_size
    for level, mult in enumerate(ch_mult):
        for _ in range(num_res_blocks):
            n += res(c, ch * mult) + (attn(ch * mult) if r in attn_resolutions else 0)
            c = ch * mult
            skips.append(c)
        if level != len(ch_mult) - 1:
            n += 9 * c * c + c  # Downsample
            r //= 2
            skips.append(c)
    n += 2 * res(c, c) + attn(c)  # middle
    for level, mult in reversed(list(enumerate(ch_mult))):
        for _ in range(num_res_blocks + 1):
            n += res(c + skips.pop(), ch * mult) + (attn(ch * mult) if r in attn_resolutions else 0)
            c = ch * mult
        if level != 0:
            n += 9 * c * c + c  # Upsample
            r *= 2
    return n + 2 * c + (9 * c * out_ch + out_ch)  # norm_out, conv_out


def _t(b: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(1, 1001, (b,), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", CONFIGS)
def test_param_count_matches_closed_form(name):
    model = UNet(**CONFIGS[name])
    assert count_params(model) == unet_param_count(**CONFIGS[name])


def test_cifar10_preset_is_the_paper_model():
    """The official DDPM CIFAR10 model (diffusion_tf) has 35,746,307 parameters; the paper says 35.7M."""
    n = count_params(UNet(**unet_kwargs("cifar10")))
    assert n == unet_param_count(**PRESETS["cifar10"])
    assert abs(n - 35.7e6) <= 0.005 * 35.7e6
    assert n == 35_746_307


def test_closed_form_counts_every_change():
    base = unet_param_count(**NO_ATTN)
    assert unet_param_count(**{**NO_ATTN, "attn_resolutions": (8,)}) > base
    assert unet_param_count(**{**NO_ATTN, "num_res_blocks": 4}) > base
    assert unet_param_count(**{**NO_ATTN, "out_ch": 6}) == base + 3 * (9 * 32 * 2 + 1)  # 3 more conv_out filters


@pytest.mark.parametrize("name", CONFIGS)
def test_forward_backward_shapes_and_gradients_reach_every_parameter(name):
    kw = CONFIGS[name]
    torch.manual_seed(0)  # test-local: the model's init uses the global RNG
    model = UNet(**kw)
    with torch.no_grad():  # move the zero-initialised layers off zero so every path carries gradient
        for p in model.parameters():
            p.add_(1e-2 * torch.randn_like(p))
    s = kw["image_size"]
    x = torch.randn(2, kw["in_ch"], s, s, generator=torch.Generator().manual_seed(1))
    out = model(x, _t(2))
    assert out.shape == (2, kw.get("out_ch") or kw["in_ch"], s, s)
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_untrained_model_predicts_zero():
    """conv_out starts at zero (Ho et al.'s init), so eps_hat = 0 and L_simple = 1 before training."""
    model = UNet(**NO_ATTN)
    assert torch.equal(model(torch.randn(2, 3, 8, 8), _t(2)), torch.zeros(2, 3, 8, 8))


@pytest.mark.parametrize("name", ["with_attn", "digits"])
def test_channels_last_matches_contiguous_and_eval_is_deterministic(name):
    kw = CONFIGS[name]
    torch.manual_seed(0)
    model = UNet(**kw)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1e-2 * torch.randn_like(p))
    model.eval()
    s = kw["image_size"]
    x, t = torch.randn(3, kw["in_ch"], s, s, generator=torch.Generator().manual_seed(2)), _t(3)
    with torch.no_grad():
        ref = model(x, t)
        assert torch.equal(ref, model(x, t))  # eval mode: no dropout, same output
        model_cl = model.to(memory_format=torch.channels_last)
        out = model_cl(x.contiguous(memory_format=torch.channels_last), t)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_dropout_is_active_in_training_mode():
    torch.manual_seed(0)
    model = UNet(**WITH_ATTN)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1e-2 * torch.randn_like(p))
    x, t = torch.randn(2, 2, 16, 16), _t(2)
    with torch.no_grad():
        assert not torch.equal(model(x, t), model(x, t))


def test_autocast_bf16_forward_backward():
    torch.manual_seed(0)
    model = UNet(in_ch=1, out_ch=2, ch=16, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,), image_size=8)
    x = torch.randn(2, 1, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, _t(2))
    assert out.shape == (2, 2, 8, 8) and out.dtype == torch.bfloat16
    out.float().square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_attention_block_matches_softmax_formula():
    """AttnBlock(x) = x + proj(softmax(q k^T / sqrt(d)) v) per head, over the H*W positions."""
    torch.manual_seed(0)
    blk = AttnBlock(8, num_heads=2)
    with torch.no_grad():
        blk.proj.weight.normal_()
    x = torch.randn(2, 8, 3, 5)
    hn = blk.norm(x)
    q, k, v = (lin(hn).reshape(2, 2, 4, 15) for lin in (blk.q, blk.k, blk.v))  # (B, heads, d, HW)
    w = torch.softmax(torch.einsum("bhdi,bhdj->bhij", q, k) / math.sqrt(4), dim=-1)  # (B, heads, HW, HW)
    h = torch.einsum("bhij,bhdj->bhdi", w, v).reshape(2, 8, 3, 5)
    torch.testing.assert_close(blk(x), x + blk.proj(h))


def test_timestep_embedding_formula():
    t, dim = torch.tensor([0, 1, 7, 250, 1000]), 16
    emb = timestep_embedding(t, dim)
    assert emb.shape == (5, dim) and emb.dtype == torch.float32
    h = dim // 2
    w = torch.tensor([10000.0 ** (-i / (h - 1)) for i in range(h)], dtype=torch.float64)
    arg = t.double()[:, None] * w
    torch.testing.assert_close(emb.double(), torch.cat([arg.sin(), arg.cos()], 1), atol=1e-4, rtol=0)
    torch.testing.assert_close(emb[0], torch.cat([torch.zeros(h), torch.ones(h)]))  # t = 0
    assert torch.equal(timestep_embedding(t.float(), dim), emb)  # float t works the same
    odd = timestep_embedding(t, 9)
    assert odd.shape == (5, 9) and torch.equal(odd[:, 8], torch.zeros(5))


def test_timestep_embeddings_are_distinct():
    emb = timestep_embedding(torch.arange(1, 1001), 128).double()
    d = torch.cdist(emb, emb) + torch.eye(1000) * 1e9
    assert d.min() > 1e-3


def test_num_groups_rule():
    assert [num_groups(c) for c in (32, 64, 128, 256, 48, 24, 3, 100)] == [32, 32, 32, 32, 24, 24, 3, 25]
    for c in range(1, 300):
        g = num_groups(c)
        assert c % g == 0 and g <= 32 and not any(c % h == 0 for h in range(g + 1, 33))


def test_presets_and_errors():
    m = UNet(**unet_kwargs("digits", dropout=0.3))
    assert m.down[0].res.dropout == 0.3 and m.conv_in.in_channels == 1
    with pytest.raises(ValueError, match="cifar10.*cifar10-small.*digits"):
        unet_kwargs("imagenet")
    with pytest.raises(ValueError, match="image_size"):
        UNet(ch_mult=(1, 2, 2, 2), image_size=12)
    with pytest.raises(ValueError, match="num_heads"):
        UNet(**{**WITH_ATTN, "num_heads": 5})


def test_unet_kwargs_merges_defaults_preset_and_overrides():
    assert unet_kwargs("digits") == {**unet_kwargs(), **PRESETS["digits"]}
    assert unet_kwargs("digits", ch=None, dropout=None) == unet_kwargs("digits")  # None: the preset's value
    assert unet_kwargs("digits", ch=16, image_size=16)["ch"] == 16
    assert unet_param_count(**unet_kwargs(None, ch=16)) == count_params(UNet(ch=16))  # None: UNet's defaults
    assert unet_param_count(**unet_kwargs()) == count_params(UNet())


def test_every_bad_argument_is_named():
    bad = dict(ch=0, ch_mult=(), num_res_blocks=0, dropout=1.0, num_heads=0)
    assert set(unet_problems(**bad)) == set(bad)
    assert set(unet_problems("digits", ch_mult=(1, 2, 2, 2, 2))) == {"image_size"}  # 8 is not divisible by 2^4
    assert unet_problems("digits") == {} and set(unet_problems("imagenet")) == {"preset"}
    with pytest.raises(ValueError) as e:
        UNet(**bad)
    assert all(msg in str(e.value) for msg in unet_problems(**bad).values())  # the constructor names them all
    with pytest.raises(ValueError) as e:
        unet_kwargs("digits", dropout=-0.5, num_res_blocks=0)
    assert unet_problems("digits", dropout=-0.5)["dropout"] in str(e.value) and "num_res_blocks" in str(e.value)


def expected_blocks(*, in_ch: int = 3, out_ch: int | None = None, ch: int = 128, ch_mult: tuple[int, ...] = (1, 2, 2, 2),
                    num_res_blocks: int = 2, image_size: int = 32, **_) -> list[tuple[str, tuple[int, ...]]]:
    """(block name, output shape without the batch) in forward order, by arithmetic on the architecture."""
    out_ch = in_ch if out_ch is None else out_ch
    rows, i, r, c = [("temb", (4 * ch,)), ("conv_in", (ch, image_size, image_size))], 0, image_size, ch
    for level, mult in enumerate(ch_mult):
        for _ in range(num_res_blocks):
            c = ch * mult
            rows.append((f"down.{i}", (c, r, r)))
            i += 1
        if level != len(ch_mult) - 1:
            r //= 2
            rows.append((f"down.{i}", (c, r, r)))
            i += 1
    rows += [(name, (c, r, r)) for name in ("mid1", "mid_attn", "mid2")]
    i = 0
    for level, mult in reversed(list(enumerate(ch_mult))):
        for _ in range(num_res_blocks + 1):
            c = ch * mult
            rows.append((f"up.{i}", (c, r, r)))
            i += 1
        if level != 0:
            r *= 2
            rows.append((f"up.{i}", (c, r, r)))
            i += 1
    return rows + [("norm_out", (c, r, r)), ("conv_out", (out_ch, r, r))]


@pytest.mark.parametrize("name", ["digits", "with_attn", "no_attn"])
def test_unet_summary_rows_add_up_and_have_the_forward_shapes(name):
    kw = CONFIGS[name]
    model = UNet(**kw).eval()
    x = torch.randn(3, kw["in_ch"], kw["image_size"], kw["image_size"], generator=torch.Generator().manual_seed(0))
    rows = unet_summary(model, x, _t(3))
    assert sum(r.params for r in rows) == count_params(model) == unet_param_count(**kw)
    assert [(r.name, r.shape) for r in rows] == [(n, (3, *s)) for n, s in expected_blocks(**kw)]
    assert rows[-1].shape == tuple(model(x, _t(3)).shape)
    assert [r.kind.startswith("Block (ResBlock + AttnBlock)") for r in rows] == [
        isinstance(m, Block) and m.attn is not None for m in (model.get_submodule(r.name) for r in rows)]
    table = summary_markdown(rows).splitlines()
    assert len(table) == len(rows) + 3 and f"**{count_params(model):,}**" in table[-1]


def test_unet_summary_works_for_the_toy_mlp_and_names_blocks_that_never_run():
    from ddpm_edu.nets.mlp import MLPDenoiser

    mlp = MLPDenoiser(hidden=16, layers=2, t_dim=8)
    rows = unet_summary(mlp, torch.zeros(4, 2), _t(4))
    assert [r.name for r in rows] == ["inp", "t_mlp", "hidden.0", "hidden.1", "out"]  # the order they run in
    assert sum(r.params for r in rows) == count_params(mlp) and rows[-1].shape == (4, 2)

    class Idle(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)

        def forward(self, x, t):
            return self.used(x)

    with pytest.raises(ValueError, match="unused"):
        unet_summary(Idle(), torch.zeros(1, 2), _t(1))


# --------------------------------------------------------------------------- the conditional net (chapter 10)
def _perturbed(model: UNet, seed: int = 0) -> UNet:
    """``model`` with every weight moved off its init (zero-initialised layers included), in eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model.eval()


@pytest.mark.parametrize("name", ["digits", "with_attn"])
def test_an_unconditional_net_is_the_conditional_one_without_its_label_embedding(name):
    """Cached models and checkpoints of unconditional nets still load: num_classes=None adds no parameter, and a
    conditional net built from the same seed shares every other weight, the label embedding built last."""
    kw = CONFIGS[name]
    torch.manual_seed(0)
    plain = UNet(**kw)
    torch.manual_seed(0)
    cond = UNet(**kw, num_classes=10)
    assert plain.num_classes is None and plain.label_emb is None
    assert "label_emb" not in dict(plain.named_modules())
    assert list(cond.state_dict()) == list(plain.state_dict()) + ["label_emb.weight"]
    assert cond.label_emb.weight.shape == (11, 4 * kw["ch"])
    assert all(torch.equal(v, cond.state_dict()[k]) for k, v in plain.state_dict().items())

    _perturbed(plain)
    cond.load_state_dict({**plain.state_dict(), "label_emb.weight": torch.zeros(11, 4 * kw["ch"])})
    cond.eval()
    s = kw["image_size"]
    x = torch.randn(4, kw["in_ch"], s, s, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # a zero embedding: the label adds nothing, and the two nets agree bit for bit
        assert torch.equal(cond(x, _t(4), torch.tensor([0, 3, 9, 10])), plain(x, _t(4)))


def test_labels_condition_the_output_and_none_means_no_label():
    model = _perturbed(UNet(**CONDITIONAL))
    x, t = torch.randn(4, 2, 16, 16, generator=torch.Generator().manual_seed(3)), _t(4)
    with torch.no_grad():
        outs = [model(x, t, torch.full((4,), k)) for k in range(4)]  # classes 0, 1, 2 and "no label" (3)
        assert torch.equal(model(x, t), outs[3]) and torch.equal(model(x, t, None), outs[3])
        assert all(not torch.allclose(outs[i], outs[j]) for i in range(4) for j in range(i))
        mixed = model(x, t, torch.tensor([2, 0, 3, 1]))
        for row, k in enumerate([2, 0, 3, 1]):  # each row sees its own label only
            torch.testing.assert_close(mixed[row], outs[k][row], rtol=0, atol=1e-5)


def test_training_with_labels_trains_the_rows_it_uses():
    model = _perturbed(UNet(**CONDITIONAL)).train()
    x = torch.randn(3, 2, 16, 16, generator=torch.Generator().manual_seed(4))
    model(x, _t(3), torch.tensor([0, 3, 0])).square().mean().backward()  # class 0 and "no label"
    used = model.label_emb.weight.grad.abs().sum(1) > 0
    assert used.tolist() == [True, False, False, True]


def test_label_errors_name_the_value_and_the_range():
    x, t = torch.zeros(2, 2, 16, 16), _t(2)
    cond, plain = UNet(**CONDITIONAL).eval(), UNet(**WITH_ATTN).eval()
    with pytest.raises(ValueError, match="unconditional.*num_classes=None"):
        plain(x, t, torch.tensor([0, 1]))
    for bad in (4, -1):
        with pytest.raises(ValueError, match=rf"label {bad} is outside this model's classes 0\.\.2 \(3 means no label\)"):
            cond(x, t, torch.tensor([1, bad]))
    for y, words in [(torch.tensor([0.0, 1.0]), "torch.float32"), (torch.tensor([True, False]), "torch.bool"),
                     (torch.tensor([0, 1, 2]), r"shape \(3,\)"), (1, "int")]:
        with pytest.raises(ValueError, match=rf"y must be a \(2,\) integer tensor.*{words}"):
            cond(x, t, y)
    assert set(unet_problems(num_classes=0)) == {"num_classes"} and set(unet_problems(num_classes=True)) == {"num_classes"}
    with pytest.raises(ValueError, match="num_classes must be None"):
        UNet(**{**CONDITIONAL, "num_classes": 2.5})


def test_a_training_step_reads_no_label_back(monkeypatch):
    """In training mode the labels are not checked, so a step never waits for the accelerator to read them."""
    from conftest import no_host_reads

    model = UNet(**CONDITIONAL).train()
    x, t, y = torch.zeros(2, 2, 16, 16), _t(2), torch.tensor([2, 3])
    with monkeypatch.context() as m:
        reads = no_host_reads(m)
        model(x, t, y).square().mean().backward()
    assert reads == []


def test_the_summary_lists_the_label_embedding():
    model = UNet(**CONDITIONAL).eval()
    rows = unet_summary(model, torch.zeros(2, 2, 16, 16), _t(2))
    assert sum(r.params for r in rows) == count_params(model) == unet_param_count(**CONDITIONAL)
    assert ("label_emb", "Embedding", (2, 4 * 48)) in [(r.name, r.kind, r.shape) for r in rows]
