//! Statistics: quality metrics of binary predictions, and the drift statistics proctor
//! recomputes on the harness side to put beside what a service claims.
//!
//! KS p-values and the chi-square distribution come from statrs; AUC, average precision,
//! recall at a false positive rate, log loss, Brier score, calibration error, expected cost,
//! PSI, Wasserstein-1 and Jensen-Shannon are small enough to write here.

use std::collections::BTreeMap;

use statrs::distribution::{ChiSquared, ContinuousCDF};
use statrs::stats_tests::ks_test::{ks_twosample, KSTwoSampleAlternativeMethod};
use statrs::stats_tests::NaNPolicy;

/// (score, is positive) by descending score, with the counts of positives and negatives.
type Ranked = (Vec<(f64, bool)>, f64, f64);

/// The predictions ranked, None when one class is absent.
fn ranked(scores: &[f64], labels: &[f64]) -> Option<Ranked> {
    let mut pairs: Vec<(f64, bool)> = scores
        .iter()
        .zip(labels)
        .map(|(s, l)| (*s, *l >= 0.5))
        .collect();
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let positives = pairs.iter().filter(|p| p.1).count() as f64;
    let negatives = pairs.len() as f64 - positives;
    (positives > 0.0 && negatives > 0.0).then_some((pairs, positives, negatives))
}

/// Area under the ROC curve (probability that a random positive outranks a random negative,
/// ties counting half). None when one class is absent.
pub fn auc(scores: &[f64], labels: &[f64]) -> Option<f64> {
    let (mut pairs, positives, negatives) = ranked(scores, labels)?;
    pairs.reverse();
    // Sum of the positives' ranks, with tied scores sharing their average rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j + 1 < pairs.len() && pairs[j + 1].0 == pairs[i].0 {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += pairs[i..=j].iter().filter(|p| p.1).count() as f64 * avg_rank;
        i = j + 1;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

/// The ROC curve as (false positive rate, true positive rate) points, one per distinct score
/// (highest threshold first) from (0, 0) to (1, 1), thinned to at most `max_points` evenly
/// spaced along it (the ends always kept). Empty when one class is absent.
pub fn roc_curve(scores: &[f64], labels: &[f64], max_points: usize) -> Vec<(f64, f64)> {
    let Some((pairs, positives, negatives)) = ranked(scores, labels) else {
        return Vec::new();
    };
    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut i = 0;
    while i < pairs.len() {
        // Tied scores move together: one threshold, one point.
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            if pairs[j].1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            j += 1;
        }
        points.push((fp / negatives, tp / positives));
        i = j;
    }
    let keep = max_points.max(2);
    if points.len() <= keep {
        return points;
    }
    let last = points.len() - 1;
    (0..keep).map(|k| points[k * last / (keep - 1)]).collect()
}

/// The (false positives, true positives) after each distinct threshold, highest first: the
/// exact ROC steps, ties moving together.
fn steps(pairs: &[(f64, bool)]) -> Vec<(f64, f64)> {
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut out = Vec::new();
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            if pairs[j].1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            j += 1;
        }
        out.push((fp, tp));
        i = j;
    }
    out
}

/// Average precision (the area under the precision-recall curve as scikit-learn's
/// `average_precision_score` computes it: the precision at each threshold weighted by the
/// recall it adds). On imbalanced data it says what AUC hides: how many of the flagged are
/// positives. None when one class is absent.
pub fn average_precision(scores: &[f64], labels: &[f64]) -> Option<f64> {
    let (pairs, positives, _) = ranked(scores, labels)?;
    let mut ap = 0.0;
    let mut recall_before = 0.0;
    for (fp, tp) in steps(&pairs) {
        let recall = tp / positives;
        ap += (recall - recall_before) * tp / (tp + fp);
        recall_before = recall;
    }
    Some(ap)
}

/// The highest true positive rate of a threshold whose false positive rate is at most `fpr`:
/// how many positives are caught when only so many negatives may be flagged. None when one
/// class is absent.
pub fn recall_at_fpr(scores: &[f64], labels: &[f64], fpr: f64) -> Option<f64> {
    let (pairs, positives, negatives) = ranked(scores, labels)?;
    Some(
        steps(&pairs)
            .into_iter()
            .filter(|(fp, _)| fp / negatives <= fpr + 1e-12)
            .map(|(_, tp)| tp / positives)
            .fold(0.0, f64::max),
    )
}

