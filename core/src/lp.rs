//! A small dense linear-programming solver: two-phase primal simplex on a full tableau.
//!
//! Round-based policies (`gavel`) solve one LP per round over job types x device models, a
//! few hundred variables at most, so a dense tableau is both the simplest and the fastest
//! choice: no sparse factorisation pays off at that size, and the core stays free of
//! dependencies. Problems are stated as
//!
//! ```text
//! maximize c·x  subject to  a_i·x (<= | >= | =) b_i,  x >= 0
//! ```
//!
//! Phase 1 finds a feasible basis by minimising the sum of artificial variables (only rows
//! that need one get one: a `<=` row with `b >= 0` starts on its slack), phase 2 optimises.
//! Pivots use Dantzig's rule (largest reduced cost) and switch to Bland's rule (lowest index)
//! after a run of degenerate pivots, which guarantees termination on degenerate problems
//! without paying Bland's slowness on ordinary ones.
//!
//! Cost: O(rows x columns) per pivot; columns = variables + one slack or surplus per
//! inequality + one artificial per `>=`/`=` row.

/// How a constraint's left side relates to its right side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    Le,
    Ge,
    Eq,
}

#[derive(Clone, Debug, PartialEq)]
struct Row {
    coeffs: Vec<(usize, f64)>,
    relation: Relation,
    rhs: f64,
}

/// A linear program over non-negative variables `x_0 .. x_{n-1}`, maximising.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearProgram {
    vars: usize,
    objective: Vec<f64>,
    rows: Vec<Row>,
}

/// An optimal solution.
#[derive(Clone, Debug, PartialEq)]
pub struct Solution {
    /// The objective's value at `x`.
    pub objective: f64,
    /// One value per variable.
    pub x: Vec<f64>,
    /// Pivots over both phases (for measurements).
    pub pivots: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LpError {
    /// No point satisfies every constraint.
    Infeasible,
    /// The objective grows without bound over the feasible set.
    Unbounded,
    /// The pivot limit was reached (numerical trouble; it should not happen).
    IterationLimit,
    /// A coefficient or right side is NaN or infinite, or names a variable out of range.
    InvalidInput,
}

impl std::fmt::Display for LpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LpError::Infeasible => "the linear program is infeasible",
            LpError::Unbounded => "the linear program is unbounded",
            LpError::IterationLimit => "the simplex reached its pivot limit",
            LpError::InvalidInput => "the linear program has a non-finite coefficient or an unknown variable",
        })
    }
}

impl std::error::Error for LpError {}

/// Values smaller than this are zero. The LPs solved here have coefficients between about
/// 1e-3 and 1e4, so an absolute tolerance is adequate.
const EPS: f64 = 1e-9;
/// Degenerate pivots in a row before switching to Bland's rule.
const DEGENERATE_RUN: u32 = 50;

impl LinearProgram {
    /// A program over `vars` variables with a zero objective and no constraints.
    pub fn new(vars: usize) -> LinearProgram {
        LinearProgram { vars, objective: vec![0.0; vars], rows: Vec::new() }
    }

    pub fn vars(&self) -> usize {
        self.vars
    }

    pub fn constraints(&self) -> usize {
        self.rows.len()
    }

    /// Sets the objective coefficient of `var` (maximised).
    pub fn set_objective(&mut self, var: usize, coeff: f64) {
        if let Some(c) = self.objective.get_mut(var) {
            *c = coeff;
        } else {
            // Remembered as invalid input: solve() reports it.
            self.objective.push(f64::NAN);
        }
    }

    /// Adds `sum coeffs (relation) rhs`; a variable named twice has its coefficients summed.
    pub fn add_constraint(&mut self, coeffs: &[(usize, f64)], relation: Relation, rhs: f64) {
        self.rows.push(Row { coeffs: coeffs.to_vec(), relation, rhs });
    }

    /// Solves the program to optimality.
    pub fn solve(&self) -> Result<Solution, LpError> {
        if self.objective.len() != self.vars || self.objective.iter().any(|c| !c.is_finite()) {
            return Err(LpError::InvalidInput);
        }
        for row in &self.rows {
            if !row.rhs.is_finite() || row.coeffs.iter().any(|&(v, c)| v >= self.vars || !c.is_finite()) {
                return Err(LpError::InvalidInput);
            }
        }
        Tableau::build(self).solve(self)
    }
}

/// The simplex tableau: `m` rows of `cols + 1` entries (the last is the right side), a basis
/// (one column per row), and a reduced-cost row.
struct Tableau {
    m: usize,
    cols: usize,
    /// Row-major, `m * (cols + 1)`.
    t: Vec<f64>,
    basis: Vec<usize>,
    /// First artificial column; columns at or past it are artificial.
    first_artificial: usize,
    /// Columns that may not enter the basis (artificials in phase 2).
    barred: Vec<bool>,
    pivots: u32,
}

