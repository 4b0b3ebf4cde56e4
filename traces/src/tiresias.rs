//! Tiresias (NSDI'19) simulator inputs.
