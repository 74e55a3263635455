"""Scales, randomization checks, multiplicity, power, binary outcomes and variable overrides."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.balance import attrition_table, balance_table, funnel_table
from analysis.binary import binary_effects
from analysis.io import prepare
from analysis.multiple import adjust_pvalues, benjamini_hochberg, holm
from analysis.power import simulate_power
from analysis.scales import build_index, cronbach_alpha, reliability_table, reverse_code
from analysis.simulate import simulate_export
from analysis.variables import ScaleSpec, default_variables, load_variables


@pytest.fixture(scope="module")
def variables():
    return default_variables()


@pytest.fixture(scope="module")
def export(variables):
    return prepare(simulate_export(2500, seed=5), variables)


def test_reverse_coding_and_index_with_missing_items():
    frame = pd.DataFrame({"a": [1.0, 5, np.nan, np.nan], "b": [5.0, 1, 4, np.nan],
                          "c": [2.0, 2, np.nan, np.nan]})
    spec = ScaleSpec("s", ("a", "b", "c"), 1, 5, reverse=("b",), min_share_answered=0.5)
    assert reverse_code(pd.Series([1.0, 3, 5]), 1, 5).tolist() == [5, 3, 1]
    index = build_index(frame, spec)
    assert index.iloc[0] == pytest.approx((1 + 1 + 2) / 3)
    assert index.iloc[1] == pytest.approx((5 + 5 + 2) / 3)
    assert np.isnan(index.iloc[2])  # one item of three answered: below half
    assert np.isnan(index.iloc[3])


def test_cronbach_alpha_matches_formula_and_extremes():
    rng = np.random.default_rng(0)
    trait = rng.normal(size=500)
    items = pd.DataFrame({f"i{k}": trait + rng.normal(0, 1, 500) for k in range(4)})
    k = 4
    expected = k / (k - 1) * (1 - items.var().sum() / items.sum(axis=1).var())
    assert cronbach_alpha(items) == pytest.approx(expected)
    # Parallel items with error variance 1 and true variance 1: alpha = 4*0.5/(1+3*0.5) = 0.8
    assert cronbach_alpha(items) == pytest.approx(0.8, abs=0.04)
    identical = pd.DataFrame({"a": trait, "b": trait})
    assert cronbach_alpha(identical) == pytest.approx(1.0)
    assert np.isnan(cronbach_alpha(pd.DataFrame({"a": [1.0, 1, 1], "b": [2.0, 2, 2]})))


def test_reliability_table_flags_post_treatment_scales(export, variables):
    table = reliability_table(export, variables.scales, variables.post_treatment_variables)
    flags = table.set_index("scale")["post_treatment"]
    assert flags["emo_anxiety"] and flags["dv_wtp"] and not flags["values_biospheric"]
    assert table.set_index("scale").loc["values_biospheric", "alpha"] > 0.5


def test_funnel_counts_add_up(export, variables):
    funnel = funnel_table(export, variables)
    total = funnel.query("stage == 'assigned' and arm == 'all'")["n"].item()
    per_arm = funnel.query("stage == 'assigned' and arm != 'all'")["n"].sum()
    assert per_arm == total == export["arm"].isin(variables.arms).sum()
    screened = funnel.query("stage == 'not assigned: screened_out'")["n"].item()
    assert screened == (export["state"] == "screened_out").sum()
    assert funnel.query("stage == 'in export (entered)'")["n"].item() == len(export)
    consented = funnel.query("stage == 'consented'")["n"].item()
    expected = export["consented_at"].notna().sum() if "consented_at" in export else (export["state"] != "started").sum()
    assert consented == expected


def test_the_funnel_names_what_a_screen_out_was_missing(export, variables):
    rows = export.iloc[:2].copy()
    rows["state"] = "screened_out"
    rows["arm"] = pd.NA
    rows["screenout_reason"] = ["material_missing", "not_canadian"]
    rows["screenout_detail"] = ["house, distant", pd.NA]
    stages = set(funnel_table(rows, variables)["stage"])
    assert "screened out because: material_missing (house, distant)" in stages
    assert "screened out because: not_canadian" in stages


def test_a_district_screen_out_read_from_a_csv_names_the_fed_code_as_written(export, variables, tmp_path):
    from analysis.io import load_export

    rows = export.iloc[:3].copy()
    rows["state"] = "screened_out"
    rows["arm"] = pd.NA
    rows["screenout_reason"] = ["out_of_scope", "out_of_scope", "not_canadian"]
    rows["screenout_detail"] = ["35078", "10001", pd.NA]  # the district outside the scope
    path = tmp_path / "export.csv"
    rows.to_csv(path, index=False)
    stages = set(funnel_table(load_export(path, variables), variables)["stage"])
    assert {"screened out because: out_of_scope (35078)", "screened out because: out_of_scope (10001)",
            "screened out because: not_canadian"} <= stages


def test_the_funnel_does_not_count_unconsented_rows_as_consented(export, variables):
    started = export.iloc[:1].copy()
    started["state"] = "started"
    if "consented_at" in started:
        started["consented_at"] = pd.NaT
    both = pd.concat([export, started], ignore_index=True)
    funnel = funnel_table(both, variables).set_index("stage")
    assert funnel.loc["in export (entered)", "n"] == len(export) + 1
    assert funnel.loc["consented", "n"] == funnel_table(export, variables).set_index("stage").loc["consented", "n"]


def test_attrition_table_and_differential_test(export, variables):
    table, tests = attrition_table(export, variables)
    body = table[table["arm"] != "total"]
    assert (body["completed"] + body["attrited"] == body["assigned"]).all()
    expected_chi2 = stats.chi2_contingency(body[["completed", "attrited"]].to_numpy())[0]
    assert tests["chi2"] == pytest.approx(expected_chi2)
    assert tests["chi2_p"] > 0.001 and tests["F_p"] > 0.001  # attrition is random here
    # Plant differential attrition: drop most completions in one arm.
    skewed = export.copy()
    house = skewed.index[skewed["arm"] == "house"]
    skewed.loc[house[: len(house) // 2], "state"] = "abandoned"
    _, skewed_tests = attrition_table(skewed, variables)
    assert skewed_tests["chi2_p"] < 1e-6 and skewed_tests["F_p"] < 1e-6


def test_balance_table_omnibus_and_standardized_differences(export, variables):
    table = balance_table(export, variables)
    ideology = table[table["variable"] == "ideology"].iloc[0]
    assigned = export[export["arm"].isin(variables.arms)]
    house = assigned.loc[assigned["arm"] == "house", "ideology"].dropna()
    control = assigned.loc[assigned["arm"] == "control", "ideology"].dropna()
    std_diff = (house.mean() - control.mean()) / np.sqrt((house.var() + control.var()) / 2)
    assert ideology["std_diff_house"] == pytest.approx(std_diff)
    assert 0 <= ideology["p"] <= 1 and ideology["test"].startswith("robust F")
    gender = table[table["variable"] == "gender"]
    assert set(gender["level"]) >= {"1", "2"} and gender["test"].iloc[0].startswith("chi-square")
    # Randomized: no covariate is badly imbalanced.
    assert table["max_abs_std_diff"].max() < 0.2


def test_holm_and_bh_give_the_textbook_values_and_do_not_count_nan():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.2, np.nan])
    # By hand, m = 5 (the NaN is not a test): Holm sorted 0.005*5, 0.01*4, max(0.03*3, .), 0.04*2 -> 0.09, 0.2;
    # BH sorted p*5/rank, then the running minimum from the largest.
    np.testing.assert_allclose(holm(p)[:5], [0.04, 0.09, 0.09, 0.025, 0.2])
    np.testing.assert_allclose(benjamini_hochberg(p)[:5], [0.025, 0.05, 0.05, 0.025, 0.2])
    assert np.isnan(holm(p)[5]) and np.isnan(benjamini_hochberg(p)[5])
    np.testing.assert_allclose(holm([0.6, 0.7]), [1.0, 1.0])  # 1.2 capped at 1
    table = pd.DataFrame({"family": ["a", "a", "b"], "p": [0.01, 0.04, 0.04]})
    adjusted = adjust_pvalues(table, "p", ["family"])
    assert adjusted["p_holm"].tolist() == pytest.approx([0.02, 0.04, 0.04])


def test_power_is_alpha_under_null_and_rises_with_n():
    null = simulate_power(1000, {}, reps=2000, seed=3)
    assert null["power"].between(0.03, 0.07).all()
    small = simulate_power(500, {"house": 0.3}, reps=1000, seed=4).set_index("contrast")
    large = simulate_power(5000, {"house": 0.3}, reps=1000, seed=4).set_index("contrast")
    assert large.loc["house - control", "power"] > small.loc["house - control", "power"]
    # Analytic check: one-sided z test with n = 1000 per arm and d = 0.3 has power ~1.
    assert large.loc["house - control", "power"] > 0.99
    analytic = stats.norm.sf(1.645 - 0.3 / np.sqrt(2 / 100))
    assert small.loc["house - control", "power"] == pytest.approx(analytic, abs=0.05)


def test_binary_outcomes_lpm_and_logit_ame_agree(export, variables):
    table, notes = binary_effects(export, variables)
    assert set(table["outcome"]) == {"info_emissions", "info_floodprotect", "letter_want",
                                     "letter_signed"}
    # With arm dummies only, the logit AME is the same difference in proportions as the LPM.
    np.testing.assert_allclose(table["lpm_estimate"], table["logit_ame"], atol=1e-6)
    assert (table["logit_se"] > 0).all()


def test_variable_overrides_from_json_yaml_and_codebook_csv(tmp_path):
    json_path = tmp_path / "override.json"
    json_path.write_text(json.dumps({
        "moderators": [{"name": "ideology", "label": "Left-right", "hypothesis": "H2a"},
                       {"name": "party_id", "label": "Party", "categorical": True}],
        "missing_codes": {"income": [99, 98]},
    }))
    overridden = load_variables(json_path)
    assert [m.name for m in overridden.moderators] == ["ideology", "party_id"]
    assert overridden.moderator("party_id").categorical
    assert overridden.missing_codes["income"] == (99, 98)
    yaml_path = tmp_path / "override.yaml"
    yaml_path.write_text("adjustment_covariates: [age, ideology]\n")
    assert load_variables(yaml_path).adjustment_covariates == ("age", "ideology")
    with pytest.raises(ValueError):
        load_variables(tmp_path / "bad.json") if (tmp_path / "bad.json").write_text(
            '{"no_such_field": 1}') else None
    codebook = tmp_path / "codebook.csv"
    pd.DataFrame({
        "variable": ["ideology", "worry", "emo_hopeful"], "label_en": ["Ideology", "Worry", "H"],
        "label_fr": ["", "", ""], "question_en": ["", "", ""], "question_fr": ["", "", ""],
        "codes": ["", "", ""], "type": ["int", "int", "int"], "page": ["p", "p", "q"],
        "phase": ["pre", "post", "post"],
    }).to_csv(codebook, index=False)
    from_codebook = load_variables(codebook)
    assert from_codebook.moderator("worry").post_treatment  # the codebook says post
    assert not from_codebook.moderator("ideology").post_treatment
    assert from_codebook.moderator("emo_hope").post_treatment
    assert from_codebook.label("ideology") == "Ideology"


def test_logit_ame_se_matches_saturated_delta_method():
    from analysis.estimation import fit_logit_ame

    rng = np.random.default_rng(12)
    arm = np.repeat([0.0, 1.0], [300, 200])
    y = (rng.random(500) < np.where(arm == 1, 0.45, 0.30)).astype(float)
    design = pd.DataFrame({"Intercept": 1.0, "arm[T.house]": arm})
    ame = fit_logit_ame(y, design, ["arm[T.house]"]).loc["arm[T.house]"]
    p1, p0 = y[arm == 1].mean(), y[arm == 0].mean()
    assert ame["ame"] == pytest.approx(p1 - p0, abs=1e-7)
    expected_se = np.sqrt(p1 * (1 - p1) / 200 + p0 * (1 - p0) / 300)
    assert ame["se"] == pytest.approx(expected_se, rel=1e-4)


@pytest.mark.parametrize("suffix", ["xlsx", "dta", "parquet", "csv"])
def test_every_export_format_reads_the_same(tmp_path, suffix, variables):
    from analysis.io import load_export

    raw = simulate_export(60, seed=2)
    path = tmp_path / f"export.{suffix}"
    if suffix == "xlsx":
        raw.to_excel(path, index=False)
    elif suffix == "dta":
        raw.astype({c: "string" for c in raw.columns if raw[c].dtype == object}).fillna(
            {c: "" for c in raw.columns if raw[c].dtype == object}).to_stata(
            path, write_index=False, version=118)
    elif suffix == "parquet":
        raw.to_parquet(path, index=False)
    else:
        raw.to_csv(path, index=False)
    frame = load_export(path, variables)
    assert frame["arm"].value_counts().to_dict() == raw["arm"].value_counts().to_dict()
    assert frame["dv_wtp"].notna().sum() == (raw["state"] == "completed").sum()
    assert frame["ideology"].dtype == float


def test_categorical_moderator_by_arm(export, variables):
    from analysis.moderation import fit_arm_moderation

    result = fit_arm_moderation(export, "dv_wtp", "urbanicity", list(variables.treatment_arms),
                                categorical=True)
    effects = result.conditional_effects
    house = effects[effects["focal"] == "arm[T.house]"].set_index("moderator_value")
    params = result.fit.params
    assert house.loc[1, "effect"] == pytest.approx(params["arm[T.house]"])
    assert house.loc[3, "effect"] == pytest.approx(
        params["arm[T.house]"] + params["arm[T.house]:C(urbanicity)[T.3]"])
