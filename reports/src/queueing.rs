//! Closed-form queueing results, the ground truth the simulator is validated against: a FIFO
//! scheduler on `c` identical devices with Poisson arrivals and exponential run times is an
//! M/M/c queue.

/// Erlang C: the probability that an arrival to an M/M/c queue has to wait, for `servers`
/// servers and an offered load `a = λ/μ` (in Erlangs).
///
/// Computed through the Erlang B recursion `B(0) = 1`, `B(k) = a·B(k−1) / (k + a·B(k−1))`,
/// then `C = B / (1 − ρ(1 − B))` with `ρ = a/c`: every term stays in `[0, 1]`, so there are
/// no factorials or powers to overflow, even for thousands of servers.
///
/// Returns 1 when the queue is unstable (`a >= c`: everyone waits), NaN for no servers or a
/// load that is negative or not finite.
pub fn erlang_c(servers: u32, offered_load: f64) -> f64 {
    if servers == 0 || !offered_load.is_finite() || offered_load < 0.0 {
        return f64::NAN;
    }
    let c = servers as f64;
    if offered_load >= c {
        return 1.0;
    }
    let mut b = 1.0;
    for k in 1..=servers {
        b = offered_load * b / (k as f64 + offered_load * b);
        if b == 0.0 {
            // Underflowed: far more servers than load, so nobody waits.
            break;
        }
    }
    let rho = offered_load / c;
    b / (1.0 - rho * (1.0 - b))
}

/// The mean time a job waits in the queue of an M/M/c system (Erlang C):
/// `Wq = C(c, λ/μ) / (c·μ − λ)`, in the time unit of the rates (rates per second give seconds).
///
/// `servers` = c, `arrival_rate` = λ, `service_rate` = μ of one server (1 / mean run time).
/// Returns +∞ when the queue is unstable (`λ >= c·μ`), 0 when nothing arrives, and NaN for no
/// servers, a negative or non-finite rate, or a service rate of zero.
pub fn erlang_c_wait(servers: u32, arrival_rate: f64, service_rate: f64) -> f64 {
    if servers == 0
        || !arrival_rate.is_finite()
        || !service_rate.is_finite()
        || arrival_rate < 0.0
        || service_rate <= 0.0
    {
        return f64::NAN;
    }
    if arrival_rate == 0.0 {
        return 0.0;
    }
    let capacity = servers as f64 * service_rate;
    if arrival_rate >= capacity {
        return f64::INFINITY;
    }
    erlang_c(servers, arrival_rate / service_rate) / (capacity - arrival_rate)
}
