"""Command line: ``python -m analysis {moderation,report,power,simulate,weights} ...``."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from analysis.estimation import SE_TYPES, EstimationError
from analysis.exclusions import EXCLUSION_MODES
from analysis.weights import DEFAULT_CAP

EXIT_USAGE = 2


class CliError(Exception):
    """A user error: printed as one line on stderr, exit code 2, no traceback."""


def _clean(value: object) -> object:
    """JSON has no NaN/inf: non-finite numbers become null."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _read_table(path: str):
    from analysis.io import ExportError, read_export

    try:
        return read_export(path)
    except ExportError as error:
        raise CliError(str(error)) from error


def _parse_at(values: Sequence[str] | None, categorical: bool) -> list[object] | None:
    if values is None:
        return None
    parsed: list[object] = []
    for value in values:
        try:
            parsed.append(float(value))
        except ValueError:
            if not categorical:
                raise CliError(f"--at value {value!r} is not a number") from None
            parsed.append(value)
    return parsed


def run_moderation(args: argparse.Namespace) -> int:
    from analysis.moderation import fit_moderation
    from analysis.variables import load_variables

    data = _read_table(args.data)
    try:
        result = fit_moderation(data, args.outcome, args.focal, args.moderator,
                                covariates=args.covariates or (), se_type=args.se,
                                at=_parse_at(args.at, args.categorical),
                                categorical=args.categorical)
    except (EstimationError, ValueError) as error:
        raise CliError(str(error)) from error
    variables = load_variables(args.codebook)
    if variables.is_post_treatment(args.moderator):
        print(f"warning: {args.moderator} is measured after treatment (post-treatment "
              "moderator); the interaction is not a causal moderation effect", file=sys.stderr)
    coefficients = result.fit.coefficient_table()
    focal_term = result.focal_terms[0]
    effects = result.conditional_effects
    payload = {
        "n": int(result.fit.nobs),
        "coefficients": {term: {k: float(row[k]) for k in
                                ("estimate", "se", "t", "p", "ci_low", "ci_high")}
                         for term, row in coefficients.iterrows()},
        "r2": result.fit.r2,
        "conditional_effects": [
            {"moderator_value": row["moderator_value"], "effect": row["effect"], "se": row["se"],
             "p": row["p"], "ci_low": row["ci_low"], "ci_high": row["ci_high"]}
            for row in effects[effects["focal"] == focal_term].to_dict("records")
        ],
        "johnson_neyman": result.johnson_neyman[focal_term],
    }
    print(json.dumps(_clean(payload)) if args.json else json.dumps(_clean(payload), indent=2))
    return 0


def run_report(args: argparse.Namespace) -> int:
    from analysis.report import ReportOptions, write_report

    options = ReportOptions(se_type=args.se, adjust=not args.no_adjust,
                            exclude_inattentive=args.exclude_inattentive,
                            codebook=args.codebook, power_reps=args.power_reps,
                            exclusions=args.exclusions, margins=args.margins,
                            weight_cap=args.cap)
    try:
        index = write_report(args.input, args.out, options)
    except (EstimationError, ValueError) as error:
        raise CliError(str(error)) from error
    print(index)
    return 0


def _margins_path(value: str | None) -> Path:
    """--margins, else the demo's reference data folder ($FLOODLIGHT_REFERENCE_DATA)."""
    from analysis.weights import MARGINS_FILE_NAME, REFERENCE_DATA_ENV, default_margins_path

    if value:
        return Path(value)
    default = default_margins_path()
    if default is None:
        raise CliError(f"give --margins FILE.csv (or set {REFERENCE_DATA_ENV} to a folder "
                       f"holding {MARGINS_FILE_NAME})")
    return default


def run_weights(args: argparse.Namespace) -> int:
    from analysis.io import load_export
    from analysis.variables import load_variables
    from analysis.weights import WeightingError, format_margins, read_margins, weight_completes

    variables = load_variables(args.codebook)
    try:
        margins = read_margins(_margins_path(args.margins))
        frame = load_export(args.input, variables)
        result, notes = weight_completes(frame, margins, variables, args.exclusions, args.cap)
    except WeightingError as error:
        raise CliError(str(error)) from error
    except ValueError as error:  # ExportError and bad exclusion modes
        raise CliError(str(error)) from error
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.weights.rename("weight").to_frame().assign(
        participant_id=result.participant_ids)[["participant_id", "weight"]].to_csv(
        out, index=False)
    result.notes[:0] = notes
    if args.json:
        print(json.dumps(_clean({**result.summary(), "margins_file": margins.source,
                                 "exclusions": args.exclusions, "out": str(out)})))
    else:
        print(format_margins(result))
        print(f"weights written to {out}")
    return 0


