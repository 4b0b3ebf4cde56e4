//! Pollux (OSDI'21) workloads.
