//! Probability distributions as scenarios name them, and samplers built from them.
//!
//! A scenario writes a distribution as an inline table tagged by `dist`:
//! `{ dist = "exponential", mean_s = 100.0 }`. Every kind is parameterised by its mean where
//! it has one, because the mean is what a capacity planner knows (jobs arrive every 100 s on
//! average); the shape parameters are derived from it.
//!
//! Deserialization is written by hand rather than derived with `#[serde(tag = "dist")]`:
//! serde buffers an internally tagged table before it looks at the fields, which loses the
//! key path and the source position of an error inside it. Reading the fields one by one
//! keeps both, so `mean_s = -1` is reported at `...interarrival.mean_s`, line and column.

use rand::Rng;
use rand_distr::{Distribution, Exp, LogNormal, Weibull};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A distribution of real values (seconds, device counts, priorities).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "dist", rename_all = "lowercase")]
pub enum DistSpec {
    /// Always `value`.
    Constant { value: f64 },
    /// Memoryless, e.g. Poisson arrivals.
    Exponential { mean_s: f64 },
    /// Heavy-ish right tail, as job durations in public traces; `sigma` is the standard
    /// deviation of the underlying normal, and `mu = ln(mean_s) - sigma^2 / 2`.
    Lognormal { mean_s: f64, sigma: f64 },
    /// `shape < 1` gives a decreasing hazard (infant mortality), `> 1` wear-out;
    /// `scale = mean_s / Gamma(1 + 1/shape)`.
    Weibull { mean_s: f64, shape: f64 },
    /// Uniform on `[min_s, max_s]`.
    Uniform { min_s: f64, max_s: f64 },
    /// One of `values`, with probabilities proportional to `weights` (equal when absent).
    Choice { values: Vec<f64>, weights: Option<Vec<f64>> },
}

/// The `dist` names, in the order error messages list them.
pub const DIST_KINDS: &[&str] = &["constant", "exponential", "lognormal", "weibull", "uniform", "choice"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Constant,
    Exponential,
    Lognormal,
    Weibull,
    Uniform,
    Choice,
}

impl Kind {
    fn name(self) -> &'static str {
        DIST_KINDS[self as usize]
    }

    /// The keys this kind accepts, `dist` included (`mean` is an alias of `mean_s`).
    fn fields(self) -> &'static [&'static str] {
        match self {
            Kind::Constant => &["dist", "value"],
            Kind::Exponential => &["dist", "mean_s", "mean"],
            Kind::Lognormal => &["dist", "mean_s", "mean", "sigma"],
            Kind::Weibull => &["dist", "mean_s", "mean", "shape"],
            Kind::Uniform => &["dist", "min_s", "max_s"],
            Kind::Choice => &["dist", "values", "weights"],
        }
    }
}

/// Every key some kind accepts, for a typo seen before `dist` told us the kind.
const ALL_FIELDS: &[&str] =
    &["dist", "value", "mean_s", "mean", "sigma", "shape", "min_s", "max_s", "values", "weights"];

fn finite(v: f64) -> Result<(), String> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(format!("expected a finite number, found {v}"))
    }
}

fn positive(v: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(format!("expected a positive number, found {v}"))
    }
}

fn non_negative(v: f64) -> Result<(), String> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(format!("expected a non-negative number, found {v}"))
    }
}

fn all_finite(vs: &[f64]) -> Result<(), String> {
    match vs.iter().find(|v| !v.is_finite()) {
        Some(v) => Err(format!("expected finite numbers, found {v}")),
        None => Ok(()),
    }
}

/// Deserializes a number and checks it while the deserializer still knows where it was, so
/// the error carries the field's path and position.
struct Checked(fn(f64) -> Result<(), String>);

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = f64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<f64, D::Error> {
        let v = f64::deserialize(d)?;
        (self.0)(v).map_err(de::Error::custom)?;
        Ok(v)
    }
}

struct CheckedList(fn(&[f64]) -> Result<(), String>);

impl<'de> DeserializeSeed<'de> for CheckedList {
    type Value = Vec<f64>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<f64>, D::Error> {
        let v = Vec::<f64>::deserialize(d)?;
        (self.0)(&v).map_err(de::Error::custom)?;
        Ok(v)
    }
}