/// Mean squared error of the probabilities (the Brier score): calibration and sharpness.
pub fn brier(scores: &[f64], labels: &[f64]) -> f64 {
    let n = scores.len().max(1) as f64;
    scores
        .iter()
        .zip(labels)
        .map(|(s, l)| (s - l).powi(2))
        .sum::<f64>()
        / n
}

/// The cost of each kind of decision, per instance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Costs {
    pub true_positive: f64,
    pub false_positive: f64,
    pub false_negative: f64,
    pub true_negative: f64,
}

/// The cost per 1000 instances of `decisions` (true: flagged as positive) under `costs`.
pub fn expected_cost(decisions: &[bool], labels: &[f64], costs: &Costs) -> f64 {
    let total: f64 = decisions
        .iter()
        .zip(labels)
        .map(|(d, l)| match (*d, *l >= 0.5) {
            (true, true) => costs.true_positive,
            (true, false) => costs.false_positive,
            (false, true) => costs.false_negative,
            (false, false) => costs.true_negative,
        })
        .sum();
    total * 1000.0 / decisions.len().max(1) as f64
}

/// One bin of a reliability diagram: predictions in [lo, hi), how many, their mean, and the
/// share of positives among them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReliabilityBin {
    pub lo: f64,
    pub hi: f64,
    pub count: usize,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

/// The reliability diagram over `bins` equal-width bins of predicted probability (the bins
/// [`calibration_error`] uses); empty bins are left out.
pub fn reliability(scores: &[f64], labels: &[f64], bins: usize) -> Vec<ReliabilityBin> {
    let mut sum_p = vec![0.0; bins];
    let mut sum_y = vec![0.0; bins];
    let mut count = vec![0usize; bins];
    for (s, l) in scores.iter().zip(labels) {
        let b = ((s * bins as f64) as usize).min(bins - 1);
        sum_p[b] += s;
        sum_y[b] += l;
        count[b] += 1;
    }
    (0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| ReliabilityBin {
            lo: b as f64 / bins as f64,
            hi: (b + 1) as f64 / bins as f64,
            count: count[b],
            mean_predicted: sum_p[b] / count[b] as f64,
            observed_rate: sum_y[b] / count[b] as f64,
        })
        .collect()
}

/// Share of predictions on the right side of 0.5.
pub fn accuracy(scores: &[f64], labels: &[f64]) -> f64 {
    let right = scores
        .iter()
        .zip(labels)
        .filter(|(s, l)| (**s >= 0.5) == (**l >= 0.5))
        .count();
    right as f64 / scores.len().max(1) as f64
}

/// Mean negative log-likelihood, probabilities clipped to [1e-15, 1 - 1e-15].
pub fn log_loss(scores: &[f64], labels: &[f64]) -> f64 {
    let eps = 1e-15;
    let total: f64 = scores
        .iter()
        .zip(labels)
        .map(|(s, l)| {
            let p = s.clamp(eps, 1.0 - eps);
            -(l * p.ln() + (1.0 - l) * (1.0 - p).ln())
        })
        .sum();
    total / scores.len().max(1) as f64
}

/// Expected calibration error over `bins` equal-width bins of predicted probability: the
/// count-weighted gap between mean prediction and observed rate of the [`reliability`] bins.
pub fn calibration_error(scores: &[f64], labels: &[f64], bins: usize) -> f64 {
    let n = scores.len().max(1) as f64;
    reliability(scores, labels, bins)
        .iter()
        .map(|b| b.count as f64 * (b.mean_predicted - b.observed_rate).abs() / n)
        .sum()
}

/// Two-sample Kolmogorov-Smirnov statistic and two-sided p-value, as `scipy.stats.ks_2samp`
/// computes them by default. scipy's `auto` mode computes the exact p-value whenever the larger
/// sample has at most 10,000 values; proctor computes it exactly where statrs can (n·m up to
/// 10,000) and otherwise with [`ks_p_value`], which stays within 0.02 decades of scipy's exact
/// value for p above 1e-10 at the contract's sizes (500 against 8,000, measured).
pub fn ks(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let d = ks_statistic(a, b);
    // statrs' modes do not return when the statistic is exactly 0.
    if d == 0.0 {
        return Some((0.0, 1.0));
    }
    if a.len() * b.len() <= 10_000 {
        if let Ok(exact) = ks_twosample(
            a.to_vec(),
            b.to_vec(),
            KSTwoSampleAlternativeMethod::TwoSidedExact,
            NaNPolicy::Emit,
        ) {
            return Some(exact);
        }
    }
    Some((d, ks_p_value(d, a.len(), b.len())))
}

