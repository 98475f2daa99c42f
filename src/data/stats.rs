//! Statistics: quality metrics of binary predictions, and the drift statistics proctor
//! recomputes on the harness side to put beside what a service claims.
//!
//! KS p-values and the chi-square distribution come from statrs; AUC, log loss, calibration
//! error, PSI, Wasserstein-1 and Jensen-Shannon are small enough to write here.

use std::collections::BTreeMap;

use statrs::distribution::{ChiSquared, ContinuousCDF};
use statrs::stats_tests::ks_test::{ks_twosample, KSTwoSampleAlternativeMethod};
use statrs::stats_tests::NaNPolicy;

/// Area under the ROC curve (probability that a random positive outranks a random negative,
/// ties counting half). None when one class is absent.
pub fn auc(scores: &[f64], labels: &[f64]) -> Option<f64> {
    let mut pairs: Vec<(f64, bool)> = scores
        .iter()
        .zip(labels)
        .map(|(s, l)| (*s, *l >= 0.5))
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = pairs.iter().filter(|p| p.1).count() as f64;
    let negatives = pairs.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
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

/// Expected calibration error over `bins` equal-width bins of predicted probability.
pub fn calibration_error(scores: &[f64], labels: &[f64], bins: usize) -> f64 {
    let mut sum_p = vec![0.0; bins];
    let mut sum_y = vec![0.0; bins];
    let mut count = vec![0usize; bins];
    for (s, l) in scores.iter().zip(labels) {
        let b = ((s * bins as f64) as usize).min(bins - 1);
        sum_p[b] += s;
        sum_y[b] += l;
        count[b] += 1;
    }
    let n = scores.len().max(1) as f64;
    (0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| (sum_p[b] - sum_y[b]).abs() / n)
        .sum()
}

/// Two-sample Kolmogorov-Smirnov statistic and p-value (asymptotic).
pub fn ks(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    // statrs' asymptotic mode does not return when the statistic is exactly 0.
    if ks_statistic(a, b) == 0.0 {
        return Some((0.0, 1.0));
    }
    ks_twosample(
        a.to_vec(),
        b.to_vec(),
        KSTwoSampleAlternativeMethod::TwoSidedAsymptotic,
        NaNPolicy::Emit,
    )
    .ok()
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

/// Chi-square test of homogeneity between two samples of categories (a 2 x k contingency
/// table). Categories seen in only one sample count too: an unseen category is drift.
pub fn chi_square(
    reference: &BTreeMap<String, f64>,
    current: &BTreeMap<String, f64>,
) -> Option<(f64, f64)> {
    let cats: std::collections::BTreeSet<&String> =
        reference.keys().chain(current.keys()).collect();
    let n_ref: f64 = reference.values().sum();
    let n_cur: f64 = current.values().sum();
    let total = n_ref + n_cur;
    if n_ref == 0.0 || n_cur == 0.0 || cats.len() < 2 {
        return None;
    }
    let mut stat = 0.0;
    for c in &cats {
        let r = reference.get(*c).copied().unwrap_or(0.0);
        let k = current.get(*c).copied().unwrap_or(0.0);
        let col = r + k;
        for (obs, row) in [(r, n_ref), (k, n_cur)] {
            let expected = row * col / total;
            if expected > 0.0 {
                stat += (obs - expected).powi(2) / expected;
            }
        }
    }
    let dof = (cats.len() - 1) as f64;
    let p = ChiSquared::new(dof).ok()?.sf(stat);
    Some((stat, p))
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
    fn calibration_error_is_zero_when_calibrated() {
        let scores = [0.25, 0.25, 0.25, 0.25];
        assert!(calibration_error(&scores, &[1.0, 0.0, 0.0, 0.0], 10) < 1e-12);
        assert!((calibration_error(&[0.9, 0.9], &[0.0, 0.0], 10) - 0.9).abs() < 1e-12);
    }

    #[test]
    fn ks_matches_scipy() {
        // scipy.stats.ks_2samp([1,2,3,4,5],[3,4,5,6,7,8]) -> statistic 0.5 (at x = 5: 1.0 vs 0.5)
        let (d, p) = ks(&[1.0, 2.0, 3.0, 4.0, 5.0], &[3.0, 4.0, 5.0, 6.0, 7.0, 8.0]).unwrap();
        assert!((d - 0.5).abs() < 1e-12, "{d}");
        assert!(
            (ks_statistic(&[1.0, 2.0, 3.0, 4.0, 5.0], &[3.0, 4.0, 5.0, 6.0, 7.0, 8.0]) - 0.5).abs()
                < 1e-12
        );
        assert!(p > 0.1 && p < 0.6, "{p}");
        assert_eq!(ks(&[1.0, 2.0], &[1.0, 2.0]), Some((0.0, 1.0)));
        let shifted: Vec<f64> = (0..500).map(|i| i as f64 + 200.0).collect();
        let base: Vec<f64> = (0..500).map(|i| i as f64).collect();
        assert!(ks(&base, &shifted).unwrap().1 < 1e-10);
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
