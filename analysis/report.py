"""The full pre-registered analysis as an HTML report (tables also as CSV and LaTeX, PNG figures).

Every section runs on its own: a section that cannot be computed on these data (a tiny demo
export, an empty arm, a constant column) is replaced by a note saying why, and the rest goes on.
"""

from __future__ import annotations

import html
import math
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.balance import attrition_table, balance_table, funnel_table
from analysis.binary import binary_effects
from analysis.effects import estimate_effects, intersection_union
from analysis.estimation import EstimationError, check_se_type
from analysis.exclusions import (
    EXCLUSION_MODES,
    apply_exclusions,
    flag_balance_table,
    has_exclusion_columns,
)
from analysis.io import load_export
from analysis.moderation import fit_arm_moderation, focal_arm, significant_intervals
from analysis.multiple import adjust_pvalues
from analysis.power import simulate_power
from analysis.scales import reliability_table
from analysis.variables import StudyVariables, load_variables

# Outcomes used for the H2 moderation models (indices of DV1/DV2 and the DV3 click).
MODERATION_OUTCOMES = ("dv_wtp", "dv_intentions", "letter_want")
PLANNED_EFFECTS = {"distant": 0.10, "house": 0.25, "district_landmark": 0.20,
                   "provincial_landmark": 0.15}
POST_TREATMENT_WARNING = (
    "Emotions are measured after the treatment. They can themselves be affected by the image, "
    "so arm x emotion interactions are descriptive, not causal moderation effects, and "
    "conditioning on them can bias the estimated treatment effects. They are flagged "
    "post_treatment = True in every table and marked on every figure."
)


@dataclass
class ReportOptions:
    se_type: str = "HC2"
    adjust: bool = True
    exclude_inattentive: bool = False
    codebook: str | None = None
    power_reps: int = 200
    power_effects: dict[str, float] = field(default_factory=lambda: dict(PLANNED_EFFECTS))
    moderation_outcomes: tuple[str, ...] = MODERATION_OUTCOMES
    # "preregistered": rows with excluded == 1 left out of every analysis below the flow and
    # attrition tables; "none": everyone. Both samples are shown side by side either way.
    exclusions: str = "preregistered"
    # Census margins for the weighted robustness check (None: $FLOODLIGHT_REFERENCE_DATA's).
    margins: str | None = None
    weight_cap: float = 5.0


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _format(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.2e}"
        return f"{value:.3f}"
    return str(value)


def to_latex(table: pd.DataFrame, caption: str) -> str:
    """A plain tabular (no jinja2/Styler dependency), special characters escaped."""
    def escape(text: str) -> str:
        for char, replacement in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"),
                                  ("$", r"\$"), ("#", r"\#"), ("_", r"\_"), ("{", r"\{"),
                                  ("}", r"\}"), ("~", r"\textasciitilde{}"),
                                  ("^", r"\textasciicircum{}")):
            text = text.replace(char, replacement)
        return text

    header = " & ".join(escape(str(c)) for c in table.columns) + r" \\"
    body = [" & ".join(escape(_format(v)) for v in row) + r" \\"
            for row in table.itertuples(index=False)]
    return "\n".join([
        r"\begin{table}[htbp]", r"\centering", rf"\caption{{{escape(caption)}}}",
        r"\begin{tabular}{" + "l" * len(table.columns) + "}", r"\hline", header, r"\hline",
        *body, r"\hline", r"\end{tabular}", r"\end{table}", "",
    ])