impl<'de> Deserialize<'de> for DistSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<DistSpec, D::Error> {
        d.deserialize_map(DistVisitor)
    }
}

struct DistVisitor;

#[derive(Default)]
struct RawFields {
    value: Option<f64>,
    mean_s: Option<f64>,
    sigma: Option<f64>,
    shape: Option<f64>,
    min_s: Option<f64>,
    max_s: Option<f64>,
    values: Option<Vec<f64>>,
    weights: Option<Vec<f64>>,
    /// Canonical names of the keys seen, in order, to report one that does not fit the kind.
    seen: Vec<&'static str>,
}

fn set_once<T, E: de::Error>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), E> {
    if slot.is_some() {
        // Only reachable through `mean` and `mean_s` together: TOML itself rejects a repeated key.
        return Err(E::custom(format!("`{name}` is given twice (`mean` is another name for `mean_s`)")));
    }
    *slot = Some(value);
    Ok(())
}

impl<'de> Visitor<'de> for DistVisitor {
    type Value = DistSpec;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a distribution table such as {{ dist = \"exponential\", mean_s = 100.0 }}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DistSpec, A::Error> {
        let mut kind: Option<Kind> = None;
        let mut raw = RawFields::default();
        while let Some(key) = map.next_key::<String>()? {
            let canonical: &'static str = match key.as_str() {
                "dist" => {
                    kind = Some(map.next_value::<Kind>()?);
                    "dist"
                }
                "value" => {
                    let v = map.next_value_seed(Checked(finite))?;
                    set_once(&mut raw.value, "value", v)?;
                    "value"
                }
                "mean_s" | "mean" => {
                    let v = map.next_value_seed(Checked(positive))?;
                    set_once(&mut raw.mean_s, "mean_s", v)?;
                    "mean_s"
                }
                "sigma" => {
                    let v = map.next_value_seed(Checked(non_negative))?;
                    set_once(&mut raw.sigma, "sigma", v)?;
                    "sigma"
                }
                "shape" => {
                    let v = map.next_value_seed(Checked(positive))?;
                    set_once(&mut raw.shape, "shape", v)?;
                    "shape"
                }
                "min_s" => {
                    let v = map.next_value_seed(Checked(finite))?;
                    set_once(&mut raw.min_s, "min_s", v)?;
                    "min_s"
                }
                "max_s" => {
                    let v = map.next_value_seed(Checked(finite))?;
                    set_once(&mut raw.max_s, "max_s", v)?;
                    "max_s"
                }
                "values" => {
                    let v = map.next_value_seed(CheckedList(all_finite))?;
                    set_once(&mut raw.values, "values", v)?;
                    "values"
                }
                "weights" => {
                    let v = map.next_value_seed(CheckedList(all_finite))?;
                    set_once(&mut raw.weights, "weights", v)?;
                    "weights"
                }
                other => {
                    return Err(de::Error::unknown_field(other, kind.map_or(ALL_FIELDS, Kind::fields)));
                }
            };
            raw.seen.push(canonical);
        }
        let kind = kind.ok_or_else(|| {
            de::Error::custom(format!("missing field `dist`, expected one of: {}", DIST_KINDS.join(", ")))
        })?;
        if let Some(stray) = raw.seen.iter().find(|f| !kind.fields().contains(f)) {
            return Err(de::Error::custom(format!(
                "`{stray}` does not apply to dist = \"{}\", which takes: {}",
                kind.name(),
                kind.fields()[1..].join(", ")
            )));
        }
        fn need<T, E: de::Error>(v: Option<T>, name: &'static str) -> Result<T, E> {
            v.ok_or_else(|| E::missing_field(name))
        }
        let spec = match kind {
            Kind::Constant => DistSpec::Constant { value: need(raw.value, "value")? },
            Kind::Exponential => DistSpec::Exponential { mean_s: need(raw.mean_s, "mean_s")? },
            Kind::Lognormal => {
                DistSpec::Lognormal { mean_s: need(raw.mean_s, "mean_s")?, sigma: need(raw.sigma, "sigma")? }
            }
            Kind::Weibull => {
                DistSpec::Weibull { mean_s: need(raw.mean_s, "mean_s")?, shape: need(raw.shape, "shape")? }
            }
            Kind::Uniform => DistSpec::Uniform { min_s: need(raw.min_s, "min_s")?, max_s: need(raw.max_s, "max_s")? },
            Kind::Choice => DistSpec::Choice { values: need(raw.values, "values")?, weights: raw.weights },
        };
        // Relations between fields (min <= max, as many weights as values) are only known now.
        spec.validate().map_err(de::Error::custom)?;
        Ok(spec)
    }
}

