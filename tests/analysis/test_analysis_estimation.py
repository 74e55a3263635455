"""Known-truth and cross-check tests of the estimators against plain numpy textbook formulas."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.design import arm_dummies, lin_design, prepare_covariates
from analysis.effects import estimate_effects, fit_arm_model
from analysis.estimation import EstimationError, fit_ols, wald_test
from analysis.moderation import fit_moderation, johnson_neyman
from analysis.simulate import simulate_export, simulate_regression
from analysis.variables import default_variables


def numpy_ols(y: np.ndarray, x: np.ndarray, se_type: str) -> tuple[np.ndarray, np.ndarray]:
    """Textbook OLS and sandwich covariances, written independently of the package."""
    n, k = x.shape
    bread = np.linalg.inv(x.T @ x)
    beta = bread @ x.T @ y
    resid = y - x @ beta
    leverage = np.sum((x @ bread) * x, axis=1)
    if se_type == "classical":
        return beta, bread * (resid @ resid) / (n - k)
    weights = {
        "HC0": resid**2,
        "HC1": resid**2 * n / (n - k),
        "HC2": resid**2 / (1 - leverage),
        "HC3": resid**2 / (1 - leverage) ** 2,
    }[se_type]
    return beta, bread @ (x.T * weights) @ x @ bread


@pytest.fixture(scope="module")
def interaction_data() -> pd.DataFrame:
    data = simulate_regression(400, np.random.default_rng(7))
    data["c"] = np.random.default_rng(8).normal(size=len(data))
    return data


@pytest.mark.parametrize("se_type", ["classical", "HC0", "HC1", "HC2", "HC3"])
def test_fit_ols_matches_numpy_sandwich(interaction_data, se_type):
    design = pd.DataFrame({"Intercept": 1.0, "x": interaction_data["x"], "w": interaction_data["w"],
                           "x:w": interaction_data["x"] * interaction_data["w"]})
    fit = fit_ols(interaction_data["y"], design, se_type)
    beta, cov = numpy_ols(interaction_data["y"].to_numpy(), design.to_numpy(), se_type)
    np.testing.assert_allclose(fit.params.to_numpy(), beta, rtol=1e-10)
    np.testing.assert_allclose(fit.cov.to_numpy(), cov, rtol=1e-8)
    assert fit.df_resid == len(design) - 4


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_combinations_and_wald_test_match_the_numpy_sandwich(interaction_data, alternative):
    design = pd.DataFrame({"Intercept": 1.0, "x": interaction_data["x"], "w": interaction_data["w"],
                           "x:w": interaction_data["x"] * interaction_data["w"]})
    fit = fit_ols(interaction_data["y"], design, "HC2")
    beta, cov = numpy_ols(interaction_data["y"].to_numpy(), design.to_numpy(), "HC2")
    df = len(design) - 4
    weights = np.array([0.0, 1.0, 0.0, -0.7])
    estimate, se = weights @ beta, np.sqrt(weights @ cov @ weights)
    t = estimate / se
    p = {"greater": stats.t.sf(t, df), "less": stats.t.cdf(t, df), "two-sided": 2 * stats.t.sf(abs(t), df)}
    got = fit.combination({"x": 1.0, "x:w": -0.7}, alternative=alternative)
    assert got["estimate"] == pytest.approx(estimate, rel=1e-10)
    assert got["se"] == pytest.approx(se, rel=1e-8) and got["p"] == pytest.approx(p[alternative], rel=1e-6)
    assert got["ci_high"] - got["ci_low"] == pytest.approx(2 * stats.t.ppf(0.975, df) * se, rel=1e-8)
    b, v = beta[[1, 3]], cov[np.ix_([1, 3], [1, 3])]
    f_value = b @ np.linalg.inv(v) @ b / 2
    wald = wald_test(fit, ["x", "x:w"])
    assert wald["F"] == pytest.approx(f_value, rel=1e-8) and wald["df_num"] == 2 and wald["df_den"] == df
    assert wald["p"] == pytest.approx(stats.f.sf(f_value, 2, df), rel=1e-6)


def test_an_undefined_robust_covariance_gives_nan_tests_not_numbers():
    # One observation alone determines "d": its leverage is one and HC2 is undefined.
    rng = np.random.default_rng(3)
    design = pd.DataFrame({"Intercept": 1.0, "z": rng.normal(size=30), "d": [1.0] + [0.0] * 29})
    fit = fit_ols(pd.Series(rng.normal(size=30)), design, "HC2")
    got = fit.combination({"d": 1.0, "z": 1.0}, alternative="greater")
    assert np.isfinite(got["estimate"]) and np.isnan(got["se"]) and np.isnan(got["p"])
    assert np.isnan(wald_test(fit, ["z"])["p"])


def test_simple_slopes_and_johnson_neyman_match_textbook(interaction_data):
    result = fit_moderation(interaction_data, "y", "x", "w", covariates=["c"], se_type="HC2",
                            at=[-1.0, 0.0, 2.0])
    x = np.column_stack([np.ones(len(interaction_data)), interaction_data["x"],
                         interaction_data["w"], interaction_data["x"] * interaction_data["w"],
                         interaction_data["c"]])
    beta, cov = numpy_ols(interaction_data["y"].to_numpy(), x, "HC2")
    df = len(x) - 5
    crit = stats.t.ppf(0.975, df)
    for row in result.conditional_effects.itertuples():
        w = row.moderator_value
        effect = beta[1] + w * beta[3]
        se = np.sqrt(cov[1, 1] + w**2 * cov[3, 3] + 2 * w * cov[1, 3])
        assert row.effect == pytest.approx(effect, rel=1e-9)
        assert row.se == pytest.approx(se, rel=1e-8)
        assert row.p == pytest.approx(2 * stats.t.sf(abs(effect / se), df), rel=1e-6, abs=1e-12)
        assert row.ci_low == pytest.approx(effect - crit * se, rel=1e-8)
    # Johnson-Neyman: at each bound the conditional t statistic equals the critical value.
    bounds = result.johnson_neyman["x"]["bounds"]
    a = beta[3] ** 2 - crit**2 * cov[3, 3]
    b = 2 * (beta[1] * beta[3] - crit**2 * cov[1, 3])
    c = beta[1] ** 2 - crit**2 * cov[1, 1]
    roots = np.sort(np.roots([a, b, c]).real)
    np.testing.assert_allclose(bounds, roots, rtol=1e-7)
    for bound in bounds:
        se = np.sqrt(cov[1, 1] + bound**2 * cov[3, 3] + 2 * bound * cov[1, 3])
        assert abs(beta[1] + bound * beta[3]) / se == pytest.approx(crit, rel=1e-6)


def test_johnson_neyman_region_shapes():
    # Large interaction, small SEs: significant outside a band around the zero crossing.
    outside = johnson_neyman(0.0, 1.0, 0.01, 0.01, 0.0, 1.96, "w")
    assert len(outside["bounds"]) == 2 and "or" in outside["significant_where"]
    # Nothing identified: never significant.
    nowhere = johnson_neyman(0.0, 0.0, 1.0, 1.0, 0.0, 1.96, "w")
    assert nowhere["bounds"] == [] and nowhere["significant_where"].startswith("nowhere")
    # Strong main effect, imprecise interaction: significant only between the two roots.
    inside = johnson_neyman(2.0, 0.1, 0.1, 0.5, 0.0, 1.96, "w")
    low, high = inside["bounds"]
    assert low < 0 < high and " < w < " in inside["significant_where"]


def test_interaction_recovery_and_coverage_over_repeated_simulations():
    """200 simulated studies of n = 200: estimates centre on the truth, 95% CIs cover ~95%."""
    rng = np.random.default_rng(2024)
    truth = {"x": 0.5, "w": 0.3, "x:w": 0.4}
    covered = {term: 0 for term in truth}
    covered_slope = 0
    estimates = []
    reps = 200
    for _ in range(reps):
        data = simulate_regression(200, rng, b_x=truth["x"], b_w=truth["w"], b_xw=truth["x:w"])
        result = fit_moderation(data, "y", "x", "w", se_type="HC2", at=[1.0])
        table = result.fit.coefficient_table()
        estimates.append(table.loc["x:w", "estimate"])
        for term, value in truth.items():
            covered[term] += table.loc[term, "ci_low"] <= value <= table.loc[term, "ci_high"]
        slope = result.conditional_effects.iloc[0]
        covered_slope += slope.ci_low <= truth["x"] + truth["x:w"] <= slope.ci_high
    assert np.mean(estimates) == pytest.approx(truth["x:w"], abs=0.03)
    for term in truth:
        assert 0.90 <= covered[term] / reps <= 0.99, (term, covered[term])
    assert 0.90 <= covered_slope / reps <= 0.99


def test_lin_estimator_matches_manual_interacted_regression():
    variables = default_variables()
    frame = simulate_export(1500, seed=3)
    from analysis.io import prepare

    frame = prepare(frame, variables)
    model = fit_arm_model(frame, "dv_wtp", variables, "HC2", covariates=["ideology", "worry"])
    assert model.estimator == "lin"
    sample = frame[frame["arm"].isin(variables.arms) & frame["dv_wtp"].notna()]
    dummies = arm_dummies(sample["arm"], variables.treatment_arms).to_numpy()
    covariates = sample[["ideology", "worry"]].to_numpy(dtype=float)
    centred = covariates - covariates.mean(axis=0)
    interactions = np.column_stack([dummies[:, [i]] * centred for i in range(4)])
    x = np.column_stack([np.ones(len(sample)), dummies, centred, interactions])
    beta, cov = numpy_ols(sample["dv_wtp"].to_numpy(), x, "HC2")
    np.testing.assert_allclose(model.fit.params.to_numpy()[:5], beta[:5], rtol=1e-9)
    np.testing.assert_allclose(np.diag(model.fit.cov.to_numpy())[:5], np.diag(cov)[:5],
                               rtol=1e-7)


def test_planted_arm_effects_recovered_in_proximity_order():
    variables = default_variables()
    from analysis.io import prepare

    frame = prepare(simulate_export(6000, seed=11), variables)
    effects, contrasts, notes = estimate_effects(frame, variables, outcomes=["dv_wtp"])
    by_arm = effects.set_index("arm")["estimate"]
    assert by_arm["house"] > by_arm["district_landmark"] > by_arm["provincial_landmark"]
    assert by_arm["provincial_landmark"] > by_arm["distant"] > 0
    h1c = contrasts[contrasts["hypothesis"] == "H1c"].iloc[0]
    assert h1c["estimate"] > 0 and h1c["p_one_sided"] < 0.01
    # One-sided p is half the two-sided p when the estimate has the hypothesised sign.
    assert h1c["p_one_sided"] == pytest.approx(h1c["p_two_sided"] / 2, rel=1e-6)


def test_arm_effect_with_only_dummies_equals_difference_in_means_and_neyman_se():
    rng = np.random.default_rng(5)
    arms = np.repeat(["control", "house"], [60, 40])
    y = np.where(arms == "house", 1.0, 0.0) + rng.normal(0, np.where(arms == "house", 2, 1))
    frame = pd.DataFrame({"arm": arms, "y": y, "state": "completed"})
    variables = default_variables()
    model = fit_arm_model(frame, "y", variables, "HC2")
    treated, control = y[arms == "house"], y[arms == "control"]
    estimate = model.fit.params["arm[T.house]"]
    assert estimate == pytest.approx(treated.mean() - control.mean())
    neyman = np.sqrt(treated.var(ddof=1) / 40 + control.var(ddof=1) / 60)
    assert model.fit.se()["arm[T.house]"] == pytest.approx(neyman, rel=1e-9)
    assert model.arms == ["house"]  # the empty arms are left out with notes
    assert any("distant" in note for note in model.notes)


def test_rank_deficient_and_tiny_designs_raise_estimation_error():
    design = pd.DataFrame({"Intercept": 1.0, "a": [1.0, 2, 3, 4], "b": [2.0, 4, 6, 8]})
    with pytest.raises(EstimationError):
        fit_ols(pd.Series([1.0, 2, 3, 5]), design)
    with pytest.raises(EstimationError):
        fit_ols(pd.Series([1.0, 2]), pd.DataFrame({"Intercept": 1.0, "a": [1.0, 2]}))


def test_prepare_covariates_imputes_and_drops_constants():
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "b": [5.0] * 4})
    matrix, notes = prepare_covariates(frame, ["a", "b", "zzz"])
    assert list(matrix.columns) == ["a", "a_missing"]
    assert matrix["a"].mean() == pytest.approx(0.0)
    assert any("constant" in n for n in notes) and any("zzz" in n for n in notes)
    design = lin_design(pd.DataFrame({"arm[T.house]": [0.0, 1, 0, 1]}), matrix)
    assert "arm[T.house]:a" in design.columns


def test_significant_intervals_agree_with_pointwise_tests(interaction_data):
    from analysis.moderation import significant_intervals

    result = fit_moderation(interaction_data, "y", "x", "w", se_type="HC2")
    intervals = significant_intervals(result, "x")
    low, high = result.moderator_range
    grid = np.linspace(low, high, 201)
    check = fit_moderation(interaction_data, "y", "x", "w", se_type="HC2", at=list(grid))
    significant = check.conditional_effects["p"].to_numpy() < 0.05
    inside = np.array([any(a <= w <= b for a, b in intervals) for w in grid])
    # Agreement everywhere except possibly at a grid point sitting on a bound.
    assert (significant == inside).mean() > 0.99
    assert intervals  # the planted interaction makes part of the range significant