class ReportWriter:
    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.tables_dir = out_dir / "tables"
        self.figures_dir = out_dir / "figures"
        self.tables_dir.mkdir(parents=True, exist_ok=True)
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        self.parts: list[str] = []
        self.notes: list[str] = []

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str, css: str = "") -> None:
        attribute = f' class="{css}"' if css else ""
        self.parts.append(f"<p{attribute}>{html.escape(text)}</p>")

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.parts.append(f'<p class="note">Note: {html.escape(text)}</p>')

    def table(self, frame: pd.DataFrame, name: str, caption: str, max_rows: int = 400) -> None:
        if frame is None or frame.empty:
            self.note(f"{caption}: nothing to show on these data")
            return
        stem = _slug(name)
        frame.to_csv(self.tables_dir / f"{stem}.csv", index=False)
        (self.tables_dir / f"{stem}.tex").write_text(to_latex(frame, caption), encoding="utf-8")
        shown = frame.head(max_rows)
        header = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_format(v))}</td>" for v in row) + "</tr>"
            for row in shown.itertuples(index=False)
        )
        more = (f"<p>First {max_rows} of {len(frame)} rows shown; all rows in the CSV.</p>"
                if len(frame) > max_rows else "")
        self.parts.append(
            f"<figure><figcaption>{html.escape(caption)} "
            f'(<a href="tables/{stem}.csv">CSV</a>, <a href="tables/{stem}.tex">LaTeX</a>)'
            f"</figcaption><div class=\"scroll\"><table><thead><tr>{header}</tr></thead>"
            f"<tbody>{rows}</tbody></table></div>{more}</figure>"
        )

    def figure(self, path: Path, caption: str) -> None:
        relative = path.relative_to(self.out_dir).as_posix()
        self.parts.append(f'<figure><img src="{html.escape(relative)}" alt="'
                          f'{html.escape(caption)}"><figcaption>{html.escape(caption)}'
                          "</figcaption></figure>")

    def section(self, title: str, body: Callable[[], None]) -> None:
        """Run one section; on failure keep going with a note instead of crashing."""
        self.heading(title)
        try:
            body()
        except (EstimationError, ValueError, KeyError, np.linalg.LinAlgError) as error:
            self.note(f"section '{title}' skipped: {error}")
        except Exception as error:  # a report must not die on one odd section
            detail = traceback.format_exception_only(type(error), error)[-1].strip()
            self.note(f"section '{title}' failed unexpectedly and was skipped: {detail}")

    def write(self, title: str, summary: list[str]) -> Path:
        style = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
                 "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;"
                 "padding:2px 6px;text-align:right}th{background:#eee}.scroll{overflow-x:auto}"
                 ".note{color:#8a4b00}.warning{background:#fff3cd;padding:.5em;"
                 "border-left:4px solid #e0a800}img{max-width:100%}")
        summary_html = "".join(f"<li>{html.escape(line)}</li>" for line in summary)
        notes_html = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes) or "<li>none</li>"
        document = (
            f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{style}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><ul>{summary_html}</ul>"
            f"{''.join(self.parts)}<h2>All notes</h2><ul>{notes_html}</ul></body></html>"
        )
        index = self.out_dir / "index.html"
        index.write_text(document, encoding="utf-8")
        return index


SIDE_COLUMNS = {"estimate": "est", "se": "se", "p": "p"}
SIDE_SAMPLES = {"preregistered": "prereg", "everyone": "all", "weighted": "weighted"}


def side_by_side(preregistered: pd.DataFrame | None, everyone: pd.DataFrame | None,
                 weighted: pd.DataFrame | None) -> pd.DataFrame:
    """One row per outcome x arm; estimate/se/p of each sample side by side (``prereg_``,
    ``all_``, ``weighted_``), all unadjusted (the weighted check is unadjusted, so the three
    compare like with like; the Lin-adjusted estimates are in the main effects table)."""
    keys = ["outcome", "arm"]
    parts = []
    for prefix, table in (("preregistered", preregistered), ("everyone", everyone),
                          ("weighted", weighted)):
        if table is None or table.empty:
            continue
        table = table[table["estimator"] == "unadjusted"]
        part = table[[*keys, *SIDE_COLUMNS]].rename(
            columns={c: f"{SIDE_SAMPLES[prefix]}_{short}" for c, short in SIDE_COLUMNS.items()})
        parts.append(part.set_index(keys))
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, axis=1).reset_index()


def _n_range(table: pd.DataFrame | None) -> str:
    if table is None or table.empty:
        return ""
    low, high = int(table["n"].min()), int(table["n"].max())
    return f"n = {low}" if low == high else f"n = {low}-{high}"