impl Tableau {
    fn build(lp: &LinearProgram) -> Tableau {
        let m = lp.rows.len();
        let n = lp.vars;
        // Normalise every row to a non-negative right side.
        let rows: Vec<(Vec<(usize, f64)>, Relation, f64)> = lp
            .rows
            .iter()
            .map(|r| {
                if r.rhs < 0.0 {
                    let flipped = match r.relation {
                        Relation::Le => Relation::Ge,
                        Relation::Ge => Relation::Le,
                        Relation::Eq => Relation::Eq,
                    };
                    (r.coeffs.iter().map(|&(v, c)| (v, -c)).collect(), flipped, -r.rhs)
                } else {
                    (r.coeffs.clone(), r.relation, r.rhs)
                }
            })
            .collect();
        let slacks = rows.iter().filter(|r| r.1 != Relation::Eq).count();
        let artificials = rows.iter().filter(|r| r.1 != Relation::Le).count();
        let first_artificial = n + slacks;
        let cols = first_artificial + artificials;
        let width = cols + 1;
        let mut t = vec![0.0; m * width];
        let mut basis = vec![0; m];
        let (mut next_slack, mut next_artificial) = (n, first_artificial);
        for (i, (coeffs, relation, rhs)) in rows.iter().enumerate() {
            let row = &mut t[i * width..(i + 1) * width];
            for &(v, c) in coeffs {
                row[v] += c;
            }
            row[cols] = *rhs;
            match relation {
                Relation::Le => {
                    row[next_slack] = 1.0;
                    basis[i] = next_slack;
                    next_slack += 1;
                }
                Relation::Ge => {
                    row[next_slack] = -1.0;
                    next_slack += 1;
                    row[next_artificial] = 1.0;
                    basis[i] = next_artificial;
                    next_artificial += 1;
                }
                Relation::Eq => {
                    row[next_artificial] = 1.0;
                    basis[i] = next_artificial;
                    next_artificial += 1;
                }
            }
        }
        Tableau { m, cols, t, basis, first_artificial, barred: vec![false; cols], pivots: 0 }
    }

    fn width(&self) -> usize {
        self.cols + 1
    }

    fn at(&self, i: usize, j: usize) -> f64 {
        self.t[i * self.width() + j]
    }

    /// Reduced costs of a maximisation with cost `c` per column under the current basis;
    /// the last entry is minus the objective's value.
    fn reduced_costs(&self, c: &[f64]) -> Vec<f64> {
        let w = self.width();
        let mut r: Vec<f64> = (0..w).map(|j| if j < self.cols { c[j] } else { 0.0 }).collect();
        for i in 0..self.m {
            let cb = c[self.basis[i]];
            if cb != 0.0 {
                let row = &self.t[i * w..(i + 1) * w];
                for (rj, &a) in r.iter_mut().zip(row) {
                    *rj -= cb * a;
                }
            }
        }
        r
    }

    fn pivot(&mut self, p: usize, q: usize, r: &mut [f64]) {
        let w = self.width();
        let inv = 1.0 / self.t[p * w + q];
        for a in &mut self.t[p * w..(p + 1) * w] {
            *a *= inv;
        }
        self.t[p * w + q] = 1.0;
        let (before, rest) = self.t.split_at_mut(p * w);
        let (prow, after) = rest.split_at_mut(w);
        for row in before.chunks_exact_mut(w).chain(after.chunks_exact_mut(w)) {
            let f = row[q];
            if f != 0.0 {
                for (a, &b) in row.iter_mut().zip(prow.iter()) {
                    *a -= f * b;
                }
                row[q] = 0.0;
            }
        }
        let f = r[q];
        if f != 0.0 {
            for (a, &b) in r.iter_mut().zip(prow.iter()) {
                *a -= f * b;
            }
            r[q] = 0.0;
        }
        self.basis[p] = q;
        self.pivots += 1;
    }

    /// Runs the simplex on reduced costs `r` to optimality.
    fn optimise(&mut self, r: &mut [f64]) -> Result<(), LpError> {
        let limit = 100 * (self.m + self.cols) as u32 + 1000;
        let mut degenerate = 0u32;
        let rhs = self.cols;
        for _ in 0..limit {
            let bland = degenerate >= DEGENERATE_RUN;
            let mut entering: Option<usize> = None;
            for j in 0..self.cols {
                if self.barred[j] || r[j] <= EPS {
                    continue;
                }
                if bland {
                    entering = Some(j);
                    break;
                }
                if entering.is_none_or(|e| r[j] > r[e]) {
                    entering = Some(j);
                }
            }
            let Some(q) = entering else { return Ok(()) };
            let mut leaving: Option<(usize, f64)> = None;
            for i in 0..self.m {
                let a = self.at(i, q);
                if a > EPS {
                    let ratio = self.at(i, rhs) / a;
                    let better = match leaving {
                        None => true,
                        Some((l, best)) => ratio < best - EPS || (ratio <= best + EPS && self.basis[i] < self.basis[l]),
                    };
                    if better {
                        leaving = Some((i, ratio));
                    }
                }
            }
            let Some((p, ratio)) = leaving else { return Err(LpError::Unbounded) };
            degenerate = if ratio <= EPS { degenerate + 1 } else { 0 };
            self.pivot(p, q, r);
        }
        Err(LpError::IterationLimit)
    }