/// The two-sided p-value of a two-sample KS statistic `d` between samples of `n` and `m`
/// values: the Kolmogorov distribution's tail at Stephens' corrected
/// λ = (√e + 0.12 + 0.11/√e)·d, e = n·m/(n+m). It needs only the statistic, so a service's p-value
/// can be checked against the statistic the service itself reports.
pub fn ks_p_value(d: f64, n: usize, m: usize) -> f64 {
    if n == 0 || m == 0 || !d.is_finite() || d <= 0.0 {
        return 1.0;
    }
    let en = (n as f64 * m as f64) / (n + m) as f64;
    let s = en.sqrt();
    let lambda = (s + 0.12 + 0.11 / s) * d;
    kolmogorov_sf(lambda)
}

/// P(K > λ) of the Kolmogorov distribution: 2 Σ (-1)^(k-1) exp(-2 k² λ²).
fn kolmogorov_sf(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    for k in 1..=100 {
        let k = k as f64;
        let term = (-2.0 * k * k * lambda * lambda).exp();
        sum += if k as u64 % 2 == 1 { term } else { -term };
        if term < 1e-300 || term <= 1e-17 * sum.abs() {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// The bins of the contract's chi-square test: every category of the reference (the training
/// data) and one extra bin pooling every value the reference never had, so that unseen
/// categories show up as drift however many distinct ones there are. Returns the two rows of
/// the 2 × K table, bins empty in both rows dropped.
pub fn chi_square_table(
    reference: &BTreeMap<String, f64>,
    current: &BTreeMap<String, f64>,
) -> (Vec<f64>, Vec<f64>) {
    let known: Vec<(&String, f64)> = reference
        .iter()
        .filter(|(_, n)| **n > 0.0)
        .map(|(k, n)| (k, *n))
        .collect();
    let mut r = Vec::new();
    let mut c = Vec::new();
    for (k, n) in &known {
        r.push(*n);
        c.push(current.get(*k).copied().unwrap_or(0.0));
    }
    let unseen: f64 = current
        .iter()
        .filter(|(k, _)| reference.get(*k).copied().unwrap_or(0.0) <= 0.0)
        .map(|(_, n)| *n)
        .sum();
    r.push(0.0);
    c.push(unseen);
    let keep: Vec<usize> = (0..r.len()).filter(|&i| r[i] + c[i] > 0.0).collect();
    (
        keep.iter().map(|&i| r[i]).collect(),
        keep.iter().map(|&i| c[i]).collect(),
    )
}

/// Pearson's chi-square test of homogeneity without continuity correction
/// (`scipy.stats.chi2_contingency(table, correction=False)`) on the table of
/// [`chi_square_table`]. With fewer than two bins left the statistic is 0 and p is 1, as the
/// contract says; None when either sample is empty.
pub fn chi_square(
    reference: &BTreeMap<String, f64>,
    current: &BTreeMap<String, f64>,
) -> Option<(f64, f64)> {
    let (r, c) = chi_square_table(reference, current);
    let n_ref: f64 = r.iter().sum();
    let n_cur: f64 = c.iter().sum();
    if n_ref == 0.0 || n_cur == 0.0 {
        return None;
    }
    if r.len() < 2 {
        return Some((0.0, 1.0));
    }
    let total = n_ref + n_cur;
    let mut stat = 0.0;
    for (obs_r, obs_c) in r.iter().zip(&c) {
        let col = obs_r + obs_c;
        for (obs, row) in [(*obs_r, n_ref), (*obs_c, n_cur)] {
            let expected = row * col / total;
            stat += (obs - expected).powi(2) / expected;
        }
    }
    Some((stat, chi_square_p_value(stat, r.len() - 1)))
}

/// The chi-square distribution's tail: the p-value of `stat` with `dof` degrees of freedom.
pub fn chi_square_p_value(stat: f64, dof: usize) -> f64 {
    if dof == 0 || !stat.is_finite() || stat <= 0.0 {
        return 1.0;
    }
    ChiSquared::new(dof as f64).map_or(1.0, |d| d.sf(stat))
}

/// Two-sided two-proportion z-test with pooled variance: is the share `x2 / n2` (the window's
/// nulls) different from `x1 / n1` (the reference's)? `p = erfc(|z| / √2)`, and 1 when the
/// pooled share is 0 or 1, as the contract fixes it.
pub fn two_proportion_p_value(x1: f64, n1: f64, x2: f64, n2: f64) -> f64 {
    if n1 <= 0.0 || n2 <= 0.0 {
        return 1.0;
    }
    let pooled = (x1 + x2) / (n1 + n2);
    if pooled <= 0.0 || pooled >= 1.0 {
        return 1.0;
    }
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    let z = (x2 / n2 - x1 / n1) / se;
    statrs::function::erf::erfc(z.abs() / std::f64::consts::SQRT_2)
}

/// Population stability index over the reference's deciles (numeric features).
pub fn psi_numeric(reference: &[f64], current: &[f64]) -> Option<f64> {
    if reference.is_empty() || current.is_empty() {
        return None;
    }
    let mut sorted = reference.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = (1..10)
        .map(|q| sorted[(q * sorted.len() / 10).min(sorted.len() - 1)])
        .collect();
    edges.dedup();
    let bin = |x: f64| edges.iter().take_while(|e| x > **e).count();
    let mut r = vec![0.0; edges.len() + 1];
    let mut c = vec![0.0; edges.len() + 1];
    reference.iter().for_each(|x| r[bin(*x)] += 1.0);
    current.iter().for_each(|x| c[bin(*x)] += 1.0);
    Some(psi_from_counts(&r, &c))
}

/// Population stability index of two category count tables.
pub fn psi_categorical(
    reference: &BTreeMap<String, f64>,
    current: &BTreeMap<String, f64>,
) -> Option<f64> {
    let cats: std::collections::BTreeSet<&String> =
        reference.keys().chain(current.keys()).collect();
    let r: Vec<f64> = cats
        .iter()
        .map(|c| reference.get(*c).copied().unwrap_or(0.0))
        .collect();
    let c: Vec<f64> = cats
        .iter()
        .map(|k| current.get(*k).copied().unwrap_or(0.0))
        .collect();
    (r.iter().sum::<f64>() > 0.0 && c.iter().sum::<f64>() > 0.0).then(|| psi_from_counts(&r, &c))
}

fn psi_from_counts(r: &[f64], c: &[f64]) -> f64 {
    // Empty bins get a small share so that the logarithm stays finite.
    let eps = 1e-4;
    let (nr, nc) = (r.iter().sum::<f64>(), c.iter().sum::<f64>());
    r.iter()
        .zip(c)
        .map(|(a, b)| {
            let p = (a / nr).max(eps);
            let q = (b / nc).max(eps);
            (q - p) * (q / p).ln()
        })
        .sum()
}

/// Wasserstein-1 distance between two empirical distributions.
pub fn wasserstein(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let mut points: Vec<f64> = a.iter().chain(&b).copied().collect();
    points.sort_by(f64::total_cmp);
    let cdf = |xs: &[f64], x: f64| xs.partition_point(|v| *v <= x) as f64 / xs.len() as f64;
    Some(
        points
            .windows(2)
            .map(|w| (cdf(&a, w[0]) - cdf(&b, w[0])).abs() * (w[1] - w[0]))
            .sum(),
    )
}

/// Jensen-Shannon divergence (base 2, in [0, 1]) of two category count tables.
pub fn jensen_shannon(
    reference: &BTreeMap<String, f64>,
    current: &BTreeMap<String, f64>,
) -> Option<f64> {
    let cats: std::collections::BTreeSet<&String> =
        reference.keys().chain(current.keys()).collect();
    let (nr, nc): (f64, f64) = (reference.values().sum(), current.values().sum());
    if nr == 0.0 || nc == 0.0 {
        return None;
    }
    let kl = |p: f64, m: f64| if p > 0.0 { p * (p / m).log2() } else { 0.0 };
    let mut js = 0.0;
    for c in cats {
        let p = reference.get(c).copied().unwrap_or(0.0) / nr;
        let q = current.get(c).copied().unwrap_or(0.0) / nc;
        let m = (p + q) / 2.0;
        js += 0.5 * kl(p, m) + 0.5 * kl(q, m);
    }
    Some(js)
}

#[cfg(test)]
mod tests {
    /// PSI worked by hand over the bins and floor proctor uses (an assignment's contract can
    /// cite them).
    #[test]
    fn psi_follows_examples_worked_by_hand() {
        let reference = [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 2.0, 3.0, 5.0];
        let window = [0.0, 1.0, 1.0, 4.0, 7.0, 9.0];
        let psi = psi_numeric(&reference, &window).unwrap();
        assert!((psi - 4.5516).abs() < 5e-5, "{psi}");
        let counts = |xs: &[(&str, f64)]| {
            xs.iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<BTreeMap<_, _>>()
        };
        let psi = psi_categorical(
            &counts(&[("online", 6.0), ("pos", 3.0), ("atm", 1.0)]),
            &counts(&[("online", 3.0), ("atm", 2.0), ("kiosk", 1.0)]),
        )
        .unwrap();
        assert!((psi - 3.9360).abs() < 5e-5, "{psi}");
    }

    #[test]
    fn imbalance_metrics_match_scikit_learn() {
        // sklearn: average_precision_score([0,0,1,1,0,1], [.1,.4,.35,.8,.2,.9]) = 0.9166...
        let labels = [0.0, 0.0, 1.0, 1.0, 0.0, 1.0];
        let scores = [0.1, 0.4, 0.35, 0.8, 0.2, 0.9];
        let ap = average_precision(&scores, &labels).unwrap();
        assert!((ap - 0.916_666_666_7).abs() < 1e-9, "{ap}");
        // Ties move together: one threshold holding a positive and a negative.
        let ap = average_precision(&[0.5, 0.5], &[1.0, 0.0]).unwrap();
        assert!((ap - 0.5).abs() < 1e-12, "{ap}");
        // At most 1 of 3 negatives flagged: threshold 0.35 flags every positive and 0.4.
        assert_eq!(recall_at_fpr(&scores, &labels, 1.0 / 3.0), Some(1.0));
        assert_eq!(recall_at_fpr(&scores, &labels, 0.0), Some(2.0 / 3.0));
        assert_eq!(average_precision(&[0.2], &[1.0]), None);
        let b = brier(&[1.0, 0.0, 0.5], &[1.0, 1.0, 0.0]);
        assert!((b - 1.25 / 3.0).abs() < 1e-12);
        let costs = Costs {
            true_positive: 1.0,
            false_positive: 1.0,
            false_negative: 100.0,
            true_negative: 0.0,
        };
        // One caught, one missed, one false alarm, one fine: (1 + 100 + 1 + 0) / 4 per instance.
        let c = expected_cost(&[true, false, true, false], &[1.0, 1.0, 0.0, 0.0], &costs);
        assert!((c - 25_500.0).abs() < 1e-9, "{c}");
    }

    use super::*;

    fn counts(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn auc_of_known_rankings() {
        assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &[0.0, 0.0, 1.0, 1.0]), Some(1.0));
        assert_eq!(auc(&[0.9, 0.8, 0.2, 0.1], &[0.0, 0.0, 1.0, 1.0]), Some(0.0));
        assert_eq!(auc(&[0.5, 0.5, 0.5, 0.5], &[0.0, 1.0, 0.0, 1.0]), Some(0.5));
        // scikit-learn: roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) == 0.75
        assert!((auc(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]).unwrap() - 0.75).abs() < 1e-12);
        assert_eq!(auc(&[0.1, 0.2], &[1.0, 1.0]), None);
    }

    #[test]
    fn log_loss_and_accuracy_match_hand_computation() {
        let ll = log_loss(&[0.9, 0.2], &[1.0, 0.0]);
        assert!((ll - (-(0.9f64.ln()) - 0.8f64.ln()) / 2.0).abs() < 1e-12);
        assert_eq!(accuracy(&[0.9, 0.6, 0.1], &[1.0, 0.0, 0.0]), 2.0 / 3.0);
        assert!(log_loss(&[0.0], &[1.0]).is_finite());
    }

    #[test]
    fn roc_curve_runs_from_the_origin_to_one_one_through_each_threshold() {
        // Scores 0.9 (pos), 0.8 (neg), 0.7 (pos), 0.7 (neg), 0.1 (neg).
        let scores = [0.9, 0.8, 0.7, 0.7, 0.1];
        let labels = [1.0, 0.0, 1.0, 0.0, 0.0];
        let r = roc_curve(&scores, &labels, 100);
        let third = 1.0 / 3.0;
        assert_eq!(
            r,
            vec![
                (0.0, 0.0),
                (0.0, 0.5),
                (third, 0.5),
                (2.0 * third, 1.0),
                (1.0, 1.0)
            ]
        );
        // The trapezoids under it are the AUC.
        let area: f64 = r
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
            .sum();
        assert!((area - auc(&scores, &labels).unwrap()).abs() < 1e-12);
        // Thinned, the ends stay.
        let thin = roc_curve(&scores, &labels, 3);
        assert_eq!(thin.len(), 3);
        assert_eq!((thin[0], thin[2]), ((0.0, 0.0), (1.0, 1.0)));
        assert!(roc_curve(&[0.3, 0.4], &[1.0, 1.0], 10).is_empty());
    }

    #[test]
    fn reliability_bins_hold_the_mean_prediction_and_the_observed_rate() {
        let scores = [0.05, 0.15, 0.12, 0.95];
        let labels = [0.0, 1.0, 0.0, 1.0];
        let bins = reliability(&scores, &labels, 10);
        assert_eq!(bins.len(), 3);
        assert_eq!((bins[1].lo, bins[1].hi, bins[1].count), (0.1, 0.2, 2));
        assert!((bins[1].mean_predicted - 0.135).abs() < 1e-12);
        assert_eq!(bins[1].observed_rate, 0.5);
        // The calibration error is their count-weighted gap.
        let ece: f64 = bins
            .iter()
            .map(|b| b.count as f64 / 4.0 * (b.mean_predicted - b.observed_rate).abs())
            .sum();
        assert!((ece - calibration_error(&scores, &labels, 10)).abs() < 1e-12);
    }

    #[test]
    fn calibration_error_is_zero_when_calibrated() {
        let scores = [0.25, 0.25, 0.25, 0.25];
        assert!(calibration_error(&scores, &[1.0, 0.0, 0.0, 0.0], 10) < 1e-12);
        assert!((calibration_error(&[0.9, 0.9], &[0.0, 0.0], 10) - 0.9).abs() < 1e-12);
    }

    /// log10 distance of two p-values.
    fn decades(a: f64, b: f64) -> f64 {
        (a.log10() - b.log10()).abs()
    }

    #[test]
    fn ks_matches_scipy() {
        // scipy 1.x: ks_2samp([0.1,0.4,0.7,1.3,2.2,2.9,3.1],[0.5,1.9,2.5,3.3,4.0,4.1,5.2,6.0])
        // -> statistic 0.625, pvalue 0.055944055944055944 (exact)
        let (d, p) = ks(
            &[0.1, 0.4, 0.7, 1.3, 2.2, 2.9, 3.1],
            &[0.5, 1.9, 2.5, 3.3, 4.0, 4.1, 5.2, 6.0],
        )
        .unwrap();
        assert!((d - 0.625).abs() < 1e-12, "{d}");
        assert!((p - 0.055944055944055944).abs() < 1e-9, "{p}");
        assert_eq!(ks(&[1.0, 2.0], &[1.0, 2.0]), Some((0.0, 1.0)));
        // The contract's sizes, 8000 training values against a window of 500:
        // a = np.arange(8000) * 0.0125; b = np.arange(500) * 0.2 + 3.0
        // ks_2samp(a, b) -> 0.030125, 0.7762198229168522
        let a: Vec<f64> = (0..8000).map(|i| i as f64 * 0.0125).collect();
        let b: Vec<f64> = (0..500).map(|i| i as f64 * 0.2 + 3.0).collect();
        let (d, p) = ks(&a, &b).unwrap();
        assert!((d - 0.030125).abs() < 1e-9, "{d}");
        assert!(decades(p, 0.7762198229168522) < 0.02, "{p}");
        // b = np.arange(500) * 0.19 + 9.0 -> 0.09, 0.0009185318909521128
        let b: Vec<f64> = (0..500).map(|i| i as f64 * 0.19 + 9.0).collect();
        let (d, p) = ks(&a, &b).unwrap();
        assert!((d - 0.09).abs() < 1e-9, "{d}");
        assert!(decades(p, 0.0009185318909521128) < 0.02, "{p}");
        // The p-value of a statistic alone, as used to check a service's own pair.
        assert!(decades(ks_p_value(0.09, 500, 8000), 0.0009185318909521128) < 0.02);
        assert_eq!(ks_p_value(0.0, 500, 8000), 1.0);
    }

    #[test]
    fn chi_square_flags_unseen_categories_and_not_equal_shares() {
        let r = counts(&[("a", 500.0), ("b", 500.0)]);
        let same = counts(&[("a", 250.0), ("b", 250.0)]);
        let (s, p) = chi_square(&r, &same).unwrap();
        assert!(s.abs() < 1e-9 && (p - 1.0).abs() < 1e-9);
        let unseen = counts(&[("a", 200.0), ("b", 200.0), ("zzz", 100.0)]);
        assert!(chi_square(&r, &unseen).unwrap().1 < 1e-10);
        // 2x2 table [[30,70],[50,50]]: chi2 = 8.333 (no continuity correction), p = 0.00389
        let (s, p) = chi_square(
            &counts(&[("x", 30.0), ("y", 70.0)]),
            &counts(&[("x", 50.0), ("y", 50.0)]),
        )
        .unwrap();
        assert!(
            (s - 8.3333).abs() < 1e-3 && (p - 0.00389).abs() < 1e-4,
            "{s} {p}"
        );
    }

    #[test]
    fn chi_square_pools_unseen_values_and_drops_empty_bins_as_scipy() {
        // chi2_contingency([[300,500,200,0],[40,70,10,25]], correction=False)
        // -> 184.59339271098636, 8.983303966834693e-40: the two unseen values share one bin.
        let reference = counts(&[("a", 300.0), ("b", 500.0), ("c", 200.0), ("d", 0.0)]);
        let window = counts(&[
            ("a", 40.0),
            ("b", 70.0),
            ("c", 10.0),
            ("u", 20.0),
            ("v", 5.0),
        ]);
        let (s, p) = chi_square(&reference, &window).unwrap();
        assert!((s - 184.59339271098636).abs() < 1e-9, "{s}");
        assert!(decades(p, 8.983303966834693e-40) < 1e-6, "{p}");
        // chi2_contingency([[300,500,200],[40,70,10]], correction=False)
        // -> 9.631922944616443, 0.008099430954453115: no unseen value, no extra bin.
        let window = counts(&[("a", 40.0), ("b", 70.0), ("c", 10.0)]);
        let (s, p) = chi_square(&reference, &window).unwrap();
        assert!((s - 9.631922944616443).abs() < 1e-9, "{s}");
        assert!((p - 0.008099430954453115).abs() < 1e-12, "{p}");
        // One bin left: statistic 0, p 1.
        let one = counts(&[("a", 10.0)]);
        assert_eq!(chi_square(&one, &one), Some((0.0, 1.0)));
    }

    #[test]
    fn missing_share_test_matches_the_formula_computed_in_python() {
        // math.erfc(abs(z)/math.sqrt(2)) with the pooled z of 800/8000 against 70/500
        // -> 0.004200330692430264; 150/500 -> 3.861732354132836e-43
        let p = two_proportion_p_value(800.0, 8000.0, 70.0, 500.0);
        assert!((p - 0.004200330692430264).abs() < 1e-12, "{p}");
        let p = two_proportion_p_value(800.0, 8000.0, 150.0, 500.0);
        assert!(decades(p, 3.861732354132836e-43) < 1e-6, "{p}");
        assert_eq!(two_proportion_p_value(0.0, 8000.0, 0.0, 500.0), 1.0);
        assert_eq!(two_proportion_p_value(8000.0, 8000.0, 500.0, 500.0), 1.0);
    }

    #[test]
    fn psi_wasserstein_js_behave() {
        let base: Vec<f64> = (0..1000).map(|i| i as f64 / 10.0).collect();
        assert!(psi_numeric(&base, &base).unwrap() < 1e-9);
        let shifted: Vec<f64> = base.iter().map(|x| x + 30.0).collect();
        assert!(psi_numeric(&base, &shifted).unwrap() > 0.25);
        assert!((wasserstein(&base, &shifted).unwrap() - 30.0).abs() < 0.5);
        let r = counts(&[("a", 1.0)]);
        assert!(jensen_shannon(&r, &r).unwrap().abs() < 1e-12);
        assert!((jensen_shannon(&r, &counts(&[("b", 1.0)])).unwrap() - 1.0).abs() < 1e-12);
        assert!(
            psi_categorical(
                &counts(&[("a", 90.0), ("b", 10.0)]),
                &counts(&[("a", 50.0), ("b", 50.0)])
            )
            .unwrap()
                > 0.25
        );
    }
}