def _weighted_effects(frame: pd.DataFrame, variables: StudyVariables, options: ReportOptions,
                      ) -> tuple[pd.DataFrame | None, object, str, list[str]]:
    """Rake the analysed completes to the census margins: (weighted effects, the weighting
    result, a sentence on what was done, notes); effects and result are None when impossible."""
    from analysis.weights import (
        REFERENCE_DATA_ENV,
        WeightingError,
        default_margins_path,
        read_margins,
        weight_completes,
    )

    path = options.margins or default_margins_path()
    if path is None:
        return None, None, (f"Weighted effects not computed: no margins file (give --margins "
                            f"FILE or set {REFERENCE_DATA_ENV})."), []
    try:
        margins = read_margins(path)
        result, _ = weight_completes(frame, margins, variables, "none", options.weight_cap)
    except WeightingError as error:
        return None, None, f"Weighted effects not computed: {error}.", []
    effects, _, notes = estimate_effects(frame, variables, se_type=options.se_type,
                                         weights=result.weights)
    summary = (
        f"Weights: raked to {path} (province x age group, province x gender; weightipy), cap "
        f"{options.weight_cap:g} x the mean weight ({result.n_trimmed} trimmed); n = {result.n}, "
        f"design effect (Kish) = {result.design_effect:.3f}, effective n = "
        f"{result.effective_n:.1f}; largest margin difference "
        f"{result.max_abs_difference():.2f} percentage points.")
    return effects, result, summary, [*result.notes, *(f"weighted: {n}" for n in notes)]


