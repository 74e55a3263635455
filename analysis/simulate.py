"""Synthetic exports with planted effects, for tests, power analysis and the benchmark.

The outcomes come from a latent normal model: latent = planted arm effect (+ interaction with
centred ideology) + covariate signal + noise, then cut into the instrument's 1-5 or 0/1 codes.
``simulate_regression`` is the plain-numpy continuous version used for known-truth tests.

With census ``margins`` the respondents' province, age and gender follow the census (province x
age group, province x gender); ``age_bias`` then over-samples the young (an online panel), and
``age_interaction`` makes every treatment effect grow with age, so the population effect differs
from the sample's and weighting to the margins has something to correct. Every export also has
planted ``quality_flags`` and ``excluded`` columns, as the platform writes them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from analysis.exclusions import QUALITY_FLAGS
from analysis.variables import ARMS, CONTROL_ARM
from analysis.weights import GENDER_CATEGORIES, Margins, parse_age_group

# Planted effects on the latent scale (SD units of the latent outcome), in proximity order.
DEFAULT_EFFECTS: Mapping[str, float] = {
    "control": 0.0, "distant": 0.10, "house": 0.40, "district_landmark": 0.30,
    "provincial_landmark": 0.20,
}
PROVINCES = ("AB", "BC", "MB", "NB", "NL", "NS", "ON", "PE", "QC", "SK")
SURVEY_YEAR = 2026  # the simulated completed_at's year: age = SURVEY_YEAR - birth_year
OLDEST_AGE = 94  # the open age group (65+) is drawn uniformly up to this age
AGE_CENTRE = 45.0  # age_bias and age_interaction are per 10 years around this age
# Planted flag rates among assigned respondents (attention_failed follows attention_passed).
FLAG_RATES: Mapping[str, float] = {"speeding": 0.04, "straight_lining": 0.03,
                                   "duplicate_taker": 0.01, "honeypot": 0.005,
                                   "too_fast": 0.02}
# The simulated study's frozen exclusion rule (the platform's is chosen per study).
EXCLUSION_RULE: tuple[str, ...] = ("speeding", "attention_failed", "duplicate_taker",
                                   "honeypot")


def simulate_regression(n: int, rng: np.random.Generator, b0: float = 1.0, b_x: float = 0.5,
                        b_w: float = 0.3, b_xw: float = 0.4,
                        heteroskedastic: bool = True) -> pd.DataFrame:
    """y = b0 + b_x x + b_w w + b_xw x w + e, with x ~ Bernoulli(.5), w ~ N(0, 1) and
    error SD growing with |w| and with x (so robust SEs matter)."""
    x = rng.integers(0, 2, n).astype(float)
    w = rng.normal(0.0, 1.0, n)
    scale = 0.5 + 0.5 * np.abs(w) + 0.5 * x if heteroskedastic else np.ones(n)
    y = b0 + b_x * x + b_w * w + b_xw * x * w + rng.normal(0.0, 1.0, n) * scale
    return pd.DataFrame({"y": y, "x": x, "w": w})


def _likert(latent: np.ndarray, cuts: tuple[float, ...] = (-1.2, -0.4, 0.4, 1.2)) -> np.ndarray:
    return 1.0 + np.searchsorted(np.asarray(cuts), latent).astype(float)


def _permuted_blocks(strata: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Balanced assignment as the platform does it: permuted blocks of the five arms per stratum."""
    arms = np.empty(len(strata), dtype=object)
    for stratum in np.unique(strata):
        positions = np.flatnonzero(strata == stratum)
        blocks = int(np.ceil(len(positions) / len(ARMS)))
        sequence = np.concatenate([rng.permutation(ARMS) for _ in range(blocks)])
        arms[positions] = sequence[: len(positions)]
    return arms


def _age_bounds(label: str) -> tuple[int, int]:
    low, high = parse_age_group(label)
    return int(low), int(min(high - 1, OLDEST_AGE))


