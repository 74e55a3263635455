"""The command-line contract, through subprocess, and the report on tiny or degenerate data."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.simulate import simulate_export, simulate_regression

REPO = Path(__file__).resolve().parents[2]
CONTRACT_KEYS = {"n", "coefficients", "r2", "conditional_effects", "johnson_neyman"}
COEFFICIENT_KEYS = {"estimate", "se", "t", "p", "ci_low", "ci_high"}
EFFECT_KEYS = {"moderator_value", "effect", "se", "p", "ci_low", "ci_high"}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "analysis", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def moderation_csv(tmp_path_factory) -> Path:
    data = simulate_regression(300, np.random.default_rng(42))
    data["age"] = np.random.default_rng(43).normal(40, 10, len(data))
    data["group"] = np.random.default_rng(44).choice(["a", "b", "c"], len(data))
    data["label"] = "text"
    path = tmp_path_factory.mktemp("cli") / "data.csv"
    data.to_csv(path, index=False)
    return path


def test_moderation_json_contract_and_numbers(moderation_csv):
    completed = run_cli("moderation", "--data", str(moderation_csv), "--outcome", "y",
                        "--focal", "x", "--moderator", "w", "--covariates", "age",
                        "--se", "HC3", "--json")
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.strip().splitlines()
    assert len(lines) == 1
    payload = json.loads(lines[0])
    assert set(payload) == CONTRACT_KEYS
    assert set(payload["coefficients"]) == {"Intercept", "x", "w", "x:w", "age"}
    assert all(set(v) == COEFFICIENT_KEYS for v in payload["coefficients"].values())
    assert set(payload["johnson_neyman"]) == {"bounds", "significant_where"}
    assert payload["n"] == 300
    # Independent computation: numpy least squares and the HC3 sandwich.
    data = pd.read_csv(moderation_csv)
    x = np.column_stack([np.ones(300), data["x"], data["w"], data["x"] * data["w"], data["age"]])
    beta, *_ = np.linalg.lstsq(x, data["y"].to_numpy(), rcond=None)
    resid = data["y"].to_numpy() - x @ beta
    bread = np.linalg.inv(x.T @ x)
    leverage = np.sum((x @ bread) * x, axis=1)
    cov = bread @ (x.T * (resid**2 / (1 - leverage) ** 2)) @ x @ bread
    assert payload["coefficients"]["x:w"]["estimate"] == pytest.approx(beta[3], rel=1e-8)
    assert payload["coefficients"]["x:w"]["se"] == pytest.approx(np.sqrt(cov[3, 3]), rel=1e-7)
    r2 = 1 - resid @ resid / np.sum((data["y"] - data["y"].mean()) ** 2)
    assert payload["r2"] == pytest.approx(r2, rel=1e-9)
    # Default --at: mean - 1 sd, mean, mean + 1 sd of the moderator.
    mean, sd = data["w"].mean(), data["w"].std()
    values = [e["moderator_value"] for e in payload["conditional_effects"]]
    assert values == pytest.approx([mean - sd, mean, mean + sd])
    assert all(set(e) == EFFECT_KEYS for e in payload["conditional_effects"])
    middle = payload["conditional_effects"][1]
    se = np.sqrt(cov[1, 1] + mean**2 * cov[3, 3] + 2 * mean * cov[1, 3])
    assert middle["effect"] == pytest.approx(beta[1] + mean * beta[3], rel=1e-8)
    assert middle["se"] == pytest.approx(se, rel=1e-7)
    assert middle["p"] == pytest.approx(2 * stats.t.sf(abs(middle["effect"] / se), 295),
                                        rel=1e-5, abs=1e-300)


def test_moderation_at_values_and_categorical(moderation_csv):
    completed = run_cli("moderation", "--data", str(moderation_csv), "--outcome", "y", "--focal",
                        "x", "--moderator", "w", "--at", "-1", "0", "2", "--json")
    payload = json.loads(completed.stdout)
    assert [e["moderator_value"] for e in payload["conditional_effects"]] == [-1, 0, 2]
    completed = run_cli("moderation", "--data", str(moderation_csv), "--outcome", "y", "--focal",
                        "x", "--moderator", "group", "--categorical", "--json")
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout)
    assert {"x", "C(group)[T.b]", "C(group)[T.c]", "x:C(group)[T.b]",
            "x:C(group)[T.c]"} <= set(payload["coefficients"])
    effects = {e["moderator_value"]: e["effect"] for e in payload["conditional_effects"]}
    coefficients = payload["coefficients"]
    assert effects["a"] == pytest.approx(coefficients["x"]["estimate"])
    assert effects["b"] == pytest.approx(coefficients["x"]["estimate"]
                                         + coefficients["x:C(group)[T.b]"]["estimate"])
    assert payload["johnson_neyman"]["bounds"] == []


@pytest.mark.parametrize("args, message", [
    (["--moderator", "nope"], "nope"),
    (["--moderator", "label"], "not numeric"),
])
def test_moderation_errors_exit_2_without_traceback(moderation_csv, args, message):
    completed = run_cli("moderation", "--data", str(moderation_csv), "--outcome", "y",
                        "--focal", "x", *args, "--json")
    assert completed.returncode == 2
    assert message in completed.stderr and "Traceback" not in completed.stderr
    assert completed.stdout == ""


def test_moderation_too_few_rows_and_missing_file(tmp_path):
    tiny = tmp_path / "tiny.csv"
    pd.DataFrame({"y": [1.0, 2, 3, 4], "x": [0, 1, 0, 1], "w": [1.0, 2, 3, 5]}).to_csv(tiny)
    completed = run_cli("moderation", "--data", str(tiny), "--outcome", "y", "--focal", "x",
                        "--moderator", "w", "--json")
    assert completed.returncode == 2 and "too few" in completed.stderr
    assert "Traceback" not in completed.stderr
    completed = run_cli("moderation", "--data", str(tmp_path / "absent.csv"), "--outcome", "y",
                        "--focal", "x", "--moderator", "w", "--json")
    assert completed.returncode == 2 and "Traceback" not in completed.stderr


def test_post_treatment_moderator_warns_on_stderr(tmp_path):
    data = simulate_regression(100, np.random.default_rng(1)).rename(columns={"w": "emo_anxiety"})
    path = tmp_path / "emo.csv"
    data.to_csv(path, index=False)
    completed = run_cli("moderation", "--data", str(path), "--outcome", "y", "--focal", "x",
                        "--moderator", "emo_anxiety", "--json")
    assert completed.returncode == 0
    assert "post-treatment" in completed.stderr
    json.loads(completed.stdout)


def degenerate_export() -> pd.DataFrame:
    """30 respondents: one arm with 2 people, one empty, a constant covariate, odd states."""
    frame = simulate_export(30, seed=9)
    arms = (["control"] * 9 + ["distant"] * 9 + ["house"] * 2 + ["district_landmark"] * 8
            + [None] * 2)
    frame["arm"] = arms
    frame["state"] = ["completed"] * 25 + ["abandoned"] * 3 + ["screened_out"] * 2
    frame["ideology"] = 5.0  # constant moderator and covariate
    frame["letter_signed"] = 0.0  # constant binary outcome
    return frame


def test_report_on_degenerate_demo_data_skips_with_notes(tmp_path):
    export = tmp_path / "demo.csv"
    degenerate_export().to_csv(export, index=False)
    out = tmp_path / "report"
    completed = run_cli("report", "--input", str(export), "--out", str(out), "--power-reps", "50")
    assert completed.returncode == 0, completed.stderr
    page = (out / "index.html").read_text()
    assert "provincial_landmark left out" in page  # the empty arm
    assert "ideology" in page and "constant" in page
    assert "Treatment effects of each arm versus control" in page
    effects = pd.read_csv(out / "tables" / "effects.csv")
    assert "house" in set(effects["arm"])  # two people still give an estimate
    assert (out / "tables" / "funnel.tex").exists()


def test_a_report_on_an_empty_export_says_there_is_no_data(tmp_path):
    export = tmp_path / "empty.csv"
    simulate_export(50, seed=1).iloc[:0].to_csv(export, index=False)
    out = tmp_path / "report"
    completed = run_cli("report", "--input", str(export), "--out", str(out), "--power-reps", "10")
    assert completed.returncode == 0, completed.stderr
    assert "NO DATA: the export has no participants" in (out / "index.html").read_text()


def test_report_full_run_on_simulated_parquet(tmp_path):
    export = tmp_path / "sim.parquet"
    simulate_export(1200, seed=4).to_parquet(export, index=False)
    out = tmp_path / "report"
    completed = run_cli("report", "--input", str(export), "--out", str(out), "--power-reps", "50")
    assert completed.returncode == 0, completed.stderr
    page = (out / "index.html").read_text()
    assert "post-treatment" in page.lower()
    for name in ("effects", "contrasts", "balance", "attrition", "funnel", "scales", "binary",
                 "moderation_coefficients", "moderation_conditional_effects", "johnson_neyman",
                 "power", "h1a_joint"):
        assert (out / "tables" / f"{name}.csv").exists(), name
        assert (out / "tables" / f"{name}.tex").read_text().startswith("\\begin{table}")
    moderation = pd.read_csv(out / "tables" / "moderation_coefficients.csv")
    flags = moderation.groupby("moderator")["post_treatment"].first()
    assert flags["emo_anxiety"] and not flags["ideology"]
    figures = list((out / "figures").glob("*.png"))
    assert any(f.name.startswith("effects_") for f in figures)
    assert any("emo_hope" in f.name for f in figures)
    contrasts = pd.read_csv(out / "tables" / "contrasts.csv")
    assert {"H1a", "H1b", "H1c"} <= set(contrasts["hypothesis"])


def test_package_imports_without_django():
    code = ("import sys, analysis.report, analysis.cli, analysis.moderation, analysis.plots; "
            "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules)")
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                               text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr


def test_power_command_prints_table_as_json():
    completed = run_cli("power", "--n", "1000", "--effects", "0.1", "0.3", "0.2", "0.15",
                        "--reps", "200", "--json")
    assert completed.returncode == 0, completed.stderr
    rows = json.loads(completed.stdout)
    by_contrast = {row["contrast"]: row for row in rows}
    assert by_contrast["house - control"]["power"] > by_contrast["distant - control"]["power"]
    assert {"H1a", "H1b", "H1c"} <= {row["hypothesis"] for row in rows}