def write_report(input_path: str | Path, out_dir: str | Path,
                 options: ReportOptions | None = None,
                 variables: StudyVariables | None = None) -> Path:
    options = options or ReportOptions()
    check_se_type(options.se_type)
    variables = variables or load_variables(options.codebook)
    raw = load_export(input_path, variables)
    if variables.arm not in raw or variables.state not in raw:
        raise ValueError(f"the export needs the columns {variables.arm!r} and "
                         f"{variables.state!r}")
    writer = ReportWriter(Path(out_dir))
    frame = raw
    summary = [f"input: {input_path}", f"rows: {len(raw)}",
               f"standard errors: {options.se_type} (t distribution, residual df)"]
    if raw.empty:
        summary.insert(0, "NO DATA: the export has no participants, so every table below is empty "
                          "and no effect is estimated.")
    if options.exclude_inattentive and variables.attention in raw:
        frame = raw[raw[variables.attention] != 0]
        summary.append(f"excluded {len(raw) - len(frame)} respondents who failed the "
                       "pre-treatment attention check")
    if options.exclusions not in EXCLUSION_MODES:
        raise ValueError(f"exclusions must be one of {', '.join(EXCLUSION_MODES)}")
    everyone = frame
    preregistered, exclusion_notes = apply_exclusions(everyone, "preregistered")
    frame = preregistered if options.exclusions == "preregistered" else everyone
    if options.exclusions == "none":
        exclusion_notes = ["exclusions: none (--exclusions none): every respondent analysed"]
    summary.extend(exclusion_notes)
    if not has_exclusion_columns(raw):
        writer.note("the export has no quality_flags/excluded columns (an export from before "
                    "quality flags): treated as no exclusions")
    covariates = [c for c in variables.adjustment_covariates if c in frame] if options.adjust \
        else []
    summary.append("covariate adjustment: Lin (2013), centred covariates interacted with arm: "
                   + (", ".join(covariates) if covariates else "none"))

    writer.section("Participant flow (CONSORT)", lambda: writer.table(
        funnel_table(raw, variables), "funnel", "Participant flow by state and arm"))

    def attrition() -> None:
        table, tests = attrition_table(raw, variables, options.se_type)
        writer.table(table, "attrition", "Attrition after assignment by arm")
        if table["attrited"].sum() == 0:
            writer.paragraph("Differential attrition: not tested, nobody dropped out after assignment.")
            return
        writer.paragraph(
            "Differential attrition: chi-square = {} (p = {}); robust F of arm dummies in an LPM "
            "of attrition = {} (p = {}).".format(*(_format(tests[k]) for k in
                                                   ("chi2", "chi2_p", "F", "F_p"))))
    writer.section("Attrition after assignment", attrition)

    writer.section("Scales and reliability", lambda: writer.table(
        reliability_table(frame, variables.scales, variables.post_treatment_variables),
        "scales", "Scales: items, Cronbach's alpha, mean inter-item correlation"))

    writer.section("Balance on pre-treatment covariates", lambda: writer.table(
        balance_table(frame, variables, options.se_type), "balance",
        "Balance across arms: means/shares, standardized differences vs control, omnibus tests"))

    def flags() -> None:
        table = flag_balance_table(raw, variables)
        if table.empty:
            writer.paragraph("No quality flags in this export (no quality_flags/excluded "
                             "columns).")
            return
        writer.paragraph(
            "Share of assigned respondents raising each quality flag, by arm, with a test of "
            "equal rates (chi-square, or Fisher's exact test when an expected count is under "
            "5). A flag whose rate differs by arm is raised by the treatment itself: excluding "
            "on it is post-treatment selection and can bias the effects.")
        selected = table.loc[table["post_treatment_selection"], "flag"].tolist()
        if selected:
            writer.paragraph("Post-treatment selection: " + ", ".join(selected) + " differ by "
                             "arm (p < 0.05); compare the effects with and without exclusions "
                             "below.", css="warning")
        writer.table(table, "quality_flags_by_arm", "Quality flags by arm (balance test)")
    writer.section("Quality flags across arms (post-treatment selection check)", flags)

    effects_holder: dict[str, pd.DataFrame] = {}

    def effects() -> None:
        effect_table, contrasts, notes = estimate_effects(
            frame, variables, se_type=options.se_type, covariates=covariates or None)
        for note in notes:
            writer.note(note)
        if effect_table.empty:
            raise EstimationError("no outcome could be estimated")
        effect_table = adjust_pvalues(effect_table, "p", ["estimator", "arm", "family"])
        effects_holder["effects"] = effect_table
        writer.paragraph("p_holm and p_bh adjust across the outcomes of each outcome family "
                         "(DV1, DV2, DV3), separately for each arm and estimator.")
        writer.table(effect_table, "effects", "Treatment effects of each arm versus control")
        from analysis.plots import coefficient_plot

        for estimator, part in effect_table.groupby("estimator", sort=False):
            path = writer.figures_dir / f"effects_{estimator}.png"
            coefficient_plot(part, path, f"Effects vs control ({estimator}, 95% CI)")
            writer.figure(path, f"Coefficient plot: effects vs control ({estimator})")
        if not contrasts.empty:
            contrasts = adjust_pvalues(contrasts, "p_one_sided",
                                       ["estimator", "contrast", "family"])
            writer.heading("Planned contrasts H1a-H1c (one-sided)", 3)
            writer.table(contrasts, "contrasts",
                         "Planned contrasts (one-sided p for the directional hypotheses)")
            writer.table(intersection_union(contrasts), "h1a_joint",
                         "H1a joint test: house beats both landmarks (intersection-union)")
    writer.section("Treatment effects and planned contrasts (H1)", effects)

    def sensitivity() -> None:
        primary = effects_holder.get("effects")
        samples = {options.exclusions: primary}
        for name, sample in (("preregistered", preregistered), ("none", everyone)):
            if samples.get(name) is None:
                samples[name], _, _ = estimate_effects(sample, variables,
                                                       se_type=options.se_type,
                                                       covariates=covariates or None)
        weighted, weighting, weighting_summary, weighting_notes = _weighted_effects(
            frame, variables, options)
        table = side_by_side(samples["preregistered"], samples["none"], weighted)
        writer.paragraph(
            "Unadjusted effects (differences in means) on the pre-registered sample (excluded == "
            "1 left out), on everyone, and weighted to the census margins. The weighted effects "
            "are a robustness check, not the pre-registered estimate: WLS of the outcome on arm "
            "dummies with "
            f"{options.se_type} standard errors, on the "
            + ("pre-registered sample." if options.exclusions == "preregistered"
               else "whole sample."))
        sizes = {name: _n_range(part) for name, part in (
            ("pre-registered", samples["preregistered"]), ("everyone", samples["none"]),
            ("weighted", weighted))}
        writer.paragraph("Respondents per model: " + "; ".join(
            f"{name} {size}" for name, size in sizes.items() if size) + ".")
        writer.table(table, "effects_by_sample",
                     "Effects vs control: pre-registered sample, everyone, and weighted "
                     "(robustness check)")
        writer.paragraph(weighting_summary)
        if weighting is not None:
            margins = weighting.margins_table()
            writer.table(margins[margins["province_code"] == "all"], "weight_margins_national",
                         "Census margins (national): target, sample and weighted, percent of "
                         "adults")
            writer.table(margins, "weight_margins", "Census margins by province: target, "
                                                    "sample and weighted, percent of adults")
        if weighting_notes:
            writer.note("weights: " + "; ".join(weighting_notes))
    writer.section("Sample: with and without exclusions, and weighted (robustness check)",
                   sensitivity)

    def binary() -> None:
        table, notes = binary_effects(frame, variables, se_type=options.se_type)
        for note in notes:
            writer.note(note)
        writer.table(table, "binary", "Binary outcomes: LPM (robust SE) and logit AME vs control")
    writer.section("Binary outcomes: LPM and logit average marginal effects", binary)

    def moderation() -> None:
        from analysis.plots import moderation_figure

        if any(variables.is_post_treatment(m.name) for m in variables.moderators):
            writer.paragraph("Warning: " + POST_TREATMENT_WARNING, css="warning")
        coefficient_rows, effect_rows, jn_rows = [], [], []
        arms = list(variables.treatment_arms)
        for outcome in options.moderation_outcomes:
            for spec in variables.moderators:
                post = variables.is_post_treatment(spec.name)
                try:
                    result = fit_arm_moderation(
                        frame, outcome, spec.name, arms, variables.arm, variables.control_arm,
                        spec.categorical, se_type=options.se_type)
                except EstimationError as error:
                    writer.note(f"moderation {outcome} x {spec.name} skipped: {error}")
                    continue
                for note in result.notes:
                    writer.note(note)
                common = {"outcome": outcome, "moderator": spec.name,
                          "hypothesis": spec.hypothesis, "post_treatment": post}
                table = result.fit.coefficient_table()
                for term, row in table.iterrows():
                    if ":" in term:
                        coefficient_rows.append({**common, "term": term, **row.to_dict(),
                                                 "n": result.fit.nobs})
                for row in result.conditional_effects.to_dict("records"):
                    effect_rows.append({**common, "arm": focal_arm(row.pop("focal")), **row})
                for focal, region in result.johnson_neyman.items():
                    observed = significant_intervals(result, focal)
                    jn_rows.append({
                        **common, "arm": focal_arm(focal),
                        "bounds": ", ".join(f"{b:.4g}" for b in region["bounds"]),
                        "significant_where": region["significant_where"],
                        "significant_within_observed": "; ".join(
                            f"[{a:.4g}, {b:.4g}]" for a, b in observed) or "nowhere",
                    })
                stem = f"moderation_{_slug(outcome)}_{_slug(spec.name)}"
                marker = " [post-treatment moderator]" if post else ""
                path = moderation_figure(result, writer.figures_dir / f"{stem}.png", post)
                writer.figure(path, f"{outcome} x {spec.name}: conditional effects (95% band, "
                                    f"dotted: Johnson-Neyman bounds) and interaction plot{marker}")
        coefficients = pd.DataFrame(coefficient_rows)
        if not coefficients.empty:
            coefficients = adjust_pvalues(coefficients, "p", ["outcome", "hypothesis"])
        writer.table(coefficients, "moderation_coefficients",
                     "H2: arm x moderator interaction coefficients (post_treatment flags "
                     "emotions)")
        writer.table(pd.DataFrame(effect_rows), "moderation_conditional_effects",
                     "H2: conditional effects (simple slopes) at mean -1 SD, mean, +1 SD")
        writer.table(pd.DataFrame(jn_rows), "johnson_neyman",
                     "H2: Johnson-Neyman regions of significance (95%)")
    writer.section("Moderation (H2): ideology, worry, emotions", moderation)

    def power() -> None:
        assigned = int(frame[variables.arm].isin(variables.arms).sum())
        planned = max(assigned, 10 * len(variables.arms))
        table = simulate_power(planned, options.power_effects, reps=options.power_reps,
                               variables=variables)
        writer.paragraph(f"Simulated power at N = {planned} for the planned effects (SD units): "
                         + ", ".join(f"{k} {v}" for k, v in options.power_effects.items()))
        writer.table(table, "power", "Simulation-based power of the directional contrasts")
    writer.section("Power (simulation)", power)

    return writer.write("Floodlight: pre-registered analysis", summary)
