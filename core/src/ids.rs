//! Identifiers as newtypes, so a job id can never be passed where a node id is meant.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($inner:ty), $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl $name {
            pub const fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

id_type!(
    /// A job, as its submitter or trace numbered it; unique within a run.
    JobId(u64), "job-"
);
id_type!(
    /// A node: its index in the cluster, in the order nodes were added.
    NodeId(u32), "node-"
);
id_type!(
    /// A device: its index over the whole cluster; a node's devices are contiguous.
    DeviceId(u32), "dev-"
);
id_type!(
    /// A tenant (user, team or virtual cluster); names live with the workload.
    TenantId(u32), "tenant-"
);
id_type!(
    /// An entry of the device catalogue.
    ModelId(u16), "model-"
);
id_type!(
    /// A job class (e.g. "resnet50"), the row key of the speed matrix; names live with the workload.
    ClassId(u32), "class-"
);
