"""A published curve without an lr column, given the schedule it was trained on (``predict --schedule``),
is predicted as if the LR had been logged: the stated schedule is the trainer's own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.cli import main
from scalinglab.errors import ConfigError
from scalinglab.laws.curves import KnownSchedule, load_curves, predict_curve

HELDOUT = Path(__file__).parent / "data" / "curves" / "heldout"
# Two of the held-out runs and their settings (heldout/README.md): a cosine to 10% and a WSD run.
RUNS = {
    "h1_cos_2500_d64.csv": "cosine,steps=2500,warmup_steps=50",
    "h2_wsd20_2000_d48.csv": "wsd,steps=2000,warmup_steps=50,decay_fraction=0.2",
}


def without_lr(name: str, tmp_path: Path) -> Path:
    path = tmp_path / name
    pd.read_csv(HELDOUT / name).drop(columns=["lr"]).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name", RUNS)
@pytest.mark.parametrize("x", ["step", "tokens"])
def test_a_stated_schedule_predicts_as_the_logged_lr(name: str, x: str, tmp_path: Path) -> None:
    (logged,) = load_curves(HELDOUT / name, x=x)
    (stated,) = load_curves(without_lr(name, tmp_path), x=x, schedule=KnownSchedule.parse(RUNS[name]))
    assert stated.final_step == logged.final_step and stated.warmup_end == logged.warmup_end
    assert stated.x_per_step == logged.x_per_step
    # the trainer logged lr_at(s - 1) at step s: the same schedule, up to the peak's units
    assert np.allclose(stated.schedule[1] * logged.schedule[1].max(), logged.schedule[1], rtol=1e-9)
    until = 0.3 * logged.step[-1]
    a, b = predict_curve([logged], fit_until=until), predict_curve([stated], fit_until=until)
    assert "Tissue" in b.law
    assert b.loss == pytest.approx(a.loss, rel=1e-6)
    assert b.interval == pytest.approx(a.interval, rel=1e-5)  # its rollout's shorter fit converges to a few 1e-6
    # without it the same table has no schedule: L(S), which cannot see the decay
    (blind,) = load_curves(without_lr(name, tmp_path), x=x)
    assert blind.schedule is None and "Tissue" not in predict_curve([blind], logged.step[-1], until).law


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("linear,steps=10", "must start with cosine, wsd or constant"),
        ("cosine", "needs steps=S"),
        ("cosine,steps=10.5", "needs steps=S"),
        ("cosine,steps=100,warmup=5", "is not one of steps=, tokens_per_step="),
        ("cosine,steps=100,min_lr_ratio=low", "min_lr_ratio='low' is not a number"),
        ("cosine,steps=100,min_lr_ratio=2", "schedule.min_lr_ratio must be in [0, 1]"),
        ("wsd,steps=100,tokens_per_step=0", "tokens_per_step must be positive"),
    ],
)
def test_a_bad_schedule_says_what_to_write(spec: str, says: str) -> None:
    with pytest.raises(ConfigError) as e:
        KnownSchedule.parse(spec)
    assert says in str(e.value)


def test_predict_refuses_a_schedule_it_cannot_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "h1_cos_2500_d64.csv"
    cases = [
        ([str(HELDOUT / name), "--schedule", RUNS[name]], "has an lr column"),  # the logged LR is the schedule as it ran
        ([str(without_lr(name, tmp_path)), "--schedule", "cosine,steps=2000"], "past its schedule's end at 2000"),
    ]
    tokens_only = tmp_path / "tokens.csv"
    pd.read_csv(HELDOUT / name).drop(columns=["lr", "step"]).to_csv(tokens_only, index=False)
    cases.append(([str(tokens_only), "--x", "tokens", "--schedule", RUNS[name]], "give tokens_per_step="))
    for argv, says in cases:
        assert main(["predict", *argv]) == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err
    # with tokens per step stated, the tokens-only table is predicted from its schedule
    argv = [str(tokens_only), "--x", "tokens", "--fit-until", "5e5", "--schedule", f"{RUNS[name]},tokens_per_step=1024"]
    assert main(["predict", *argv]) == 0
    out = capsys.readouterr().out
    assert "Tissue" in out and "loss at tokens 2.56e+06" in out  # the schedule's last step, 2,500 x 1,024 tokens


def test_an_lr_column_logged_less_often_than_the_loss_is_still_read(tmp_path: Path) -> None:
    """Only a stated schedule must cover every point: a logged lr that stops a few rows early is interpolated as before."""
    path = tmp_path / "sparse_lr.csv"
    table = pd.read_csv(HELDOUT / "h1_cos_2500_d64.csv")
    table.loc[table.index[-5:], "lr"] = np.nan
    table.to_csv(path, index=False)
    (curve,) = load_curves(path)
    assert curve.schedule is not None and curve.step[-1] > curve.final_step


def test_a_wandb_style_export_is_read_through_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--columns maps a curve CSV's own names, as in fit: the same prediction as the table under ours."""
    name = "h1_cos_2500_d64.csv"
    theirs = tmp_path / "wandb.csv"
    pd.read_csv(HELDOUT / name).rename(columns={"step": "Step", "loss": "train/loss", "lr": "train/lr"}).to_csv(theirs, index=False)
    mapping = "step=Step,loss=train/loss,lr=train/lr"
    (ours,) = load_curves(HELDOUT / name)
    (mapped,) = load_curves(theirs, columns=mapping)
    a, b = predict_curve([ours], fit_until=500.0), predict_curve([mapped], fit_until=500.0)
    assert "Tissue" in b.law and b.loss == a.loss and b.interval == a.interval
    assert main(["predict", str(theirs), "--fit-until", "500"]) == 2
    assert "needs columns step, loss" in capsys.readouterr().err
    assert main(["predict", str(theirs), "--fit-until", "500", "--columns", "loss=val/loss"]) == 2
    assert "--columns names 'val/loss', not in 'wandb.csv'" in capsys.readouterr().err
    assert main(["predict", str(theirs), "--fit-until", "500", "--columns", mapping]) == 0