def population_mean_age(margins: Margins) -> float:
    """Mean age of the population ``simulate_census_people`` draws from (ages uniform within
    each census age group)."""
    counts = margins.age.groupby(level="category").sum()
    return float(sum(counts[g] * np.mean(_age_bounds(g)) for g in margins.age_groups)
                 / counts.sum())


def simulate_census_people(n: int, margins: Margins, rng: np.random.Generator,
                           age_bias: float = 0.0) -> pd.DataFrame:
    """``n`` adults drawn from the census margins (province, age, instrument gender code), the
    young over-sampled by ``exp(-age_bias * (age - 45) / 10)`` when ``age_bias`` > 0."""
    cells = margins.age[margins.age > 0]
    pool_size = n if age_bias == 0 else 6 * n
    picks = rng.choice(len(cells), pool_size, p=(cells / cells.sum()).to_numpy())
    provinces = cells.index.get_level_values("province_code").to_numpy()[picks]
    groups = cells.index.get_level_values("category").to_numpy()[picks]
    bounds = np.array([_age_bounds(g) for g in groups])
    ages = rng.integers(bounds[:, 0], bounds[:, 1] + 1).astype(float)
    if age_bias:
        selection = np.exp(-age_bias * (ages - AGE_CENTRE) / 10)
        keep = rng.choice(pool_size, n, replace=False, p=selection / selection.sum())
        provinces, ages = provinces[keep], ages[keep]
    female = np.array([margins.gender.get((p, "female"), 0.0)
                       / sum(margins.gender.get((p, g), 0.0) for g in GENDER_CATEGORIES)
                       for p in provinces])
    # 2 % another gender, 1 % prefer not to say (code 99), the rest woman/man as the census.
    other = rng.random(n)
    gender = np.where(rng.random(n) < female, 1.0, 2.0)
    gender = np.where(other < 0.02, 3.0, np.where(other < 0.03, 99.0, gender))
    # A combined code (NT/NU) becomes one of its provinces, as a respondent's would be.
    province_codes = np.array([p.split("/")[rng.integers(len(p.split("/")))] for p in provinces])
    return pd.DataFrame({"province_code": province_codes, "age": ages, "gender": gender})


def _quality_flags(n: int, assigned: np.ndarray, arm_text: np.ndarray, attention_passed:
                   np.ndarray, rng: np.random.Generator,
                   treated_rates: Mapping[str, float] | None) -> tuple[np.ndarray, np.ndarray]:
    """Planted ``quality_flags`` (;-separated names) and ``excluded`` by EXCLUSION_RULE."""
    treated = assigned & (arm_text != CONTROL_ARM)
    raised: dict[str, np.ndarray] = {}
    for flag in QUALITY_FLAGS:
        if flag == "attention_failed":
            raised[flag] = assigned & (attention_passed == 0)
            continue
        rate = np.full(n, FLAG_RATES.get(flag, 0.0))
        if treated_rates and flag in treated_rates:
            rate = np.where(treated, treated_rates[flag], rate)
        raised[flag] = assigned & (rng.random(n) < rate)
    flags = np.array([";".join(f for f in QUALITY_FLAGS if raised[f][i]) for i in range(n)],
                     dtype=object)
    excluded = np.zeros(n, dtype=int)
    for flag in EXCLUSION_RULE:
        excluded |= raised[flag].astype(int)
    return flags, excluded