impl DistSpec {
    pub fn constant(value: f64) -> DistSpec {
        DistSpec::Constant { value }
    }

    /// The `dist` name of this kind.
    pub fn kind_name(&self) -> &'static str {
        match self {
            DistSpec::Constant { .. } => "constant",
            DistSpec::Exponential { .. } => "exponential",
            DistSpec::Lognormal { .. } => "lognormal",
            DistSpec::Weibull { .. } => "weibull",
            DistSpec::Uniform { .. } => "uniform",
            DistSpec::Choice { .. } => "choice",
        }
    }

    /// Checks the parameters; the message names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        let field =
            |name: &str, check: fn(f64) -> Result<(), String>, v: f64| check(v).map_err(|m| format!("`{name}`: {m}"));
        match self {
            DistSpec::Constant { value } => field("value", finite, *value),
            DistSpec::Exponential { mean_s } => field("mean_s", positive, *mean_s),
            DistSpec::Lognormal { mean_s, sigma } => {
                field("mean_s", positive, *mean_s)?;
                field("sigma", non_negative, *sigma)?;
                // exp(sigma^2) overflows past ~26.6; such a distribution has no usable mean.
                if sigma * sigma > 700.0 {
                    return Err(format!("`sigma`: {sigma} is too large, its variance is not finite"));
                }
                Ok(())
            }
            DistSpec::Weibull { mean_s, shape } => {
                field("mean_s", positive, *mean_s)?;
                field("shape", positive, *shape)?;
                let scale = weibull_scale(*mean_s, *shape);
                if !(scale.is_finite() && scale > 0.0) {
                    return Err(format!(
                        "`shape`: {shape} is too small for a mean of {mean_s}, the scale is not finite"
                    ));
                }
                Ok(())
            }
            DistSpec::Uniform { min_s, max_s } => {
                field("min_s", finite, *min_s)?;
                field("max_s", finite, *max_s)?;
                if min_s > max_s {
                    return Err(format!("`min_s` ({min_s}) must not exceed `max_s` ({max_s})"));
                }
                Ok(())
            }
            DistSpec::Choice { values, weights } => {
                if values.is_empty() {
                    return Err("`values`: expected at least one value, found an empty list".into());
                }
                all_finite(values).map_err(|m| format!("`values`: {m}"))?;
                if let Some(weights) = weights {
                    if weights.len() != values.len() {
                        return Err(format!(
                            "`weights`: expected one weight per value ({}), found {}",
                            values.len(),
                            weights.len()
                        ));
                    }
                    if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
                        return Err(format!("`weights`: expected non-negative finite numbers, found {w}"));
                    }
                    if weights.iter().all(|&w| w == 0.0) {
                        return Err("`weights`: at least one weight must be positive".into());
                    }
                    if !weights.iter().sum::<f64>().is_finite() {
                        return Err("`weights`: the sum of the weights is not finite".into());
                    }
                }
                Ok(())
            }
        }
    }

    /// The analytic mean.
    pub fn mean(&self) -> f64 {
        match self {
            DistSpec::Constant { value } => *value,
            DistSpec::Exponential { mean_s }
            | DistSpec::Lognormal { mean_s, .. }
            | DistSpec::Weibull { mean_s, .. } => *mean_s,
            DistSpec::Uniform { min_s, max_s } => (min_s + max_s) / 2.0,
            DistSpec::Choice { values, weights } => match weights {
                None => values.iter().sum::<f64>() / values.len() as f64,
                Some(w) => values.iter().zip(w).map(|(v, w)| v * w).sum::<f64>() / w.iter().sum::<f64>(),
            },
        }
    }

    /// The smallest value a sample can take (for a check that seconds are never negative).
    pub fn min_value(&self) -> f64 {
        match self {
            DistSpec::Constant { value } => *value,
            DistSpec::Exponential { .. } | DistSpec::Lognormal { .. } | DistSpec::Weibull { .. } => 0.0,
            DistSpec::Uniform { min_s, .. } => *min_s,
            DistSpec::Choice { values, weights } => values
                .iter()
                .enumerate()
                .filter(|(i, _)| weights.as_ref().is_none_or(|w| w[*i] > 0.0))
                .map(|(_, v)| *v)
                .fold(f64::INFINITY, f64::min),
        }
    }

    /// The largest value a sample can take (infinite for the unbounded distributions), for the
    /// checks against the bounds of `tessera_core::limits`.
    pub fn max_value(&self) -> f64 {
        match self {
            DistSpec::Constant { value } => *value,
            DistSpec::Exponential { .. } | DistSpec::Lognormal { .. } | DistSpec::Weibull { .. } => f64::INFINITY,
            DistSpec::Uniform { max_s, .. } => *max_s,
            DistSpec::Choice { values, weights } => values
                .iter()
                .enumerate()
                .filter(|(i, _)| weights.as_ref().is_none_or(|w| w[*i] > 0.0))
                .map(|(_, v)| *v)
                .fold(f64::NEG_INFINITY, f64::max),
        }
    }

    /// Whether every draw is above zero: continuous distributions on (0, inf) never draw 0
    /// although their infimum is 0.
    pub fn always_positive(&self) -> bool {
        match self {
            DistSpec::Exponential { .. } | DistSpec::Lognormal { .. } | DistSpec::Weibull { .. } => true,
            _ => self.min_value() > 0.0,
        }
    }

    /// A sampler, after checking the parameters.
    pub fn build(&self) -> Result<Sampler, String> {
        self.validate()?;
        let kind = self.kind_name();
        Ok(match self {
            DistSpec::Constant { value } => Sampler::Constant(*value),
            DistSpec::Exponential { mean_s } => {
                Sampler::Exponential(Exp::new(1.0 / mean_s).map_err(|e| format!("{kind} distribution: {e}"))?)
            }
            DistSpec::Lognormal { mean_s, sigma } => {
                let mu = mean_s.ln() - sigma * sigma / 2.0;
                Sampler::LogNormal(LogNormal::new(mu, *sigma).map_err(|e| format!("{kind} distribution: {e}"))?)
            }
            DistSpec::Weibull { mean_s, shape } => Sampler::Weibull(
                Weibull::new(weibull_scale(*mean_s, *shape), *shape)
                    .map_err(|e| format!("{kind} distribution: {e}"))?,
            ),
            DistSpec::Uniform { min_s, max_s } => Sampler::Uniform { min: *min_s, width: max_s - min_s },
            DistSpec::Choice { values, weights } => {
                let mut total = 0.0;
                let cumulative = match weights {
                    Some(w) => w
                        .iter()
                        .map(|w| {
                            total += w;
                            total
                        })
                        .collect(),
                    None => (1..=values.len()).map(|i| i as f64).collect(),
                };
                Sampler::Choice { values: values.clone(), cumulative }
            }
        })
    }
}

