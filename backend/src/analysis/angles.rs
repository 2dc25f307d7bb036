//! Reward vectors, directions and shifts (SEAL's released `analysis/functions.py`:
//! `compute_angle`, `compute_cos`, `circular_hist`). A pair's reward vector under a model is
//! (score of chosen, score of rejected); it is aligned when it lies below the diagonal.

use std::collections::BTreeMap;

use seal_shared::report::{AngleStats, Angles, Histogram, Histogram2d, Quadrants, Slice};
use seal_shared::GammaFilter;

use super::{select_indices, stats, Derived, Regime, Study};

/// Signed angle in degrees from a to b, in (−180, 180]: both vectors normalized, cos clipped to
/// [−1, 1] (rounding would otherwise make arccos NaN), negative when the 2-D cross product is.
/// NaN only when a vector is zero (or not finite).
pub fn signed_angle(ax: f64, ay: f64, bx: f64, by: f64) -> f64 {
    let na = ax.hypot(ay);
    let nb = bx.hypot(by);
    let (ux, uy, vx, vy) = (ax / na, ay / na, bx / nb, by / nb);
    let c = (ux * vx + uy * vy).clamp(-1.0, 1.0);
    let theta = c.acos().to_degrees();
    let cross = ux * vy - uy * vx;
    if cross < 0.0 {
        -theta
    } else {
        theta
    }
}

/// Reward direction φ: the signed angle from e = (−1/√2, −1/√2) to (chosen, rejected).
/// φ ∈ (0°, 180°) exactly when chosen > rejected.
pub fn direction(chosen: f64, rejected: f64) -> f64 {
    let e = -std::f64::consts::FRAC_1_SQRT_2;
    signed_angle(e, e, chosen, rejected)
}

/// Reward shift θ_i: the signed rotation from the pre-D vector to the post-D vector.
pub fn shifts(s: &Study) -> Vec<f64> {
    (0..s.pair_ids.len())
        .map(|i| signed_angle(s.pre_chosen[i], s.pre_rejected[i], s.post_chosen[i], s.post_rejected[i]))
        .collect()
}

/// An angle in radians wrapped to [−π, π), as SEAL's `circular_hist` wraps before binning:
/// θ = 180° (π) becomes −π. The polar histograms and the example browser's angle filter both
/// bin through this, so a bin's count is the number of pairs its link lists.
pub fn wrap_radians(x: f64) -> f64 {
    use std::f64::consts::{PI, TAU};
    if x >= PI {
        x - TAU
    } else if x < -PI {
        x + TAU
    } else {
        x
    }
}

/// Circular mean of angles in degrees (scipy `circmean(high=180, low=-180)`, in [−180, 180))
/// and the mean resultant length R̄ = ‖mean unit vector‖ ∈ [0, 1]. Undefined angles are left
/// out; None for an empty sample. When the directions cancel, R̄ is (numerically) 0 and the
/// mean, like scipy's, says nothing; no mean only when the sums are exactly 0.
pub fn circular_mean(degrees: &[f64]) -> (Option<f64>, Option<f64>) {
    let x: Vec<f64> = degrees.iter().copied().filter(|v| v.is_finite()).collect();
    if x.is_empty() {
        return (None, None);
    }
    let n = x.len() as f64;
    let s = x.iter().map(|d| d.to_radians().sin()).sum::<f64>() / n;
    let c = x.iter().map(|d| d.to_radians().cos()).sum::<f64>() / n;
    let r = s.hypot(c);
    if r == 0.0 {
        return (None, Some(0.0));
    }
    let m = s.atan2(c).to_degrees();
    (Some(if m >= 180.0 { m - 360.0 } else { m }), Some(r.min(1.0)))
}

