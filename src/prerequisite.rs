//! Prerequisites: points that count only when other points were earned. A service that computes
//! nothing (the same probability for every input) is fast, consistent and answers every
//! missing-value request with a well-formed number; without prerequisites it collects latency,
//! consistency and missing-data points for doing nothing. A grader declares, for example, that
//! those points need the holdout AUC check to earn something.
//!
//! This module holds the rule as the grader file declares it ([`Prerequisite`]), its check
//! against the checks a grader declares ([`validate`]), and its application to a run's check
//! results ([`apply`]), a pure function called once, after every phase ran and before the score.
//!
//! A name in `requires` or `gates` is a check's name or a category's (`quality`, `latency`).
//! Prerequisites apply in file order, so one may require points that an earlier one gates; a
//! rule that requires what it or a later rule gates is refused (no cycles).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::{Category, CheckResult, DeclaredCheck, Visibility};

/// One `[[prerequisite]]` of a grader file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prerequisite {
    /// Named in the messages of the checks it withholds, e.g. "predictions carry signal".
    pub name: String,
    /// Checks or categories whose points must be earned.
    pub requires: Vec<String>,
    /// The share of the required checks' points that must be earned, in (0, 1].
    pub min_share: f64,
    /// Checks or categories whose points depend on it.
    pub gates: Vec<String>,
    #[serde(default)]
    pub mode: Mode,
}

/// What happens to gated points when the share earned is under `min_share`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Gated points are kept in full at or above `min_share`, and set to zero below it.
    #[default]
    AllOrNothing,
    /// Gated points are multiplied by share / `min_share` (at most 1): with `min_share = 1`,
    /// by the share of the required points earned.
    Proportional,
}

/// Whether a prerequisite held in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Judgement {
    Met,
    Unmet,
    /// Its required checks did not run (the run ended before them) or had nothing to earn
    /// here (not applicable): there is no evidence either way, so gated points are kept.
    NotJudged,
}

/// What one prerequisite did to a run's points, for the report.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct Applied {
    pub name: String,
    pub mode: Mode,
    pub judgement: Judgement,
    /// Points the required checks earned, and could have earned (after earlier prerequisites).
    pub required_points: f64,
    pub required_max_points: f64,
    pub min_share: f64,
    /// What the gated checks' points were multiplied by: 1 when met or not judged.
    pub factor: f64,
    /// Why it was not judged; empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Every gated check whose points it lowered, with the points it had before.
    pub withheld: Vec<Withheld>,
    /// Hidden when any check it requires or gates is: a candidate's view leaves it out.
    pub visibility: Visibility,
}

/// A gated check's points before and after a prerequisite.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct Withheld {
    pub check: String,
    pub points_before: f64,
    pub points: f64,
}

impl Applied {
    /// Points this prerequisite took away, over all the checks it gates.
    pub fn withheld_points(&self) -> f64 {
        round2(
            self.withheld
                .iter()
                .map(|w| w.points_before - w.points)
                .sum(),
        )
    }
}

/// Whether `name` (from `requires` or `gates`) selects a check of `category` named `check`.
fn selects(name: &str, check: &str, category: Category) -> bool {
    name == check || name == category.as_str()
}

fn selected_by(names: &[String], check: &str, category: Category) -> bool {
    names.iter().any(|n| selects(n, check, category))
}

/// What can be checked of `rules` without knowing the grader's checks: names non-empty and
/// unique, shares in (0, 1], lists not empty.
pub fn validate_fields(rules: &[Prerequisite]) -> Result<(), (String, String)> {
    let mut names = std::collections::BTreeSet::new();
    for (i, p) in rules.iter().enumerate() {
        let field = |f: &str| format!("prerequisite[{i}].{f}");
        if p.name.trim().is_empty() {
            return Err((
                field("name"),
                "a prerequisite needs a non-empty name".into(),
            ));
        }
        if !names.insert(p.name.as_str()) {
            return Err((
                field("name"),
                format!("duplicate prerequisite name {:?}", p.name),
            ));
        }
        if !(p.min_share > 0.0 && p.min_share <= 1.0) {
            return Err((
                field("min_share"),
                format!(
                    "must be a share of the required points in (0, 1], got {}",
                    p.min_share
                ),
            ));
        }
        for (list, names) in [("requires", &p.requires), ("gates", &p.gates)] {
            if names.is_empty() {
                return Err((field(list), "name at least one check or category".into()));
            }
        }
    }
    Ok(())
}