/// Weibull scale for a mean: mean = scale * Gamma(1 + 1/shape).
fn weibull_scale(mean: f64, shape: f64) -> f64 {
    mean / statrs::function::gamma::gamma(1.0 + 1.0 / shape)
}

/// A ready-to-draw distribution. Cheap to sample: no allocation, no branching on strings.
#[derive(Clone, Debug)]
pub enum Sampler {
    Constant(f64),
    Exponential(Exp<f64>),
    LogNormal(LogNormal<f64>),
    Weibull(Weibull<f64>),
    Uniform {
        min: f64,
        width: f64,
    },
    /// `cumulative[i]` is the sum of the weights of `values[..=i]`.
    Choice {
        values: Vec<f64>,
        cumulative: Vec<f64>,
    },
}

impl Sampler {
    /// Draws one value. A constant draws nothing from `rng`.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match self {
            Sampler::Constant(v) => *v,
            Sampler::Exponential(d) => d.sample(rng),
            Sampler::LogNormal(d) => d.sample(rng),
            Sampler::Weibull(d) => d.sample(rng),
            Sampler::Uniform { min, width } => min + width * rng.random::<f64>(),
            Sampler::Choice { values, cumulative } => {
                let total = cumulative.last().copied().unwrap_or(0.0);
                let u = rng.random::<f64>() * total;
                // First entry whose cumulative weight exceeds u; zero-weight entries are never
                // picked because their cumulative equals their predecessor's.
                let i = cumulative.partition_point(|&c| c <= u);
                values[i.min(values.len() - 1)]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use statrs::function::gamma::gamma;

    fn parse(text: &str) -> Result<DistSpec, String> {
        #[derive(Deserialize)]
        struct Wrapper {
            d: DistSpec,
        }
        let de = toml::Deserializer::new(text);
        serde_path_to_error::deserialize::<_, Wrapper>(de)
            .map(|w| w.d)
            .map_err(|e| format!("{}: {}", e.path(), e.inner().message()))
    }

    /// Sample mean over `n` draws against the analytic mean, within 5 standard errors:
    /// for a fixed seed the test is deterministic, and 5 SE leaves a false-failure chance of
    /// under 1e-6 should someone change the seed or the generator.
    fn check_mean(spec: DistSpec, variance: f64) {
        let n = 200_000;
        let sampler = spec.build().expect("valid spec");
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let sum: f64 = (0..n).map(|_| sampler.sample(&mut rng)).sum();
        let sample_mean = sum / n as f64;
        let standard_error = (variance / n as f64).sqrt();
        let tolerance = 5.0 * standard_error + 1e-12 * spec.mean().abs();
        assert!(
            (sample_mean - spec.mean()).abs() <= tolerance,
            "{spec:?}: sample mean {sample_mean} vs {} (tolerance {tolerance})",
            spec.mean()
        );
    }

    #[test]
    fn sample_means_match_stated_means() {
        check_mean(DistSpec::Constant { value: 3.5 }, 0.0);
        check_mean(DistSpec::Exponential { mean_s: 100.0 }, 100.0f64.powi(2));
        let (m, s) = (700.0, 1.0f64);
        check_mean(DistSpec::Lognormal { mean_s: m, sigma: s }, ((s * s).exp() - 1.0) * m * m);
        check_mean(DistSpec::Lognormal { mean_s: m, sigma: 0.0 }, 0.0);
        for shape in [0.7, 1.0, 2.5] {
            let mean = 50.0;
            let scale = mean / gamma(1.0 + 1.0 / shape);
            let variance = scale * scale * (gamma(1.0 + 2.0 / shape) - gamma(1.0 + 1.0 / shape).powi(2));
            check_mean(DistSpec::Weibull { mean_s: mean, shape }, variance);
        }
        check_mean(DistSpec::Uniform { min_s: 10.0, max_s: 30.0 }, 20.0f64.powi(2) / 12.0);
        check_mean(DistSpec::Uniform { min_s: 5.0, max_s: 5.0 }, 0.0);
        let values = vec![1.0, 2.0, 4.0, 8.0];
        let mean = values.iter().sum::<f64>() / 4.0;
        let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 4.0;
        check_mean(DistSpec::Choice { values: values.clone(), weights: None }, variance);
        let weights = vec![0.5, 0.0, 0.3, 0.2];
        let spec = DistSpec::Choice { values: values.clone(), weights: Some(weights.clone()) };
        let mean = spec.mean();
        let variance = values.iter().zip(&weights).map(|(v, w)| w * (v - mean).powi(2)).sum::<f64>();
        check_mean(spec, variance);
    }

    #[test]
    fn zero_weight_values_are_never_drawn() {
        let spec = DistSpec::Choice { values: vec![1.0, 2.0, 3.0], weights: Some(vec![0.0, 1.0, 0.0]) };
        let sampler = spec.build().unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!((0..10_000).all(|_| sampler.sample(&mut rng) == 2.0));
        assert_eq!(spec.min_value(), 2.0);
    }

    #[test]
    fn parses_every_kind_and_the_mean_alias() {
        assert_eq!(parse("d = { dist = \"constant\", value = 1 }"), Ok(DistSpec::Constant { value: 1.0 }));
        assert_eq!(parse("d = { dist = \"exponential\", mean = 4 }"), Ok(DistSpec::Exponential { mean_s: 4.0 }));
        assert_eq!(
            parse("d = { dist = \"lognormal\", mean_s = 4.0, sigma = 0.5 }"),
            Ok(DistSpec::Lognormal { mean_s: 4.0, sigma: 0.5 })
        );
        assert_eq!(
            parse("d = { dist = \"weibull\", mean_s = 4.0, shape = 0.5 }"),
            Ok(DistSpec::Weibull { mean_s: 4.0, shape: 0.5 })
        );
        assert_eq!(
            parse("d = { dist = \"uniform\", min_s = 1, max_s = 2 }"),
            Ok(DistSpec::Uniform { min_s: 1.0, max_s: 2.0 })
        );
        assert_eq!(
            parse("d = { dist = \"choice\", values = [1, 2], weights = [3, 1] }"),
            Ok(DistSpec::Choice { values: vec![1.0, 2.0], weights: Some(vec![3.0, 1.0]) })
        );
        assert_eq!(
            parse("[d]\nvalues = [1, 2]\ndist = \"choice\""),
            Ok(DistSpec::Choice { values: vec![1.0, 2.0], weights: None })
        );
    }

    #[test]
    fn errors_name_the_field_and_what_it_takes() {
        let e = parse("d = { dist = \"exponential\", meen_s = 4 }").unwrap_err();
        assert!(e.contains("meen_s") && e.contains("mean_s"), "{e}");
        let e = parse("d = { dist = \"exponential\", mean_s = -4 }").unwrap_err();
        assert!(e.starts_with("d.mean_s") && e.contains("positive"), "{e}");
        let e = parse("d = { dist = \"exponential\", mean_s = \"fast\" }").unwrap_err();
        assert!(e.starts_with("d.mean_s") && e.contains("invalid type"), "{e}");
        let e = parse("d = { dist = \"gaussian\", mean_s = 4 }").unwrap_err();
        assert!(e.starts_with("d.dist") && e.contains("lognormal"), "{e}");
        let e = parse("d = { mean_s = 4 }").unwrap_err();
        assert!(e.contains("missing field `dist`") && e.contains("exponential"), "{e}");
        let e = parse("d = { dist = \"exponential\", mean_s = 4, shape = 2 }").unwrap_err();
        assert!(e.contains("`shape` does not apply"), "{e}");
        let e = parse("d = { dist = \"lognormal\", mean_s = 4 }").unwrap_err();
        assert!(e.contains("missing field `sigma`"), "{e}");
        let e = parse("d = { dist = \"uniform\", min_s = 4, max_s = 3 }").unwrap_err();
        assert!(e.contains("min_s") && e.contains("max_s"), "{e}");
        let e = parse("d = { dist = \"choice\", values = [] }").unwrap_err();
        assert!(e.contains("at least one value"), "{e}");
        let e = parse("d = { dist = \"choice\", values = [1, 2], weights = [1] }").unwrap_err();
        assert!(e.contains("one weight per value"), "{e}");
        let e = parse("d = { dist = \"choice\", values = [1, 2], weights = [0, 0] }").unwrap_err();
        assert!(e.contains("positive"), "{e}");
        let e = parse("d = { dist = \"choice\", values = [1, 2], weights = [1, -1] }").unwrap_err();
        assert!(e.contains("non-negative"), "{e}");
        let e = parse("d = { dist = \"exponential\", mean = 4, mean_s = 4 }").unwrap_err();
        assert!(e.contains("twice"), "{e}");
        let e = parse("d = { dist = \"weibull\", mean_s = 4, shape = 1e-3 }").unwrap_err();
        assert!(e.contains("too small"), "{e}");
        let e = parse("d = 3").unwrap_err();
        assert!(e.contains("distribution table"), "{e}");
    }

    #[test]
    fn validate_rejects_non_finite_parameters() {
        assert!(DistSpec::Exponential { mean_s: f64::NAN }.validate().is_err());
        assert!(DistSpec::Constant { value: f64::INFINITY }.validate().is_err());
        assert!(DistSpec::Lognormal { mean_s: 1.0, sigma: -0.1 }.validate().is_err());
        assert!(DistSpec::Lognormal { mean_s: 1.0, sigma: 100.0 }.validate().is_err());
        assert!(DistSpec::Choice { values: vec![f64::NAN], weights: None }.validate().is_err());
        assert!(DistSpec::Exponential { mean_s: 0.0 }.build().is_err());
    }
}