    fn solve(mut self, lp: &LinearProgram) -> Result<Solution, LpError> {
        let n = lp.vars;
        if self.first_artificial < self.cols {
            // Phase 1: maximise minus the sum of the artificials.
            let c1: Vec<f64> = (0..self.cols).map(|j| if j >= self.first_artificial { -1.0 } else { 0.0 }).collect();
            let mut r = self.reduced_costs(&c1);
            self.optimise(&mut r)?;
            if -r[self.cols] < -1e-7 * (1.0 + self.max_rhs()) {
                return Err(LpError::Infeasible);
            }
            // Drive artificials still basic (at zero) out, or drop their rows as redundant.
            let mut i = 0;
            while i < self.m {
                if self.basis[i] >= self.first_artificial {
                    let q = (0..self.first_artificial).find(|&j| self.at(i, j).abs() > EPS);
                    match q {
                        Some(q) => self.pivot(i, q, &mut r),
                        None => {
                            self.remove_row(i);
                            continue;
                        }
                    }
                }
                i += 1;
            }
            for j in self.first_artificial..self.cols {
                self.barred[j] = true;
            }
        }
        let c2: Vec<f64> = (0..self.cols).map(|j| if j < n { lp.objective[j] } else { 0.0 }).collect();
        let mut r = self.reduced_costs(&c2);
        self.optimise(&mut r)?;
        let mut x = vec![0.0; n];
        for i in 0..self.m {
            let b = self.basis[i];
            if b < n {
                x[b] = self.at(i, self.cols).max(0.0);
            }
        }
        let objective = x.iter().zip(&lp.objective).map(|(a, b)| a * b).sum();
        Ok(Solution { objective, x, pivots: self.pivots })
    }

    fn max_rhs(&self) -> f64 {
        (0..self.m).map(|i| self.at(i, self.cols).abs()).fold(0.0, f64::max)
    }

    fn remove_row(&mut self, i: usize) {
        let w = self.width();
        self.t.drain(i * w..(i + 1) * w);
        self.basis.remove(i);
        self.m -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-7
    }

    #[test]
    fn a_textbook_maximisation() {
        // max 3x + 5y; x <= 4; 2y <= 12; 3x + 2y <= 18  -> x = 2, y = 6, 36 (Hillier & Lieberman).
        let mut lp = LinearProgram::new(2);
        lp.set_objective(0, 3.0);
        lp.set_objective(1, 5.0);
        lp.add_constraint(&[(0, 1.0)], Relation::Le, 4.0);
        lp.add_constraint(&[(1, 2.0)], Relation::Le, 12.0);
        lp.add_constraint(&[(0, 3.0), (1, 2.0)], Relation::Le, 18.0);
        let s = lp.solve().unwrap();
        assert!(close(s.objective, 36.0), "{s:?}");
        assert!(close(s.x[0], 2.0) && close(s.x[1], 6.0), "{s:?}");
    }

    #[test]
    fn greater_equal_and_equality_rows_need_phase_one() {
        // min x + y (max -x - y); x + 2y >= 4; 3x + y >= 6; x - y = 0. With x = y the rows
        // read 3x >= 4 and 4x >= 6, so x = y = 1.5 and the objective is -3.
        let mut lp = LinearProgram::new(2);
        lp.set_objective(0, -1.0);
        lp.set_objective(1, -1.0);
        lp.add_constraint(&[(0, 1.0), (1, 2.0)], Relation::Ge, 4.0);
        lp.add_constraint(&[(0, 3.0), (1, 1.0)], Relation::Ge, 6.0);
        lp.add_constraint(&[(0, 1.0), (1, -1.0)], Relation::Eq, 0.0);
        let s = lp.solve().unwrap();
        assert!(close(s.x[0], 1.5) && close(s.x[1], 1.5), "{s:?}");
        assert!(close(s.objective, -3.0));
    }

    #[test]
    fn a_negative_right_side_is_flipped() {
        // -x <= -2 is x >= 2; max -x -> x = 2.
        let mut lp = LinearProgram::new(1);
        lp.set_objective(0, -1.0);
        lp.add_constraint(&[(0, -1.0)], Relation::Le, -2.0);
        let s = lp.solve().unwrap();
        assert!(close(s.x[0], 2.0), "{s:?}");
    }