fn some(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Sign test, one-sample t test, mean and median of θ on a slice (undefined angles left out).
pub fn theta_stats(theta: &[f64], idx: &[usize], slice: Slice) -> AngleStats {
    let x: Vec<f64> = idx.iter().map(|&i| theta[i]).filter(|v| v.is_finite()).collect();
    if x.is_empty() {
        return AngleStats {
            slice,
            n: 0,
            mean: None,
            median: None,
            sign_m: None,
            sign_p: None,
            share_positive: None,
            t: None,
            t_p: None,
        };
    }
    let sign = stats::sign_test(&x);
    let t = stats::t_test_1samp(&x);
    AngleStats {
        slice,
        n: x.len() as u64,
        mean: some(stats::mean(&x)),
        median: some(stats::median(&x)),
        sign_m: Some(sign.m),
        sign_p: Some(sign.p_value),
        share_positive: Some(sign.n_pos as f64 / x.len() as f64),
        t: some(t.t),
        t_p: some(t.p_value),
    }
}

fn polar(deg: &[f64]) -> Histogram {
    let rad: Vec<f64> = deg.iter().filter(|v| v.is_finite()).map(|v| wrap_radians(v.to_radians())).collect();
    let (edges, counts) = stats::histogram(&rad, 16);
    Histogram { edges, counts }
}

pub fn report(s: &Study, d: &Derived, warnings: &mut Vec<String>) -> Angles {
    let n = s.pair_ids.len();
    let theta = shifts(s);
    let phi_pre: Vec<f64> = (0..n).map(|i| direction(s.pre_chosen[i], s.pre_rejected[i])).collect();
    let phi_post: Vec<f64> = (0..n).map(|i| direction(s.post_chosen[i], s.post_rejected[i])).collect();
    let undefined = theta.iter().filter(|v| !v.is_finite()).count() as u64;
    if undefined > 0 {
        warnings.push(format!("{undefined} pairs have a zero reward vector: their angles are undefined and left out of the angle statistics"));
    }

    let mut slices = vec![Slice::default()];
    for r in Regime::ALL {
        slices.push(Slice { regime: Some(r), ..Default::default() });
    }
    if d.gamma.is_some() {
        for g in [GammaFilter::C, GammaFilter::I, GammaFilter::R] {
            slices.push(Slice { gamma: Some(g), ..Default::default() });
        }
        for r in Regime::ALL {
            for g in [GammaFilter::Decided, GammaFilter::I] {
                slices.push(Slice { regime: Some(r), gamma: Some(g), ..Default::default() });
            }
        }
    }
    let theta_rows = slices.into_iter().map(|sl| theta_stats(&theta, &select_indices(s, d, &sl), sl)).collect();

    let mut scores_2d = BTreeMap::new();
    let mut quadrants = Vec::new();
    for (model, c, r) in
        [(&s.pre_model, &s.pre_chosen, &s.pre_rejected), (&s.post_model, &s.post_chosen, &s.post_rejected)]
    {
        let (x_edges, y_edges, counts) = stats::histogram2d(c, r, 30);
        scores_2d.insert(model.clone(), Histogram2d { x_edges, y_edges, counts });
        let share =
            |f: &dyn Fn(f64, f64) -> bool| c.iter().zip(r).filter(|(a, b)| f(**a, **b)).count() as f64 / n as f64;
        quadrants.push(Quadrants {
            model: model.clone(),
            pos_pos: share(&|a, b| a > 0.0 && b > 0.0),
            neg_pos: share(&|a, b| a <= 0.0 && b > 0.0),
            pos_neg: share(&|a, b| a > 0.0 && b <= 0.0),
            neg_neg: share(&|a, b| a <= 0.0 && b <= 0.0),
        });
    }
    let (phi_pre_mean, phi_pre_resultant) = circular_mean(&phi_pre);
    let (phi_post_mean, phi_post_resultant) = circular_mean(&phi_post);
    Angles {
        undefined,
        phi_pre_mean,
        phi_post_mean,
        phi_pre_resultant,
        phi_post_resultant,
        theta: theta_rows,
        theta_polar: polar(&theta),
        phi_pre_polar: polar(&phi_pre),
        phi_post_polar: polar(&phi_post),
        scores_2d,
        quadrants,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_is_positive_exactly_when_chosen_wins() {
        assert!(direction(1.0, 0.5) > 0.0 && direction(1.0, 0.5) < 180.0);
        assert!(direction(0.5, 1.0) < 0.0);
        assert!((direction(-1.0, -1.0)).abs() < 1e-12);
        assert_eq!(direction(1.0, 1.0), 180.0);
    }

    #[test]
    fn angles_wrap_to_the_half_open_circle() {
        use std::f64::consts::PI;
        assert_eq!(wrap_radians(180f64.to_radians()), -PI);
        assert_eq!(wrap_radians(-PI), -PI);
        assert_eq!(wrap_radians(1.0), 1.0);
        // θ = 180° is binned at −π: with −90° and 0° the polar histogram starts at −π.
        let h = polar(&[180.0, -90.0, 0.0]);
        assert_eq!(h.edges[0], -PI);
        assert_eq!(h.counts[0], 1);
    }

    #[test]
    fn the_circular_mean_straddles_the_seam() {
        // The linear mean of 170° and −170° is 0°; the circular mean is 180° (written −180°).
        let (m, r) = circular_mean(&[170.0, -170.0]);
        assert!((m.unwrap().abs() - 180.0).abs() < 1e-9, "{m:?}");
        assert!((r.unwrap() - 10f64.to_radians().cos()).abs() < 1e-12);
        // Opposite directions cancel: R̄ is (numerically) 0 and the mean says nothing.
        assert!(circular_mean(&[90.0, -90.0]).1.unwrap() < 1e-12);
        assert_eq!(circular_mean(&[f64::NAN]), (None, None));
    }

    #[test]
    fn zero_vectors_have_no_angle_and_extremes_stay_finite() {
        assert!(signed_angle(0.0, 0.0, 1.0, 1.0).is_nan());
        assert!((signed_angle(1e200, -1e200, 1e200, -1e200)).abs() < 1e-5);
        assert_eq!(signed_angle(3.0, -3.0, -3.0, 3.0), 180.0);
        assert!((signed_angle(1.0, 0.0, 0.0, 1.0) - 90.0).abs() < 1e-12);
        assert!((signed_angle(0.0, 1.0, 1.0, 0.0) + 90.0).abs() < 1e-12);
    }
}
