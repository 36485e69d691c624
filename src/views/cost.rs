//! A link's cost under each view's metric (ARCHITECTURE.md "Routing views").
//! The view's table adds it to the received MED on import, as the default
//! view adds the measured or static cost; `None` is unknown (the RIB adds
//! `UNKNOWN_LINK_COST`, 2^31, as today).

use crate::config::Metric;
use std::time::Duration;

/// What is known of one link: the default view's cost (measured with
/// `cost = "auto"`, else the static `cost`), and the measurement behind a
/// measured one, as the estimator applied it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkMeasure {
    /// The default view's link cost (`None`: unknown).
    pub cost: Option<u32>,
    /// Smoothed RTT at the last applied change (`None`: not measured).
    pub rtt: Option<Duration>,
    /// Sustained lost fraction of probes, 0.0..=1.0.
    pub loss: f64,
}

/// Cost of a link under `metric`; `view_cost`: the neighbor's `view_cost`
/// for this view.
///
/// - `latency`: the default view's cost.
/// - `static`: `view_cost` (unknown without one).
/// - `hops`: 1.
/// - expression: rtt x RTT in µs + loss x loss in percent + weight x
///   `view_cost` (0 without one), rounded, saturating at 2^32 - 1; unknown
///   while the RTT is (when `rtt` > 0).
pub fn link_cost(metric: Metric, link: &LinkMeasure, view_cost: Option<u32>) -> Option<u32> {
    match metric {
        Metric::Latency => link.cost,
        Metric::Static => view_cost,
        Metric::Hops => Some(1),
        Metric::Expression { rtt, loss, weight } => {
            let rtt_term = if rtt > 0.0 {
                rtt * link.rtt?.as_secs_f64() * 1e6
            } else {
                0.0
            };
            let loss_term = loss * 100.0 * link.loss.clamp(0.0, 1.0);
            let weight_term = weight * f64::from(view_cost.unwrap_or(0));
            let raw = rtt_term + loss_term + weight_term;
            if raw.is_nan() {
                return None;
            }
            // `as` saturates: above 2^32 - 1 is 2^32 - 1.
            Some(raw.round() as u32)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(cost: u32, rtt_us: u64, loss: f64) -> LinkMeasure {
        LinkMeasure {
            cost: Some(cost),
            rtt: Some(Duration::from_micros(rtt_us)),
            loss,
        }
    }

    #[test]
    fn each_metric_prices_the_link() {
        let m = measured(1234, 5000, 0.02);
        assert_eq!(link_cost(Metric::Latency, &m, Some(40)), Some(1234));
        assert_eq!(link_cost(Metric::Static, &m, Some(40)), Some(40));
        assert_eq!(link_cost(Metric::Static, &m, None), None);
        assert_eq!(link_cost(Metric::Hops, &m, None), Some(1));
        assert_eq!(
            link_cost(Metric::Hops, &LinkMeasure::default(), None),
            Some(1)
        );
        let e = Metric::Expression {
            rtt: 1.0,
            loss: 50.0,
            weight: 2.0,
        };
        // 5000 µs + 50 x 2 % + 2 x 40.
        assert_eq!(link_cost(e, &m, Some(40)), Some(5000 + 100 + 80));
        assert_eq!(link_cost(e, &m, None), Some(5100));
        // No RTT yet: unknown; an expression without the RTT term does not need it.
        assert_eq!(link_cost(e, &LinkMeasure::default(), Some(40)), None);
        let w = Metric::Expression {
            rtt: 0.0,
            loss: 0.0,
            weight: 3.0,
        };
        assert_eq!(link_cost(w, &LinkMeasure::default(), Some(7)), Some(21));
    }

    #[test]
    fn expression_saturates() {
        let e = Metric::Expression {
            rtt: 1e9,
            loss: 0.0,
            weight: 0.0,
        };
        assert_eq!(
            link_cost(e, &measured(1, 10_000, 0.0), None),
            Some(u32::MAX)
        );
        let big = Metric::Expression {
            rtt: 0.0,
            loss: 0.0,
            weight: 1e30,
        };
        assert_eq!(
            link_cost(big, &LinkMeasure::default(), Some(u32::MAX)),
            Some(u32::MAX)
        );
    }
}