def run_power(args: argparse.Namespace) -> int:
    from analysis.power import simulate_power
    from analysis.variables import TREATMENT_ARMS

    effects = dict(zip(TREATMENT_ARMS, args.effects, strict=True))
    table = simulate_power(args.n, effects, reps=args.reps, alpha=args.alpha, seed=args.seed)
    if args.json:
        print(json.dumps(_clean(table.to_dict("records"))))
    else:
        print(table.to_string(index=False))
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    from analysis.simulate import simulate_export
    from analysis.weights import WeightingError, read_margins

    margins = None
    if args.margins or args.age_bias:
        try:
            margins = read_margins(_margins_path(args.margins))
        except WeightingError as error:
            raise CliError(str(error)) from error
    frame = simulate_export(args.n, seed=args.seed, margins=margins, age_bias=args.age_bias,
                            age_interaction=args.age_interaction)
    out = Path(args.out)
    if out.suffix.lower() == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    print(out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analysis",
                                     description="Floodlight pre-registered analysis")
    commands = parser.add_subparsers(dest="command", required=True)

    moderation = commands.add_parser("moderation", help="one moderated regression Y ~ X * W")
    moderation.add_argument("--data", required=True)
    moderation.add_argument("--outcome", required=True)
    moderation.add_argument("--focal", required=True)
    moderation.add_argument("--moderator", required=True)
    moderation.add_argument("--covariates", nargs="+", default=[])
    moderation.add_argument("--se", choices=SE_TYPES, default="HC2")
    moderation.add_argument("--at", nargs="+")
    moderation.add_argument("--categorical", action="store_true",
                            help="treat the moderator as categorical (dummies, first level base)")
    moderation.add_argument("--codebook", help="JSON/YAML overrides or codebook CSV")
    moderation.add_argument("--json", action="store_true", help="one-line JSON output")
    moderation.set_defaults(handler=run_moderation)

    report = commands.add_parser("report", help="full HTML report from an export file")
    report.add_argument("--input", required=True,
                        help="an export file (.csv, .xlsx, .dta, .parquet) or db:STUDY_SLUG (the study's database)")
    report.add_argument("--out", required=True)
    report.add_argument("--se", choices=SE_TYPES, default="HC2")
    report.add_argument("--no-adjust", action="store_true", help="skip Lin covariate adjustment")
    report.add_argument("--exclude-inattentive", action="store_true",
                        help="drop respondents who failed the (pre-treatment) attention check")
    report.add_argument("--codebook", help="JSON/YAML overrides or codebook CSV")
    report.add_argument("--power-reps", type=int, default=200)
    report.add_argument("--exclusions", choices=EXCLUSION_MODES, default="preregistered",
                        help="analyse the pre-registered sample (excluded == 1 left out) or "
                             "everyone; both are shown side by side")
    report.add_argument("--margins", help="census margins for the weighted robustness check "
                                          "(default $FLOODLIGHT_REFERENCE_DATA/"
                                          "census2021_margins.csv; none: no weighted effects)")
    report.add_argument("--cap", type=float, default=DEFAULT_CAP,
                        help="weight cap, times the mean weight (default 5)")
    report.set_defaults(handler=run_report)

    power = commands.add_parser("power", help="simulation-based power for a planned N")
    power.add_argument("--n", type=int, required=True, help="total planned N (all five arms)")
    power.add_argument("--effects", type=float, nargs=4, default=[0.10, 0.25, 0.20, 0.15],
                       metavar=("DISTANT", "HOUSE", "DISTRICT", "PROVINCIAL"),
                       help="effects vs control in SD units")
    power.add_argument("--reps", type=int, default=1000)
    power.add_argument("--alpha", type=float, default=0.05)
    power.add_argument("--seed", type=int, default=1)
    power.add_argument("--json", action="store_true")
    power.set_defaults(handler=run_power)

    simulate = commands.add_parser("simulate", help="write a synthetic export with planted effects")
    simulate.add_argument("--n", type=int, default=2000)
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument("--out", required=True)
    simulate.add_argument("--margins", help="draw province, age and gender from these census "
                                            "margins (default with --age-bias: "
                                            "$FLOODLIGHT_REFERENCE_DATA/census2021_margins.csv)")
    simulate.add_argument("--age-bias", type=float, default=0.0,
                          help="over-sample the young: selection odds x exp(-BIAS) per 10 years")
    simulate.add_argument("--age-interaction", type=float, default=0.0,
                          help="change of every treatment effect per 10 years of age (latent SD)")
    simulate.set_defaults(handler=run_simulate)

    weights = commands.add_parser("weights", help="rake the completed respondents to census "
                                                  "margins (WEIGHTS.csv: participant_id, weight)")
    weights.add_argument("--input", required=True, help="an export file or db:STUDY_SLUG")
    weights.add_argument("--margins", help="margins CSV (province_code, variable, category, "
                                           "count); default $FLOODLIGHT_REFERENCE_DATA/"
                                           "census2021_margins.csv")
    weights.add_argument("--out", required=True, help="WEIGHTS.csv to write")
    weights.add_argument("--exclusions", choices=EXCLUSION_MODES, default="preregistered",
                         help="weight the pre-registered sample (excluded == 1 left out) or "
                              "everyone")
    weights.add_argument("--cap", type=float, default=DEFAULT_CAP,
                         help="trim weights at this multiple of the mean weight (default 5)")
    weights.add_argument("--codebook", help="JSON/YAML overrides or codebook CSV")
    weights.add_argument("--json", action="store_true",
                         help="print the margins, design_effect and effective_n as JSON")
    weights.set_defaults(handler=run_weights)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse itself exits with code 2 on usage errors
    try:
        return args.handler(args)
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