/// Checks `rules` against the checks the grader declares: every name in `requires` and `gates`
/// is a declared check or a category that has one, shares are in (0, 1], names are unique, and
/// no rule requires what it or a later rule gates. `Err` holds the field (`prerequisite[1].gates`)
/// and the message.
pub fn validate(
    rules: &[Prerequisite],
    declared: &[DeclaredCheck],
) -> Result<(), (String, String)> {
    validate_fields(rules)?;
    for (i, p) in rules.iter().enumerate() {
        let field = |f: &str| format!("prerequisite[{i}].{f}");
        for (list, names) in [("requires", &p.requires), ("gates", &p.gates)] {
            for n in names {
                let is_category = Category::ALL.iter().any(|c| c.as_str() == n);
                if !declared.iter().any(|d| selects(n, &d.name, d.category)) {
                    let what = if is_category {
                        format!("category {n:?} has no check in this grader")
                    } else {
                        format!("{n:?} is neither a check of this grader nor a category")
                    };
                    return Err((
                        field(list),
                        format!(
                            "{what} (checks: {})",
                            declared
                                .iter()
                                .map(|d| format!("{:?}", d.name))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                if is_category && declared.iter().any(|d| d.name == *n) {
                    return Err((
                        field(list),
                        format!("{n:?} names both a check and a category; rename the check"),
                    ));
                }
            }
        }
        // A visible check withheld for a hidden one would tell the candidate what was probed.
        let of = |names: &[String], v: Visibility| {
            declared
                .iter()
                .find(|d| d.visibility == v && selected_by(names, &d.name, d.category))
        };
        if let (Some(h), Some(v)) = (
            of(&p.requires, Visibility::Hidden),
            of(&p.gates, Visibility::Visible),
        ) {
            return Err((
                field("gates"),
                format!(
                    "the visible check {:?} cannot depend on the hidden check {:?}: its message \
                     would tell the candidate what the hidden check found",
                    v.name, h.name
                ),
            ));
        }
        // Application in file order: what this rule requires must be final by then.
        for (j, later) in rules.iter().enumerate().skip(i) {
            if let Some(d) = declared.iter().find(|d| {
                selected_by(&p.requires, &d.name, d.category)
                    && selected_by(&later.gates, &d.name, d.category)
            }) {
                let by = if j == i {
                    "by this prerequisite itself".to_string()
                } else {
                    format!("by prerequisite[{j}] {:?}, declared after it", later.name)
                };
                return Err((
                    field("requires"),
                    format!(
                        "{:?} is gated {by}: a prerequisite may require only checks that \
                         prerequisites declared before it gate (they apply in file order)",
                        d.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Applies `rules`, in order, to the checks a run produced, lowering the points of gated checks
/// whose prerequisite is unmet, and says what each rule did. `checks` holds only what ran: a
/// required check absent from it did not run (the run ended before it), and the rule is not
/// judged, so a run cut short keeps the points it earned before it ended.
pub fn apply(rules: &[Prerequisite], checks: &mut [CheckResult]) -> Vec<Applied> {
    rules.iter().map(|p| apply_one(p, checks)).collect()
}

/// Whether `p` requires or gates a hidden check among `checks`: then it is hidden itself, since
/// it names that check. Decided again once the checks a run did not reach are listed, so that a
/// rule over checks that never ran is hidden when they are.
pub fn names_hidden(p: &Prerequisite, checks: &[CheckResult]) -> bool {
    checks.iter().any(|c| {
        c.visibility == Visibility::Hidden
            && (selected_by(&p.requires, &c.name, c.category)
                || selected_by(&p.gates, &c.name, c.category))
    })
}

fn apply_one(p: &Prerequisite, checks: &mut [CheckResult]) -> Applied {
    let required: Vec<&CheckResult> = checks
        .iter()
        .filter(|c| selected_by(&p.requires, &c.name, c.category))
        .collect();
    let hidden = names_hidden(p, checks);
    let earned = round2(required.iter().map(|c| c.points).sum());
    let max = round2(required.iter().map(|c| c.max_points).sum());
    let mut applied = Applied {
        name: p.name.clone(),
        mode: p.mode,
        judgement: Judgement::Met,
        required_points: earned,
        required_max_points: max,
        min_share: p.min_share,
        factor: 1.0,
        reason: String::new(),
        withheld: Vec::new(),
        visibility: if hidden {
            Visibility::Hidden
        } else {
            Visibility::Visible
        },
    };
    // A named check that is not among the results did not run; a category with no result
    // did not run either.
    let not_run: Vec<&String> = p
        .requires
        .iter()
        .filter(|n| !checks.iter().any(|c| selects(n, &c.name, c.category)))
        .collect();
    if !not_run.is_empty() {
        applied.judgement = Judgement::NotJudged;
        applied.reason = format!(
            "{} did not run; the points gated on it are kept",
            quoted(&not_run)
        );
        return applied;
    }
    if max <= 0.0 {
        applied.judgement = Judgement::NotJudged;
        applied.reason =
            "the required checks had no points to earn in this run (not applicable); the \
             points gated on them are kept"
                .into();
        return applied;
    }
    let share = earned / max;
    if share >= p.min_share {
        return applied;
    }
    applied.judgement = Judgement::Unmet;
    applied.factor = match p.mode {
        Mode::AllOrNothing => 0.0,
        Mode::Proportional => share / p.min_share,
    };
    let evidence = format!(
        "{} earned {earned} of {max}, {:.0}% needed",
        quoted(&p.requires.iter().collect::<Vec<_>>()),
        p.min_share * 100.0
    );
    for c in checks
        .iter_mut()
        .filter(|c| selected_by(&p.gates, &c.name, c.category) && c.points > 0.0)
    {
        let before = c.points;
        c.points = round2(before * applied.factor);
        c.passed = c.points >= c.max_points;
        let what = match p.mode {
            Mode::AllOrNothing => "not earned".to_string(),
            Mode::Proportional => {
                format!("{:.0}% of {before} earned", applied.factor * 100.0)
            }
        };
        let measured = if c.message.is_empty() {
            String::new()
        } else {
            format!("; measured: {}", c.message)
        };
        c.message = format!("{what}: needs {:?} ({evidence}){measured}", p.name);
        applied.withheld.push(Withheld {
            check: c.name.clone(),
            points_before: before,
            points: c.points,
        });
    }
    applied
}

fn quoted(names: &[&String]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// As `score::round2` (a module on this layer may not use another): two decimals keep reports
/// stable across regrades.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, category: Category, points: f64, max: f64) -> CheckResult {
        CheckResult {
            grader: String::new(),
            name: name.into(),
            category,
            points,
            max_points: max,
            passed: points == max,
            message: "measured".into(),
            visibility: Visibility::Visible,
        }
    }

    fn rule(requires: &[&str], min_share: f64, gates: &[&str], mode: Mode) -> Prerequisite {
        Prerequisite {
            name: "predictions carry signal".into(),
            requires: requires.iter().map(|s| s.to_string()).collect(),
            min_share,
            gates: gates.iter().map(|s| s.to_string()).collect(),
            mode,
        }
    }

    /// A constant service: no AUC points, full latency and consistency points.
    fn constant_service() -> Vec<CheckResult> {
        vec![
            check("auc on holdout", Category::Quality, 0.0, 8.0),
            check("log_loss on holdout", Category::Quality, 0.0, 2.0),
            check("p50", Category::Latency, 3.0, 3.0),
            check("p99", Category::Latency, 2.0, 2.0),
            check("same under load", Category::Consistency, 4.0, 4.0),
            check("nulls", Category::MissingData, 0.0, 3.0),
        ]
    }

    #[test]
    fn all_or_nothing_withholds_every_gated_point_and_says_why() {
        let mut checks = constant_service();
        let r = rule(
            &["auc on holdout"],
            0.01,
            &["latency", "same under load", "missing_data"],
            Mode::AllOrNothing,
        );
        let applied = apply(&[r], &mut checks);
        let a = &applied[0];
        assert_eq!(a.judgement, Judgement::Unmet);
        assert_eq!((a.required_points, a.required_max_points), (0.0, 8.0));
        assert_eq!(a.withheld_points(), 9.0);
        // The check that had earned nothing is not listed: nothing was withheld from it.
        assert_eq!(
            a.withheld
                .iter()
                .map(|w| w.check.as_str())
                .collect::<Vec<_>>(),
            ["p50", "p99", "same under load"]
        );
        assert_eq!(a.withheld[0].points_before, 3.0);
        let p50 = &checks[2];
        assert_eq!((p50.points, p50.passed), (0.0, false));
        assert_eq!(
            p50.message,
            "not earned: needs \"predictions carry signal\" ('auc on holdout' earned 0 of 8, \
             1% needed); measured: measured"
        );
        // Checks it does not gate are untouched.
        assert_eq!(checks[0], constant_service()[0]);
    }

    #[test]
    fn a_check_that_passed_without_a_message_gets_only_the_reason() {
        let mut checks = constant_service();
        checks[2].message.clear();
        let r = rule(&["auc on holdout"], 0.01, &["p50"], Mode::AllOrNothing);
        apply(&[r], &mut checks);
        assert!(
            checks[2].message.ends_with("1% needed)"),
            "{}",
            checks[2].message
        );
    }

    #[test]
    fn proportional_scales_gated_points_by_the_share_earned() {
        let mut checks = constant_service();
        checks[0].points = 2.0; // a quarter of the AUC points
        let r = rule(&["auc on holdout"], 1.0, &["latency"], Mode::Proportional);
        let a = &apply(&[r], &mut checks)[0];
        assert_eq!(a.judgement, Judgement::Unmet);
        assert_eq!(a.factor, 0.25);
        assert_eq!((checks[2].points, checks[3].points), (0.75, 0.5));
        assert!(checks[2].message.starts_with("25% of 3 earned: needs"));
        assert_eq!(checks[4].points, 4.0, "consistency is not gated");
    }

    #[test]
    fn a_met_prerequisite_changes_nothing() {
        let mut checks = constant_service();
        checks[0].points = 0.1; // 1.25% of 8 reaches a 1% floor
        let before = checks.clone();
        let r = rule(&["auc on holdout"], 0.01, &["latency"], Mode::AllOrNothing);
        let a = &apply(&[r], &mut checks)[0];
        assert_eq!((a.judgement, a.factor), (Judgement::Met, 1.0));
        assert!(a.withheld.is_empty());
        assert_eq!(checks, before);
    }

    #[test]
    fn a_required_category_sums_its_checks() {
        let mut checks = constant_service();
        checks[1].points = 2.0; // 2 of the 10 quality points
        let r = rule(&["quality"], 0.25, &["consistency"], Mode::AllOrNothing);
        let a = &apply(std::slice::from_ref(&r), &mut checks)[0];
        assert_eq!((a.required_points, a.required_max_points), (2.0, 10.0));
        assert_eq!(checks[4].points, 0.0);
        let mut checks = constant_service();
        checks[1].points = 2.5;
        assert_eq!(apply(&[r], &mut checks)[0].judgement, Judgement::Met);
    }

    #[test]
    fn a_required_check_that_did_not_run_keeps_the_gated_points() {
        // The run ended (the service crashed) before quality ran.
        let mut checks: Vec<_> = constant_service()
            .into_iter()
            .filter(|c| c.category != Category::Quality)
            .collect();
        let before = checks.clone();
        let r = rule(&["auc on holdout"], 0.01, &["latency"], Mode::AllOrNothing);
        let a = &apply(&[r], &mut checks)[0];
        assert_eq!(a.judgement, Judgement::NotJudged);
        assert!(
            a.reason.contains("'auc on holdout' did not run"),
            "{}",
            a.reason
        );
        assert_eq!(checks, before);
    }

    #[test]
    fn a_required_check_that_was_not_applicable_keeps_the_gated_points() {
        let mut checks = constant_service();
        checks[0].max_points = 0.0; // listed as not applicable
        let r = rule(&["auc on holdout"], 0.01, &["latency"], Mode::AllOrNothing);
        assert_eq!(apply(&[r], &mut checks)[0].judgement, Judgement::NotJudged);
        assert_eq!(checks[2].points, 3.0);
    }

    #[test]
    fn rules_apply_in_order_so_a_later_one_sees_what_an_earlier_withheld() {
        let mut checks = constant_service();
        let first = rule(
            &["auc on holdout"],
            0.01,
            &["consistency"],
            Mode::AllOrNothing,
        );
        let mut second = rule(&["consistency"], 1.0, &["latency"], Mode::AllOrNothing);
        second.name = "answers stay the same".into();
        let applied = apply(&[first, second], &mut checks);
        assert_eq!(applied[1].judgement, Judgement::Unmet);
        assert_eq!(checks[2].points, 0.0);
    }

    #[test]
    fn a_hidden_check_makes_the_prerequisite_hidden() {
        let mut checks = constant_service();
        checks[0].visibility = Visibility::Hidden;
        let r = rule(&["auc on holdout"], 0.01, &["latency"], Mode::AllOrNothing);
        assert_eq!(apply(&[r], &mut checks)[0].visibility, Visibility::Hidden);
    }

    fn declared() -> Vec<DeclaredCheck> {
        constant_service()
            .iter()
            .map(|c| DeclaredCheck::new(&c.name, c.category, c.max_points, c.visibility))
            .collect()
    }

    fn invalid(rules: &[Prerequisite]) -> (String, String) {
        validate(rules, &declared()).unwrap_err()
    }

    #[test]
    fn validation_accepts_checks_and_categories() {
        let r = rule(
            &["auc on holdout", "quality"],
            0.5,
            &["latency", "nulls"],
            Mode::Proportional,
        );
        assert_eq!(validate(&[r], &declared()), Ok(()));
    }

    #[test]
    fn validation_refuses_unknown_names_and_empty_categories() {
        let (field, message) = invalid(&[rule(&["AUC"], 0.01, &["latency"], Mode::AllOrNothing)]);
        assert_eq!(field, "prerequisite[0].requires");
        assert!(message.contains("\"AUC\" is neither a check"), "{message}");
        assert!(
            message.contains("\"auc on holdout\""),
            "lists the checks: {message}"
        );
        let (field, message) = invalid(&[rule(&["quality"], 0.01, &["drift"], Mode::AllOrNothing)]);
        assert_eq!(field, "prerequisite[0].gates");
        assert!(
            message.contains("category \"drift\" has no check"),
            "{message}"
        );
    }

    #[test]
    fn validation_refuses_bad_shares_empty_lists_and_duplicates() {
        for share in [0.0, -1.0, 1.5, f64::NAN] {
            let (field, _) =
                invalid(&[rule(&["quality"], share, &["latency"], Mode::AllOrNothing)]);
            assert_eq!(field, "prerequisite[0].min_share", "{share}");
        }
        let (field, _) = invalid(&[rule(&[], 0.5, &["latency"], Mode::AllOrNothing)]);
        assert_eq!(field, "prerequisite[0].requires");
        let r = rule(&["quality"], 0.5, &["latency"], Mode::AllOrNothing);
        let (field, message) = invalid(&[r.clone(), r]);
        assert_eq!(field, "prerequisite[1].name");
        assert!(message.contains("duplicate"), "{message}");
    }

    #[test]
    fn validation_refuses_a_visible_check_gated_on_a_hidden_one() {
        let mut d = declared();
        d[0].visibility = Visibility::Hidden;
        let r = rule(&["auc on holdout"], 0.01, &["latency"], Mode::AllOrNothing);
        let (field, message) = validate(&[r], &d).unwrap_err();
        assert_eq!(field, "prerequisite[0].gates");
        assert!(
            message.contains("hidden check \"auc on holdout\""),
            "{message}"
        );
    }

    #[test]
    fn validation_refuses_cycles() {
        // Requires what it gates, through a category.
        let (field, message) = invalid(&[rule(
            &["auc on holdout"],
            0.5,
            &["quality"],
            Mode::AllOrNothing,
        )]);
        assert_eq!(field, "prerequisite[0].requires");
        assert!(message.contains("by this prerequisite itself"), "{message}");
        // Requires what a later one gates, which in turn requires what it gates.
        let a = rule(&["latency"], 0.5, &["consistency"], Mode::AllOrNothing);
        let mut b = rule(&["consistency"], 0.5, &["p50"], Mode::AllOrNothing);
        b.name = "b".into();
        let (field, message) = invalid(&[a, b]);
        assert_eq!(field, "prerequisite[0].requires");
        assert!(message.contains("by prerequisite[1] \"b\""), "{message}");
    }
}
