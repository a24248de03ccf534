"""The paper's baselines: one step trains both networks, each method's own details, and `toolkit train --method`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from typer.testing import CliRunner

from toolkit.aeai.config import DEFAULT_LRS, TrainConfig
from toolkit.aeai.methods import METHODS, Method
from toolkit.aeai.methods.acai import fold
from toolkit.aeai.methods.gaia import balanced_lrs, distance_loss
from toolkit.aeai.methods.vae import GaussianAutoencoder, gaussian_kl
from toolkit.aeai.nets import ConvAutoencoder
from toolkit.aeai.run import load_run
from toolkit.aeai.trainer import train
from toolkit.cli import app
from toolkit.errors import UserError

OPTIONS = {
    "vae": {"beta": 4.0},
    "acai": {"acai_lambda": 0.5, "acai_gamma": 0.2},
    "amr": {"amr_lambda": 10.0, "amr_beta": 0.0, "amr_d_steps": 5},
    "gaia": {"gaia_slope": 20.0, "gaia_distance": 5e-5},
}


def tiny(method: str, **overrides) -> Method:
    """The method on tiny nets for 32x32 images, seeded."""
    torch.manual_seed(0)
    return METHODS[method](TrainConfig(method=method, latent=8, width=4, **overrides), 32)


def images(n: int = 8) -> Tensor:
    """Smooth random images (B, 3, 32, 32) in [0, 1]."""
    return F.interpolate(torch.rand(n, 3, 4, 4, generator=torch.Generator().manual_seed(1)), size=32, mode="bilinear")


def snapshot(net: nn.Module) -> list[Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def changed(before: list[Tensor], net: nn.Module) -> bool:
    return any(not torch.equal(b, p) for b, p in zip(before, net.parameters(), strict=True))


class MeanScore(nn.Module):
    """A stand-in adversary with a known verdict: offset + scale * mean pixel, one number per image."""

    def __init__(self, offset: float = 0.0, scale: float = 1.0) -> None:
        super().__init__()
        self.offset, self.scale = offset, scale

    def forward(self, x: Tensor) -> Tensor:
        assert x.ndim == 4, "the adversary must see decoded images, not latents"
        return self.offset + self.scale * x.float().mean((1, 2, 3))


@pytest.mark.parametrize("method", sorted(METHODS))
def test_one_step_updates_the_autoencoder_and_its_adversary(method: str) -> None:
    m = tiny(method)
    optimizers = m.configure_optimizers()
    assert set(optimizers) == {"model", *m.extras}
    before = {"model": snapshot(m.model)} | {name: snapshot(net) for name, net in m.extras.items()}
    logged = m.training_step(images(), optimizers)
    assert changed(before["model"], m.model)
    for name, net in m.extras.items():
        assert changed(before[name], net), f"{method}'s {name} was not updated"
    if method not in ("ae", "vae"):
        assert m.extras, f"{method} has no adversary"
    for name, value in logged.items():
        assert value.ndim == 0 and not value.requires_grad and torch.isfinite(value), name


def test_every_method_has_its_authors_learning_rate() -> None:
    expected = {"aeai": 5e-4, "ae": 5e-4, "vae": 5e-4, "aae": 1e-4, "acai": 1e-4, "amr": 1e-4, "gaia": 1e-4}
    assert {name: TrainConfig(method=name).lr for name in METHODS} == expected
    # The torch-free table the command line reads names the same methods, in the same order, as the classes.
    assert list(DEFAULT_LRS) == list(METHODS) and all(cls.default_lr == expected[n] for n, cls in METHODS.items())
    assert TrainConfig(method="acai", lr=3e-3).lr == 3e-3
    amr = tiny("amr").configure_optimizers()
    assert all(group["betas"] == (0.5, 0.99) for opt in amr.values() for group in opt.param_groups)


def test_acai_critic_targets_the_folded_alpha_and_a_blend_of_real_and_reconstruction() -> None:
    m = tiny("acai")
    draws = torch.tensor([0.9, 0.1, 0.7, 0.3, 0.5, 0.0, 1.0, 0.6])
    m.draw_alpha = lambda n, device: draws[:n]
    m.critic = MeanScore()
    x = images()
    terms, got = m.losses(x)
    folded = torch.tensor([0.1, 0.1, 0.3, 0.3, 0.5, 0.0, 0.0, 0.4])
    assert torch.allclose(got["alpha"], folded) and torch.allclose(fold(draws), folded)
    c_mix = got["x_mix"].mean((1, 2, 3))
    c_blend = (0.2 * x + 0.8 * got["x_hat"]).mean((1, 2, 3))
    assert torch.allclose(terms["L_C_mix"], (c_mix - folded).square().mean())
    assert not torch.allclose(terms["L_C_mix"], (c_mix - draws).square().mean())  # the unfolded target
    assert torch.allclose(terms["L_C_blend"], c_blend.square().mean())
    assert torch.allclose(terms["L_C"], terms["L_C_mix"] + terms["L_C_blend"])
    mse = (got["x_hat"] - x).square().mean()
    assert torch.allclose(terms["L_AE"], mse + 0.5 * c_mix.square().mean())
    # Each code mixed with its mirror in the batch, the weight alpha on its own code.
    z = m.model.encode(x)
    z_mix = folded[:, None] * z + (1 - folded[:, None]) * z.flip(0)
    assert torch.allclose(m.model.decode(z_mix), got["x_mix"], atol=1e-6)


def test_acai_critic_loss_trains_only_the_critic() -> None:
    m = tiny("acai")
    terms, _ = m.losses(images())
    terms["L_C"].backward(inputs=list(m.critic.parameters()), retain_graph=True)
    assert all(p.grad is None for p in m.model.parameters())
    # ...but would reach the autoencoder without the separation, so the check above can fail.
    (grad,) = torch.autograd.grad(terms["L_C"], m.model.decoder.features[-2].bias)
    assert grad.abs().sum() > 0


def test_amr_discriminator_counts_reconstructions_and_mixes_as_fake() -> None:
    m = tiny("amr")
    m.discriminator = MeanScore(offset=2.0, scale=3.0)  # confident logits: real and fake labels differ a lot
    x = images()
    fakes = m.generate(x)
    terms = m.judge(x, fakes)
    d_x, d_recon, d_mix = (m.discriminator(v) for v in (x, fakes["x_hat"], fakes["x_mix"]))

    def bce(logits: Tensor, label: float) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))

    assert torch.allclose(terms["D_loss"], bce(d_x, 1) + bce(d_recon, 0) + bce(d_mix, 0))
    assert not torch.allclose(terms["D_loss"], bce(d_x, 1) + bce(d_recon, 1) + bce(d_mix, 0))
    l1 = (fakes["x_hat"] - x).abs().mean()
    assert torch.allclose(terms["L_G"], 10 * l1 + bce(d_recon, 1) + bce(d_mix, 1))
    assert sorted(fakes["perm"].tolist()) == list(range(8)) and fakes["alpha"].shape == (8,)


def test_amr_makes_d_steps_discriminator_updates_and_one_autoencoder_update_per_step() -> None:
    m = tiny("amr", amr_d_steps=3)
    optimizers = m.configure_optimizers()
    calls = {name: 0 for name in optimizers}
    for name, opt in optimizers.items():
        step = opt.step

        def counted(*args, _name=name, _step=step, **kwargs):
            calls[_name] += 1
            return _step(*args, **kwargs)

        opt.step = counted
    draws: list[dict[str, Tensor]] = []
    mixes = m.mixes

    def recorded(z: Tensor, **kwargs) -> dict[str, Tensor]:
        draws.append(mixes(z, **kwargs))
        return draws[-1]

    m.mixes = recorded
    for k in range(1, 3):
        logged = m.training_step(images(), optimizers)
        assert calls == {"model": k, "discriminator": 3 * k}
        # Adam's own counters (what a checkpoint keeps) agree, for every parameter.
        for name, steps in (("model", k), ("discriminator", 3 * k)):
            assert {int(state["step"]) for state in optimizers[name].state.values()} == {steps}, name
    # Every D update judged mixes drawn afresh, and the logged terms kept their names.
    assert len(draws) == 6 and len({tuple(d["alpha"].tolist()) for d in draws}) == 6
    expected = {"loss", "L_R", "L_G_recon", "L_G_mix", "L_G", "D_real", "D_recon", "D_mix", "D_loss", "D_acc"}
    assert set(logged) == expected


def test_amr_with_one_d_step_updates_both_networks_every_step() -> None:
    m = tiny("amr", amr_d_steps=1)
    optimizers = m.configure_optimizers()
    for _ in range(2):
        before_model, before_d = snapshot(m.model), snapshot(m.discriminator)
        m.training_step(images(), optimizers)
        assert changed(before_model, m.model) and changed(before_d, m.discriminator)


def test_amr_consistency_term_only_when_beta_is_set() -> None:
    x = images()
    with_beta, without = tiny("amr", amr_beta=1.0), tiny("amr")
    assert "L_consist" in with_beta.judge(x, with_beta.generate(x))
    assert "L_consist" not in without.judge(x, without.generate(x))


def test_vae_sums_reconstruction_over_pixels_and_kl_over_latents_then_averages_images() -> None:
    assert torch.allclose(gaussian_kl(torch.ones(2, 8), torch.zeros(2, 8)), torch.full((2,), 4.0))
    assert torch.allclose(
        gaussian_kl(torch.zeros(1, 3), torch.full((1, 3), 2.0)), torch.tensor([1.5 * (math.e**2 - 3)])
    )
    m = tiny("vae", beta=3.0)
    x = images()
    terms, got = m.losses(x)
    recon = (got["x_hat"] - x).square().sum((1, 2, 3)).mean()
    kl = 0.5 * (got["mu"].square() + got["log_var"].exp() - 1 - got["log_var"]).sum(1).mean()
    assert torch.allclose(terms["L_R"], recon) and torch.allclose(terms["KL"], kl)
    assert torch.allclose(terms["loss"], recon + 3.0 * kl)
    assert terms["L_R"] > 100 * (got["x_hat"] - x).square().mean()  # a sum over 3072 pixels, not a mean


def test_vae_encodes_to_the_posterior_mean() -> None:
    m = tiny("vae")
    assert isinstance(m.model, GaussianAutoencoder)
    m.model.eval()
    x = images()
    mu, log_var = m.model.posterior(x)
    assert mu.shape == log_var.shape == (8, 8)
    assert torch.equal(m.model.encode(x), mu) and torch.equal(m.model.encode(x), m.model.encode(x))
    assert m.model(x).shape == x.shape


def test_gaia_balanced_learning_rates_sum_to_lr_and_stay_in_range() -> None:
    lr = 1e-4
    for r_real, r_fake in [(0.0, 1.0), (1.0, 0.0), (0.3, 0.3), (0.2, 0.25), (1e3, -1e3)]:
        lr_d, lr_g = balanced_lrs(r_real, r_fake, lr, 20.0)
        assert 0 <= lr_d <= lr and 0 <= lr_g <= lr and lr_d + lr_g == pytest.approx(lr, rel=1e-6)
    assert balanced_lrs(0.5, 0.1, lr, 20.0)[0] > balanced_lrs(0.1, 0.5, lr, 20.0)[0]  # D behind on real: D faster
    assert balanced_lrs(0.3, 0.3, lr, 20.0)[0] == pytest.approx(lr / 2)
    m = tiny("gaia", lr=2e-4)
    optimizers = m.configure_optimizers()
    for _ in range(2):
        logged = m.training_step(images(), optimizers)
        lr_d, lr_g = (optimizers[name].param_groups[0]["lr"] for name in ("discriminator", "model"))
        assert lr_d == pytest.approx(logged["lr_D"].item()) and lr_g == pytest.approx(logged["lr_G"].item())
        assert 0 <= lr_d <= 2e-4 and 0 <= lr_g <= 2e-4 and lr_d + lr_g == pytest.approx(2e-4)


def test_gaia_losses_follow_the_authors_code() -> None:
    m = tiny("gaia")
    x = images()
    terms, got = m.losses(x)
    d = m.discriminator
    r_real = (x - d(x)).abs().mean()
    r_recon = (x - d(got["x_hat"])).abs().mean()
    r_mix = (got["x_mix"] - d(got["x_mix"])).abs().mean()
    assert got["x_mix"].shape == x.shape
    # D judges each image on its own (no BatchNorm), so its one pass over all three matches three passes.
    for name, value in (("R_real", r_real), ("R_fake_recon", r_recon), ("R_fake_mix", r_mix)):
        assert torch.allclose(terms[name], value, atol=1e-6), name
    p_fake = torch.sigmoid(20 * (0.5 * terms["R_fake_mix"] - terms["R_real"])).clamp(0, 0.9)
    r_fake = (terms["R_fake_recon"] + terms["R_fake_mix"]) / 2
    assert torch.allclose(terms["L_D"], (terms["R_real"] - p_fake * r_fake).clamp(-1, 1))
    p_mix = torch.sigmoid(20 * (terms["R_fake_mix"] - terms["R_fake_recon"]))
    g = p_mix * terms["R_fake_mix"] + (1 - p_mix) * terms["R_fake_recon"] + 5e-5 * terms["L_dist"]
    assert torch.allclose(terms["L_G"], g.clamp(-1, 1))
    # The distance loss is 0 when latent distances are image distances up to scale, > 0 otherwise.
    v = torch.rand(6, 10)
    assert distance_loss(v, 3 * v).item() == pytest.approx(0, abs=1e-6) and distance_loss(v, torch.rand(6, 10)) > 0


def test_gaia_discriminator_is_a_fully_convolutional_autoencoder() -> None:
    d = tiny("gaia").discriminator
    assert isinstance(d, ConvAutoencoder)
    assert not any(isinstance(layer, nn.Linear | nn.Flatten | nn.BatchNorm1d | nn.BatchNorm2d) for layer in d.modules())
    x = images()
    y = d(x)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    assert torch.allclose(d(x[:3]), y[:3], atol=1e-6)  # each image judged on its own, whatever its batch
    # Any supported size: the content path keeps a quarter of the side, the style path pools globally.
    for size in (64, 128):
        x = torch.rand(2, 3, size, size)
        assert ConvAutoencoder(size, width=2, style=4)(x).shape == x.shape
    content = d.content(images(2))
    assert content.shape == (2, 4 * 4, 8, 8)  # 4 width maps at 32 / 4 pixels: no bottleneck on the image


def test_aae_discriminator_tells_prior_samples_from_codes() -> None:
    m = tiny("aae")
    terms, got = m.losses(images())
    d_prior, d_codes = m.discriminator(got["z_prior"]), m.discriminator(got["z"])

    def bce(logits: Tensor, label: float) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))

    assert torch.allclose(terms["D_loss"], bce(d_prior, 1) + bce(d_codes, 0))
    assert torch.allclose(terms["L_AE_adv"], bce(d_codes, 1))
    assert got["z_prior"].shape == got["z"].shape


def test_unknown_method_and_bad_options_are_user_errors() -> None:
    with pytest.raises(UserError, match="unknown method 'nope'"):
        TrainConfig(method="nope").validate()
    with pytest.raises(UserError, match="--amr-d-steps"):
        TrainConfig(method="amr", amr_d_steps=0).validate()
    with pytest.raises(UserError, match="--beta"):
        TrainConfig(method="vae", beta=-1).validate()


def test_help_lists_every_method_and_its_options() -> None:
    text = CliRunner().invoke(app, ["train", "--help"], terminal_width=200).output
    for name in METHODS:
        assert name in text
    for option in ("--beta", "--acai-lambda", "--acai-gamma", "--amr-lambda", "--amr-beta", "--amr-d-steps"):
        assert option in text
    assert "--gaia-slope" in text and "--gaia-distance" in text


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from helpers import write_dataset

    return write_dataset(tmp_path_factory.mktemp("methods") / "tiny.h5")


@pytest.mark.parametrize("method", sorted(METHODS))
def test_train_command_trains_every_method_into_a_usable_run(method: str, dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / f"run-{method}"
    args = ["train", "--data", str(dataset), "--out", str(run), "--method", method, "--epochs", "1"]
    args += ["--batch-size", "8", "--latent", "8", "--width", "4", "--device", "cpu"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output + repr(done.exception)
    config = json.loads((run / "config.json").read_text())
    assert config["method"] == method and config["lr"] == METHODS[method].default_lr
    for name, value in OPTIONS.get(method, {}).items():
        assert config[name] == value, name
    (line,) = [json.loads(text) for text in (run / "metrics.jsonl").read_text().splitlines()]
    assert line["epoch"] == 1 and all(isinstance(v, float | int) for v in line.values())
    loaded = load_run(run)
    assert loaded.method == method and not loaded.model.training
    x = images(4)
    with torch.no_grad():
        z_i, z_j = loaded.model.encode(x[:2]), loaded.model.encode(x[2:])
        frames = loaded.model.decode(loaded.model.interpolate(z_i, z_j, torch.tensor([0.25, 0.75])))
        again = loaded.model.encode(x[:2])
    assert z_i.shape == (2, 8) and frames.shape == (2, 3, 32, 32) and torch.equal(z_i, again)
    assert 0 <= frames.min() and frames.max() <= 1


def test_train_command_records_a_method_option_given(dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "vae"
    args = ["train", "--data", str(dataset), "--out", str(run), "--method", "vae", "--beta", "2", "--epochs", "1"]
    args += ["--batch-size", "8", "--latent", "8", "--width", "4", "--device", "cpu", "--lr", "1e-3"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    config = json.loads((run / "config.json").read_text())
    assert config["beta"] == 2.0 and config["lr"] == 1e-3
    line = json.loads((run / "metrics.jsonl").read_text())
    assert {"L_R", "KL", "loss"} <= set(line)


@pytest.mark.parametrize("method", ["amr", "gaia"])
def test_resume_continues_a_baseline_identically(method: str, dataset: Path, tmp_path: Path) -> None:
    # AMR's fresh mixes per D update come from the checkpointed RNG state and GAIA's rates from its optimizers.
    settings = {"data": str(dataset), "batch_size": 4, "latent": 8, "width": 4, "device": "cpu", "amr_d_steps": 2}
    straight = train(TrainConfig(method=method, epochs=2, **settings), tmp_path / "straight").metrics
    train(TrainConfig(method=method, epochs=1, **settings), tmp_path / "resumed")
    resumed = train(TrainConfig(method=method, epochs=2, **settings), tmp_path / "resumed", resume=True).metrics
    assert {k: v for k, v in straight.items() if k not in ("seconds", "images_per_s")} == {
        k: v for k, v in resumed.items() if k not in ("seconds", "images_per_s")
    }