    #[test]
    fn infeasible_and_unbounded_programs_are_reported() {
        let mut lp = LinearProgram::new(2);
        lp.add_constraint(&[(0, 1.0), (1, 1.0)], Relation::Le, 1.0);
        lp.add_constraint(&[(0, 1.0), (1, 1.0)], Relation::Ge, 2.0);
        assert_eq!(lp.solve(), Err(LpError::Infeasible));

        let mut lp = LinearProgram::new(2);
        lp.set_objective(0, 1.0);
        lp.add_constraint(&[(0, 1.0), (1, -1.0)], Relation::Le, 1.0);
        assert_eq!(lp.solve(), Err(LpError::Unbounded));

        let mut lp = LinearProgram::new(1);
        lp.add_constraint(&[(0, f64::NAN)], Relation::Le, 1.0);
        assert_eq!(lp.solve(), Err(LpError::InvalidInput));
        let mut lp = LinearProgram::new(1);
        lp.add_constraint(&[(3, 1.0)], Relation::Le, 1.0);
        assert_eq!(lp.solve(), Err(LpError::InvalidInput));
    }

    #[test]
    fn degenerate_programs_terminate_at_the_optimum() {
        // Beale's example cycles under Dantzig's rule with a naive tie-break; the switch to
        // Bland's rule must end it. max 3/4 x4 - 20 x5 + 1/2 x6 - 6 x7 (as x0..x3).
        let mut lp = LinearProgram::new(4);
        for (v, c) in [(0, 0.75), (1, -20.0), (2, 0.5), (3, -6.0)] {
            lp.set_objective(v, c);
        }
        lp.add_constraint(&[(0, 0.25), (1, -8.0), (2, -1.0), (3, 9.0)], Relation::Le, 0.0);
        lp.add_constraint(&[(0, 0.5), (1, -12.0), (2, -0.5), (3, 3.0)], Relation::Le, 0.0);
        lp.add_constraint(&[(2, 1.0)], Relation::Le, 1.0);
        let s = lp.solve().unwrap();
        assert!(close(s.objective, 1.25), "{s:?}");

        // Many redundant copies of one equality: phase 1 leaves artificials basic at zero
        // in rows that must be dropped.
        let mut lp = LinearProgram::new(2);
        lp.set_objective(0, 1.0);
        for _ in 0..5 {
            lp.add_constraint(&[(0, 1.0), (1, 1.0)], Relation::Eq, 3.0);
        }
        lp.add_constraint(&[(0, 1.0)], Relation::Le, 2.0);
        let s = lp.solve().unwrap();
        assert!(close(s.x[0], 2.0) && close(s.x[1], 1.0), "{s:?}");
    }

    #[test]
    fn an_empty_program_is_solved_at_zero() {
        let lp = LinearProgram::new(3);
        let s = lp.solve().unwrap();
        assert_eq!(s.x, vec![0.0; 3]);
        assert_eq!(s.objective, 0.0);
    }

    #[test]
    fn max_min_over_two_types_and_two_models_gives_the_fast_model_to_who_gains() {
        // Gavel's worked shape: type A runs 1 on model 0 and 2 on model 1; type B 1 and 1;
        // one device of each model, one job of each type. max z; z <= A's throughput,
        // z <= B's; each job's time fractions sum to <= 1; each model's to <= 1.
        // By hand: A takes model 1 whole (throughput 2), B model 0 whole (throughput 1), so
        // z = 1; no allocation gives both more than 1 (B's throughput is at most its time).
        let mut lp = LinearProgram::new(5); // xa0, xa1, xb0, xb1, z
        lp.set_objective(4, 1.0);
        lp.add_constraint(&[(4, 1.0), (0, -1.0), (1, -2.0)], Relation::Le, 0.0);
        lp.add_constraint(&[(4, 1.0), (2, -1.0), (3, -1.0)], Relation::Le, 0.0);
        lp.add_constraint(&[(0, 1.0), (1, 1.0)], Relation::Le, 1.0);
        lp.add_constraint(&[(2, 1.0), (3, 1.0)], Relation::Le, 1.0);
        lp.add_constraint(&[(0, 1.0), (2, 1.0)], Relation::Le, 1.0);
        lp.add_constraint(&[(1, 1.0), (3, 1.0)], Relation::Le, 1.0);
        let s = lp.solve().unwrap();
        assert!(close(s.objective, 1.0), "{s:?}");
        let a = s.x[0] + 2.0 * s.x[1];
        let b = s.x[2] + s.x[3];
        assert!(a >= 1.0 - 1e-7 && b >= 1.0 - 1e-7, "{s:?}");
    }
}
