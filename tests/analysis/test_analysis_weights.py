"""Census weights, pre-registered exclusions and quality-flag balance (issue 24).

Planted cases: a sample biased on age with an age-moderated effect (weights must recover the
population effect better than the raw sample), a flag raised by the treatment (the balance test
must call it post-treatment selection), answers the census has no category for.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.exclusions import apply_exclusions, flag_balance_table, independence_test
from analysis.io import prepare
from analysis.simulate import simulate_export
from analysis.variables import default_variables
from analysis.weights import (
    MARGINS_FILE_NAME,
    WeightingError,
    default_margins_path,
    rake_to_margins,
    read_margins,
    weight_completes,
)

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg", **(env or {})}
    return subprocess.run([sys.executable, "-m", "analysis", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def census_path() -> Path:
    path = default_margins_path() or REPO.parent / "shared" / "data" / MARGINS_FILE_NAME
    if not path.is_file():
        pytest.skip("census margins not available (FLOODLIGHT_REFERENCE_DATA)")
    return path


@pytest.fixture(scope="module")
def census(census_path):
    return read_margins(census_path)


@pytest.fixture(scope="module")
def variables():
    return default_variables()


def small_margins(tmp_path: Path) -> Path:
    rows = [("AA", "age_group", "18-39", 600), ("AA", "age_group", "40+", 400),
            ("AA", "gender", "female", 510), ("AA", "gender", "male", 490),
            ("BB/CC", "age_group", "18-39", 300), ("BB/CC", "age_group", "40+", 700),
            ("BB/CC", "gender", "female", 300), ("BB/CC", "gender", "male", 700)]
    path = tmp_path / "margins.csv"
    pd.DataFrame(rows, columns=["province_code", "variable", "category", "count"]).to_csv(
        path, index=False)
    return path


def test_the_census_file_is_read_with_its_combined_territories(census):
    assert census.age_groups == ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
    assert "NT/NU" in census.provinces
    assert census.province_of()["NU"] == census.province_of()["NT"] == "NT/NU"
    assert census.age.sum() == 30_978_665  # the README's sum of adults


def test_weights_cli_reproduces_the_census_margins_and_prints_design_effect(tmp_path,
                                                                            census_path,
                                                                            census, variables):
    export = tmp_path / "export.csv"
    simulate_export(4000, seed=7, margins=census, age_bias=0.3).to_csv(export, index=False)
    out = tmp_path / "weights.csv"
    completed = run_cli("weights", "--input", str(export), "--margins", str(census_path),
                        "--out", str(out), "--json")
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout)
    assert {"target_margins", "achieved_margins", "design_effect", "effective_n"} <= set(payload)
    weights = pd.read_csv(out, dtype={"participant_id": str})
    assert list(weights.columns) == ["participant_id", "weight"]
    # Independently: the weighted sample's province x age cells against the census counts.
    frame = prepare(pd.read_csv(export, dtype={"participant_id": str, "province_code": str}),
                    variables).merge(weights, on="participant_id")
    assert len(frame) == len(weights) == payload["n"]
    assert frame["state"].eq("completed").all() and frame["excluded"].eq(0).all()
    province = frame["province_code"].replace({"NT": "NT/NU", "NU": "NT/NU"})
    group = pd.cut(frame["age"], [18, 25, 35, 45, 55, 65, 200], right=False,
                   labels=list(census.age_groups))
    target = 100 * census.age / census.age.sum()
    for w, limit in ((pd.Series(1.0, index=frame.index), None), (frame["weight"], 0.5)):
        cells = 100 * w.groupby([province, group], observed=False).sum() / w.sum()
        cells.index.names = target.index.names
        differences = (cells.reindex(target.index, fill_value=0) - target).abs()
        if limit is None:
            assert differences.max() > 2  # the raw sample is far from Canada...
        else:
            assert differences.max() <= limit  # ...the weighted one within 0.5 points
        national = 100 * w.groupby(group, observed=False).sum() / w.sum()
        national_target = 100 * census.age.groupby(level="category").sum() / census.age.sum()
        assert ((national - national_target).abs().max() <= 0.5) == (limit is not None)
    assert payload["max_abs_difference_pp"] <= 0.5
    assert payload["achieved_margins"]["age_group"]["ON"]["65+"] == pytest.approx(
        100 * frame.loc[province.eq("ON") & group.eq("65+"), "weight"].sum()
        / frame["weight"].sum(), abs=1e-6)
    w = weights["weight"].to_numpy()
    assert w.mean() == pytest.approx(1.0)
    assert w.max() <= 5.0 + 1e-3  # the documented cap
    assert payload["design_effect"] == pytest.approx(len(w) * (w ** 2).sum() / w.sum() ** 2)
    assert payload["effective_n"] == pytest.approx(w.sum() ** 2 / (w ** 2).sum())
    assert payload["design_effect"] > 1.05
    # Without --json the same figures are printed for a person.
    completed = run_cli("weights", "--input", str(export), "--margins", str(census_path),
                        "--out", str(out))
    assert completed.returncode == 0, completed.stderr
    assert "design effect (Kish)" in completed.stdout and "effective n" in completed.stdout
    assert "age_group ON 65+" in completed.stdout


def test_weighted_effects_recover_an_age_moderated_population_effect(census, variables):
    from analysis.effects import estimate_effects

    def house_effect(frame, weights=None):
        table, _, _ = estimate_effects(frame, variables, outcomes=["dv_wtp"], weights=weights)
        return float(table.loc[table["arm"] == "house", "estimate"].iloc[0])

    # The population's effect: a large census-representative sample (no selection).
    population = prepare(simulate_export(40_000, seed=21, margins=census,
                                         age_interaction=0.5), variables)
    truth = house_effect(population)
    # An online panel: the young over-sampled; the effect grows with age.
    sample = prepare(simulate_export(5000, seed=22, margins=census, age_bias=0.4,
                                     age_interaction=0.5), variables)
    result, _ = weight_completes(sample, census, variables)
    unweighted = house_effect(sample.loc[result.weights.index])
    weighted = house_effect(sample, result.weights)
    assert abs(unweighted - truth) > 0.15  # the planted bias is there
    assert abs(weighted - truth) < abs(unweighted - truth) / 2
    assert abs(weighted - truth) < 0.2  # about 2.5 standard errors; the raw bias is 0.5


def test_unknown_gender_keeps_its_share_and_the_census_ratio_applies_to_the_others(tmp_path):
    margins = read_margins(small_margins(tmp_path))
    rng = np.random.default_rng(3)
    n = 600
    frame = pd.DataFrame({
        "participant_id": [f"R{i}" for i in range(n)],
        "province_code": rng.choice(["AA", "BB", "CC"], n, p=[0.6, 0.2, 0.2]),
        "age": rng.choice([25.0, 55.0, np.nan], n, p=[0.7, 0.29, 0.01]),
        # 1 woman, 2 man, 3 another gender, NaN prefer not to say (99 made missing)
        "gender": rng.choice([1.0, 2.0, 3.0, np.nan], n, p=[0.6, 0.3, 0.05, 0.05]),
    })
    result = rake_to_margins(frame, margins, cap=None)
    w = result.weights
    assert w.mean() == pytest.approx(1.0)
    province = frame["province_code"].replace({"BB": "BB/CC", "CC": "BB/CC"})
    for code, female_share in (("AA", 0.51), ("BB/CC", 0.30)):
        here = province == code
        unknown = here & ~frame["gender"].isin([1, 2])
        # Their weighted share of the province is their share of its respondents...
        assert w[unknown].sum() / w[here].sum() == pytest.approx(unknown.sum() / here.sum(),
                                                                 abs=1e-3)
        # ...and among women and men the census ratio holds.
        women = w[here & (frame["gender"] == 1)].sum()
        men = w[here & (frame["gender"] == 2)].sum()
        assert women / (women + men) == pytest.approx(female_share, abs=1e-3)
    assert w[province == "AA"].sum() / w.sum() == pytest.approx(0.5, abs=1e-3)
    assert any("no usable gender" in note for note in result.notes)
    assert any("no usable age" in note for note in result.notes)


def test_sparse_cells_are_merged_and_weights_stay_capped(tmp_path):
    margins = read_margins(small_margins(tmp_path))
    frame = pd.DataFrame({
        "province_code": ["AA"] * 200 + ["BB"] * 80,
        # Only two old respondents in AA: their cell is merged, not blown up.
        "age": [25.0] * 198 + [60.0, 61.0] + [25.0] * 40 + [50.0] * 40,
        "gender": [1.0, 2.0] * 140,
    })
    result = rake_to_margins(frame, margins, cap=4)
    assert any("AA: age groups with under 5 respondents merged (18-39+40+)" in note
               for note in result.notes)
    assert result.n_trimmed == 0 and result.weights.max() < 4
    achieved = result.achieved["age_group"]
    assert achieved["AA"]["18-39"] + achieved["AA"]["40+"] == pytest.approx(50, abs=0.01)
    assert achieved["BB/CC"]["40+"] == pytest.approx(35, abs=0.01)
    # A binding cap: no weight above it, none driven to zero, the cost shown in the margins.
    trimmed = rake_to_margins(frame, margins, cap=2)
    assert trimmed.n_trimmed > 0 and trimmed.weights.max() <= 2 + 1e-6
    assert trimmed.weights.min() > 0.3
    assert trimmed.max_abs_difference() > 1
    assert trimmed.design_effect < result.design_effect


@pytest.mark.parametrize("content, message", [
    ("province_code,variable,count\nAA,age_group,3\n", "missing columns category"),
    ("province_code,variable,category,count\nAA,age_group,young,3\n", "neither 'A-B' nor 'A\\+'"),
    ("province_code,variable,category,count\nAA,income,low,3\n", "unknown variables income"),
    ("province_code,variable,category,count\nAA,age_group,18-30,x\n", "must be a number"),
])
def test_a_bad_margins_file_says_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(WeightingError, match=message):
        read_margins(path)


def test_weights_cli_errors_exit_2_without_traceback(tmp_path):
    export = tmp_path / "export.csv"
    simulate_export(40, seed=1).to_csv(export, index=False)
    completed = run_cli("weights", "--input", str(export), "--out", str(tmp_path / "w.csv"),
                        env={"FLOODLIGHT_REFERENCE_DATA": str(tmp_path)})
    assert completed.returncode == 2
    assert "give --margins FILE.csv" in completed.stderr and "Traceback" not in completed.stderr
    completed = run_cli("weights", "--input", str(export), "--margins", str(tmp_path / "no.csv"),
                        "--out", str(tmp_path / "w.csv"))
    assert completed.returncode == 2 and "no such margins file" in completed.stderr


def test_exclusions_follow_the_excluded_column_and_warn_for_an_older_export():
    frame = simulate_export(300, seed=4)
    kept, notes = apply_exclusions(frame, "preregistered")
    assert len(kept) == int((frame["excluded"] == 0).sum()) < len(frame)
    assert (kept["excluded"] == 0).all()
    everyone, _ = apply_exclusions(frame, "none")
    assert len(everyone) == len(frame)
    older = frame.drop(columns=["quality_flags", "excluded"])
    kept, notes = apply_exclusions(older, "preregistered")
    assert len(kept) == len(older) and notes[0].startswith("WARNING")
    with pytest.raises(ValueError, match="preregistered, none"):
        apply_exclusions(frame, "some")


def test_a_flag_raised_by_the_treatment_is_reported_as_post_treatment_selection(variables):
    frame = simulate_export(3000, seed=8, treated_flag_rates={"straight_lining": 0.12})
    table = flag_balance_table(frame, variables).set_index("flag")
    assert table.loc["straight_lining", "post_treatment_selection"]
    assert table.loc["straight_lining", "p"] < 1e-6
    assert table.loc["straight_lining", "rate_house"] > 3 * table.loc["straight_lining",
                                                                      "rate_control"]
    assert table.loc["straight_lining", "test"] == "chi-square"
    # The same flag at one rate everywhere is not.
    balanced = flag_balance_table(simulate_export(3000, seed=8), variables).set_index("flag")
    assert not balanced.loc["straight_lining", "post_treatment_selection"]


def test_small_flag_counts_use_fisher_exact():
    name, _, p = independence_test(np.array([[0, 1, 0, 4, 0], [100, 99, 100, 96, 100]]))
    assert name.startswith("Fisher") and 0 < p < 0.1
    name, _, p = independence_test(np.array([[1, 3], [50, 48]]))
    assert name == "Fisher exact" and p > 0.3
    assert np.isnan(independence_test(np.array([[0, 0], [50, 48]]))[2])


def test_report_shows_both_samples_and_weighted_effects_on_one_page(tmp_path, census_path,
                                                                    census):
    export = tmp_path / "export.csv"
    simulate_export(700, seed=5, margins=census, age_bias=0.3,
                    treated_flag_rates={"speeding": 0.2}).to_csv(export, index=False)
    out = tmp_path / "report"
    completed = run_cli("report", "--input", str(export), "--out", str(out), "--power-reps",
                        "10", "--margins", str(census_path), "--no-adjust")
    assert completed.returncode == 0, completed.stderr
    page = (out / "index.html").read_text()
    assert "with and without exclusions, and weighted (robustness check)" in page
    assert "Post-treatment selection: speeding" in page
    assert "design effect (Kish)" in page
    table = pd.read_csv(out / "tables" / "effects_by_sample.csv")
    assert {"prereg_est", "all_est", "weighted_est", "weighted_se"} <= set(table)
    assert (table["weighted_est"] != table["prereg_est"]).all()
    primary = pd.read_csv(out / "tables" / "effects.csv")
    assert (table["prereg_est"].to_numpy() == pytest.approx(primary["estimate"].to_numpy()))
    frame = pd.read_csv(export)
    completes = (frame["state"] == "completed") & frame["arm"].notna()
    kept = int((completes & (frame["excluded"] == 0)).sum())
    assert f"pre-registered n = {kept}; everyone n = {int(completes.sum())}; weighted n = {kept}" \
        in page
    # --exclusions none analyses everyone; an older export is analysed whole, with a warning.
    frame.drop(columns=["quality_flags", "excluded"]).to_csv(export, index=False)
    completed = run_cli("report", "--input", str(export), "--out", str(out), "--power-reps",
                        "10", "--exclusions", "none", "--no-adjust",
                        env={"FLOODLIGHT_REFERENCE_DATA": str(tmp_path)})
    assert completed.returncode == 0, completed.stderr
    page = (out / "index.html").read_text()
    assert "no quality_flags/excluded columns" in page
    assert "Weighted effects not computed: no margins file" in page
    assert set(pd.read_csv(out / "tables" / "effects.csv")["n"]) == {
        int(((frame["state"] == "completed") & frame["arm"].notna()).sum())}


def test_simulate_cli_writes_an_age_biased_census_sample(tmp_path, census_path, census):
    out = tmp_path / "sim.csv"
    completed = run_cli("simulate", "--n", "600", "--margins", str(census_path), "--age-bias",
                        "0.5", "--age-interaction", "0.3", "--out", str(out))
    assert completed.returncode == 0, completed.stderr
    frame = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert {"quality_flags", "excluded"} <= set(frame)
    flags = {name for text in frame["quality_flags"].dropna() for name in text.split(";")}
    assert flags <= {"speeding", "straight_lining", "attention_failed", "duplicate_taker",
                     "honeypot", "too_fast"}
    assert set(frame["province_code"].dropna()) <= set(census.province_of())
    ages = 2026 - frame["birth_year"].dropna()
    assert ages.min() >= 18 and ages.median() < 40  # the young over-sampled
