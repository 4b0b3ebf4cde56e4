//! `fgd` counts CPU as part of a task's demand, as the FGD paper does: a node whose free CPU
//! no longer holds a task type strands all its free GPUs for that type.

use tessera_core::policy::{BestFit, Fgd, PlaceContext, Placement};
use tessera_core::{Catalogue, ClusterState, JobSpec, NodeId, NodeSpec, PlacedHow, Time};

const NOW: PlaceContext = PlaceContext { now: Time::ZERO, waited: Time::ZERO };

/// Node 0: 2 GPUs and 2 cores; node 1: no GPU and 8 cores.
fn cluster() -> ClusterState {
    let cat = Catalogue::built_in();
    let m = cat.lookup("A100-80GB").unwrap();
    let nodes = vec![
        NodeSpec { name: "gpu".into(), devices: vec![m; 2], cpu_milli: 2_000, mem_mib: 1 << 20 },
        NodeSpec { name: "cpu".into(), devices: vec![], cpu_milli: 8_000, mem_mib: 1 << 20 },
    ];
    ClusterState::new(cat, nodes)
}

fn job(id: u64, gpus: u32, cpu_milli: u32) -> JobSpec {
    JobSpec { cpu_milli, ..JobSpec::simple(id, gpus) }
}

#[test]
fn a_cpu_task_keeps_off_the_cpu_that_gpu_tasks_need() {
    let c = cluster();
    let cpu_task = job(1, 0, 1_000);
    let mut fgd = Fgd::default();
    // The workload: 1-GPU tasks with a core each, and CPU-only tasks.
    for id in 0..3 {
        fgd.observe(&job(10 + id, 1, 1_000));
    }
    fgd.observe(&cpu_task);
    // Best-fit takes the tightest CPU node, the GPU node: one of its GPUs can then never be
    // used by the common 1-GPU, 1-core tasks.
    let best = BestFit.place(&c, &cpu_task, &NOW).unwrap();
    assert_eq!(best.allocation.nodes[0].node, NodeId(0));
    // fgd, by hand (F in GPUs; the CPU node has no GPU, so its F is always 0):
    //   GPU node before: 2 cores, 2 GPUs free: F_gpu-task = 0 (fits; both whole), F_cpu-task = 2.
    //   GPU node after:  1 core: F_gpu-task = 0 (still fits, whole GPUs free), F_cpu-task = 2.
    // So both score 0 here, and the tie goes to the tighter node: the GPU node. Only when the
    // CPU would run out does fgd move away, which the next case checks.
    let p = fgd.place(&c, &cpu_task, &NOW).unwrap();
    assert!(matches!(p.how, PlacedHow::Fgd { node: NodeId(0), .. }), "{:?}", p.how);

    let big_cpu_task = job(2, 0, 1_500);
    fgd.observe(&big_cpu_task);
    // Taking 1.5 of the GPU node's 2 cores leaves 0.5: no 1-core GPU task fits any more, so both
    // free GPUs become fragments for them (weight 3/5): growth 1.2 GPUs. The CPU node: 0.
    let best = BestFit.place(&c, &big_cpu_task, &NOW).unwrap();
    assert_eq!(best.allocation.nodes[0].node, NodeId(0));
    let p = fgd.place(&c, &big_cpu_task, &NOW).unwrap();
    let PlacedHow::Fgd { node, fragmentation_increase, candidates, .. } = p.how else { panic!("{:?}", p.how) };
    assert_eq!((node, candidates), (NodeId(1), 2));
    assert_eq!(fragmentation_increase, 0.0);
}

#[test]
fn a_gpu_task_counts_the_cpu_it_leaves() {
    // Two GPU nodes: node 0 with 2 GPUs and 3 cores, node 1 with 2 GPUs and 2 cores. A 1-GPU
    // task with 2 cores: on node 1 it leaves no core, stranding the other GPU for the 1-core
    // tasks; on node 0 it leaves 1 core, so the other GPU stays usable.
    let cat = Catalogue::built_in();
    let m = cat.lookup("A100-80GB").unwrap();
    let c = ClusterState::new(
        cat,
        vec![
            NodeSpec { name: "a".into(), devices: vec![m; 2], cpu_milli: 3_000, mem_mib: 1 << 20 },
            NodeSpec { name: "b".into(), devices: vec![m; 2], cpu_milli: 2_000, mem_mib: 1 << 20 },
        ],
    );
    let mut fgd = Fgd::default();
    for id in 0..4 {
        fgd.observe(&job(id, 1, 1_000));
    }
    let task = job(9, 1, 2_000);
    fgd.observe(&task);
    let p = fgd.place(&c, &task, &NOW).unwrap();
    assert_eq!(p.allocation.nodes[0].node, NodeId(0), "{:?}", p.how);
}
