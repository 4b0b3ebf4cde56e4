//! Gavel (OSDI'20) traces and its throughput table.