def simulate_export(n: int = 2000, seed: int = 1, effects: Mapping[str, float] | None = None,
                    ideology_interaction: float = 0.05, attrition: float = 0.08,
                    screened_out: float = 0.05, outcome_noise: float = 1.0,
                    margins: Margins | None = None, age_bias: float = 0.0,
                    age_interaction: float = 0.0,
                    treated_flag_rates: Mapping[str, float] | None = None) -> pd.DataFrame:
    """A wide export like the platform's: ``n`` rows, some screened out, the rest assigned.

    ``ideology_interaction``: change of every treatment effect per ideology point (centred at 5).
    ``margins``/``age_bias``/``age_interaction``: see the module docstring; the interaction is
    per 10 years, centred on the margins' population mean age (45 without margins), so the
    planted effects are the population's average effects on the latent scale.
    ``treated_flag_rates``: a flag's rate in the treated arms (a flag the treatment raises).
    Attrited respondents (``state == "abandoned"``) have no outcomes or emotions.
    """
    if age_bias and margins is None:
        raise ValueError("age_bias needs census margins to draw the population from")
    rng = np.random.default_rng(seed)
    effects = {**DEFAULT_EFFECTS, **(effects or {})}
    province = rng.choice(PROVINCES, n, p=np.array([11, 14, 4, 2, 1, 3, 39, 1, 22, 3]) / 100)
    is_screened = rng.random(n) < screened_out
    arm = np.where(is_screened, None, _permuted_blocks(province, rng))
    is_assigned = ~is_screened
    attrited = is_assigned & (rng.random(n) < attrition)
    state = np.where(is_screened, "screened_out", np.where(attrited, "abandoned", "completed"))

    ideology = np.clip(np.round(rng.normal(5, 2.2, n)), 0, 10)
    worry = rng.integers(1, 5, n).astype(float)
    values_trait = rng.normal(0, 1, n)
    frame = pd.DataFrame({
        "participant_id": [f"P{i:07d}" for i in range(n)],
        "state": state,
        "arm": arm,
        "stratum": province,
        "province_code": province,
        "fsa": ["K1A"] * n,
        "fed_code": rng.integers(10001, 10344, n).astype(str),
        "district_method": rng.choice(["unique", "chosen"], n, p=[0.8, 0.2]),
        "rep_order": "2023",
        "consent_version": "1",
        "instrument_version": "1",
        "assigned_at": np.where(is_assigned, "2026-03-01T12:00:00Z", None),
        "completed_at": np.where(state == "completed", "2026-03-01T12:12:00Z", None),
        "exposure_ms": np.where(is_assigned & (arm != CONTROL_ARM),
                                rng.gamma(4, 4000, n) + 10000, np.nan),
        "stimulus_id": np.where(is_assigned & (arm != CONTROL_ARM), "img-demo", None),
        "generator_backend": np.where(is_assigned & (arm != CONTROL_ARM), "procedural", None),
        "model_version": np.where(is_assigned & (arm != CONTROL_ARM), "0", None),
        "attention_passed": (rng.random(n) < 0.9).astype(float),
        "t_consent": rng.gamma(3, 10, n),
        "birth_year": rng.integers(1940, 2007, n).astype(float),
        "gender": rng.choice([1, 2, 3, 99], n, p=[0.5, 0.47, 0.02, 0.01]).astype(float),
        "education": rng.integers(1, 8, n).astype(float),
        "income": rng.choice([*range(1, 10), 99], n).astype(float),
        "employment": rng.integers(1, 8, n).astype(float),
        "tenure": rng.choice([1, 2, 3], n, p=[0.65, 0.32, 0.03]).astype(float),
        "dwelling": rng.integers(1, 5, n).astype(float),
        "urbanicity": rng.integers(1, 4, n).astype(float),
        "years_in_district": rng.integers(1, 5, n).astype(float),
        "home_language": rng.choice([1, 2, 3], n, p=[0.7, 0.22, 0.08]).astype(float),
        "party_id": rng.integers(1, 10, n).astype(float),
        "party_strength": rng.integers(1, 4, n).astype(float),
        "ideology": ideology,
        "cc_happening": rng.choice([1, 2, 3], n, p=[0.85, 0.08, 0.07]).astype(float),
        "cc_cause": rng.integers(1, 5, n).astype(float),
        "cc_optimism": rng.integers(1, 6, n).astype(float),
        "harm_self": rng.integers(1, 5, n).astype(float),
        "harm_canadians": rng.integers(1, 5, n).astype(float),
        "harm_future": rng.integers(1, 5, n).astype(float),
        "worry": worry,
        "flood_risk_home": rng.integers(1, 6, n).astype(float),
        "attention_check": rng.integers(1, 6, n).astype(float),
    })
    for k, name in enumerate(("val_bio1", "val_bio2", "val_alt1", "val_alt2", "val_ego1",
                              "val_ego2")):
        sign = -1.0 if name.startswith("val_ego") else 1.0
        latent = sign * values_trait + rng.normal(0, 0.8, n) + 0.01 * k
        frame[name] = np.clip(np.round(4 + 1.3 * latent), 1, 7)
    frame.loc[frame["party_id"] >= 8, "party_strength"] = np.nan

    # A separate stream: the draws above (and so older simulated exports) stay as they were.
    extra = np.random.default_rng([seed, 24])
    age = SURVEY_YEAR - frame["birth_year"].to_numpy()
    age_centre = AGE_CENTRE
    if margins is not None:
        people = simulate_census_people(n, margins, extra, age_bias)
        age = people["age"].to_numpy()
        frame["province_code"] = frame["stratum"] = people["province_code"].to_numpy()
        frame["birth_year"] = SURVEY_YEAR - age
        frame["gender"] = people["gender"].to_numpy()
        age_centre = population_mean_age(margins)
    arm_text = np.where(arm == None, CONTROL_ARM, arm).astype(str)  # noqa: E711 (object array)
    frame["quality_flags"], frame["excluded"] = _quality_flags(
        n, is_assigned, arm_text, frame["attention_passed"].to_numpy(), extra,
        treated_flag_rates)
    effect = np.array([effects.get(a, 0.0) for a in arm_text])
    treated = (arm_text != CONTROL_ARM).astype(float)
    effect = effect + ideology_interaction * treated * (ideology - 5)
    effect = effect + age_interaction * treated * (age - age_centre) / 10
    signal = 0.3 * (worry - 2.5) / 1.1 + 0.3 * values_trait - 0.05 * (ideology - 5)
    person = effect + signal
    for name in ("wtp_tax_buildings", "wtp_tax_oil", "int_reduce_footprint", "int_protect_home",
                 "int_push_government"):
        frame[name] = _likert(person + rng.normal(0, outcome_noise, n))
    for name in ("info_emissions", "info_floodprotect", "letter_want"):
        frame[name] = (person + rng.normal(0, 1, n) > 0.8).astype(float)
    frame["letter_signed"] = frame["letter_want"] * (rng.random(n) < 0.6)
    emotion_base = 0.5 * effect + 0.3 * (worry - 2.5)
    for name in ("emo_anxious", "emo_afraid", "emo_ashamed", "emo_guilty", "emo_sad",
                 "emo_powerless"):
        frame[name] = _likert(emotion_base + rng.normal(0, 1, n))
    for name in ("emo_hopeful", "emo_optimistic"):
        frame[name] = _likert(-0.2 * effect + rng.normal(0, 1, n))
    frame["manip_check"] = rng.integers(1, 6, n).astype(float)
    post = ["wtp_tax_buildings", "wtp_tax_oil", "int_reduce_footprint", "int_protect_home",
            "int_push_government", "info_emissions", "info_floodprotect", "letter_want",
            "letter_signed", "emo_anxious", "emo_afraid", "emo_ashamed", "emo_guilty", "emo_sad",
            "emo_powerless", "emo_hopeful", "emo_optimistic", "manip_check"]
    frame.loc[state != "completed", post] = np.nan
    pre = ["birth_year", "gender", "education", "ideology", "worry", "val_bio1"]
    frame.loc[is_screened, pre] = np.nan
    return frame
