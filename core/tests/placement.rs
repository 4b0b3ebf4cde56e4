//! The defining property of each placement policy, on small hand-built clusters.

use tessera_core::policy::{
    BestFit, Fgd, FirstFit, Hetero, Pack, PlaceContext, Placed, Placement, SpeedTable, Spread, Topology, PLACEMENTS,
};
use tessera_core::{
    Alternative, Allocation, Catalogue, ClassId, ClusterState, DeviceId, DeviceShare, JobSpec, NodeId, NodeShare,
    NodeSpec, PlacedHow, Policy, PolicySpec, Time, WaitReason,
};

mod support;

const NOW: PlaceContext = PlaceContext { now: Time::ZERO, waited: Time::ZERO };


/// Nodes of A100s with these device counts, all free.
fn cluster(devices_per_node: &[usize]) -> ClusterState {
    support::uniform_cluster("A100-80GB", devices_per_node, support::NodeSize { cpu_milli: 64_000, mem_mib: 1 << 20 })
}

/// Takes `milli` of each listed device (by global id), as a running job would.
fn occupy(c: &mut ClusterState, devices: &[(u32, u16)]) {
    for &(d, milli) in devices {
        let node = c.device(DeviceId(d)).node;
        let alloc = Allocation {
            devices: vec![DeviceShare { device: DeviceId(d), milli }],
            nodes: vec![NodeShare { node, cpu_milli: 0, mem_mib: 0 }],
        };
        c.allocate(&alloc);
    }
}

fn nodes_of(p: &Placed) -> Vec<u32> {
    p.allocation.nodes.iter().map(|n| n.node.0).collect()
}

fn devices_of(p: &Placed) -> Vec<u32> {
    p.allocation.devices.iter().map(|d| d.device.0).collect()
}

fn share(id: u64, milli: u16) -> JobSpec {
    let mut job = JobSpec::simple(id, 1);
    job.devices.share_milli = milli;
    job
}

// ---- pack -----------------------------------------------------------------------------------

#[test]
fn pack_takes_the_tightest_node_and_spans_the_fewest_nodes() {
    // Free {8, 4, 6}: nodes 0, 1, 2.
    let c = cluster(&[8, 4, 6]);
    let pack = Pack::default();
    let p = pack.place(&c, &JobSpec::simple(1, 4), &NOW).unwrap();
    assert_eq!(nodes_of(&p), vec![1]);
    assert_eq!(p.how, PlacedHow::Pack { nodes: 1, last: NodeId(1), free_after: 0, island: None });
    // 10 devices: the 8, then the remainder 2 on the tightest node that holds it (the 4),
    // leaving the 6 whole. Two nodes, not three.
    let p = pack.place(&c, &JobSpec::simple(2, 10), &NOW).unwrap();
    assert_eq!(nodes_of(&p), vec![0, 1]);
    assert_eq!(p.allocation.devices.len(), 10);
    assert_eq!(p.how, PlacedHow::Pack { nodes: 2, last: NodeId(1), free_after: 2, island: None });
}

#[test]
fn pack_uses_fewer_nodes_than_first_fit() {
    let c = cluster(&[4, 4, 8]);
    let first = FirstFit.place(&c, &JobSpec::simple(1, 10), &NOW).unwrap();
    assert_eq!(nodes_of(&first), vec![0, 1, 2]);
    let p = Pack::default().place(&c, &JobSpec::simple(1, 10), &NOW).unwrap();
    assert_eq!(nodes_of(&p), vec![2, 0]);
}

#[test]
fn pack_puts_shares_on_partly_used_devices_then_on_the_fullest_node() {
    // Node 0: devices 0, 1, 2; node 1: device 3.
    let mut c = cluster(&[3, 1]);
    occupy(&mut c, &[(0, 800)]);
    // 0.1 fits on the partly used device 0 (200 free): taken before any whole device.
    let p = Pack::default().place(&c, &share(1, 100), &NOW).unwrap();
    assert_eq!(devices_of(&p), vec![0]);
    // 0.5 fits on no partly used device: a whole one on the node with the fewest whole free
    // devices (node 1 has 1, node 0 has 2). Best-fit takes the first whole device instead.
    let p = Pack::default().place(&c, &share(2, 500), &NOW).unwrap();
    assert_eq!(devices_of(&p), vec![3]);
    assert_eq!(p.how, PlacedHow::Share { device: DeviceId(3), free_milli_before: 1000 });
    let p = BestFit.place(&c, &share(2, 500), &NOW).unwrap();
    assert_eq!(devices_of(&p), vec![1]);
}

// ---- spread ---------------------------------------------------------------------------------

#[test]
fn spread_takes_the_node_with_the_most_free_devices() {
    let c = cluster(&[8, 4, 6]);
    let p = Spread.place(&c, &JobSpec::simple(1, 4), &NOW).unwrap();
    assert_eq!(nodes_of(&p), vec![0]);
    assert_eq!(p.how, PlacedHow::MostFree { node: NodeId(0), free_before: 8 });
    // A share goes to a whole free device on the emptiest node, not onto a used device.
    let mut c = cluster(&[2, 4]);
    occupy(&mut c, &[(2, 500)]);
    let p = Spread.place(&c, &share(2, 300), &NOW).unwrap();
    assert_eq!(devices_of(&p), vec![3]);
}

// ---- topology -------------------------------------------------------------------------------

#[test]
fn topology_waits_for_locality_then_accepts_a_spread_placement() {
    // Two 4-device nodes with 2 free each: a 4-device gang fits only spread.
    let mut c = cluster(&[4, 4]);
    occupy(&mut c, &[(0, 1000), (1, 1000), (4, 1000), (5, 1000)]);
    let topo = Topology { locality_wait: Time::from_secs(60), island_size: None };
    let job = JobSpec::simple(1, 4);
    let early = PlaceContext::new(Time::from_secs(110), Time::from_secs(100));
    assert_eq!(
        topo.place(&c, &job, &early).unwrap_err(),
        WaitReason::Locality { waited_s: 10.0, limit_s: 60.0, spread_nodes: 2 }
    );
    let late = PlaceContext::new(Time::from_secs(160), Time::from_secs(100));
    let p = topo.place(&c, &job, &late).unwrap();
    assert_eq!(p.how, PlacedHow::SpreadAfterWait { nodes: 2, waited_s: 60.0 });
    // With the default wait of 0 it spreads at once.
    let p = Topology::default().place(&c, &job, &early).unwrap();
    assert_eq!(nodes_of(&p), vec![0, 1]);
    // A gang no node could ever hold does not wait.
    let c = cluster(&[4, 4]);
    let p = topo.place(&c, &JobSpec::simple(2, 6), &early).unwrap();
    assert_eq!(p.how, PlacedHow::SpreadAfterWait { nodes: 2, waited_s: 10.0 });
    // One node holds it: local at once.
    let p = topo.place(&c, &job, &early).unwrap();
    assert_eq!(p.how, PlacedHow::Local { node: NodeId(0), island: None, free_after: 0 });
}

#[test]
fn topology_prefers_a_node_with_one_nvlink_island_for_the_gang() {
    // Two 8-device nodes, islands of 4. Node 0 has one device busy in each island (devices 1
    // and 5): 6 free, but no island with 4. Node 1 is empty.
    let mut c = cluster(&[8, 8]);
    occupy(&mut c, &[(1, 1000), (5, 1000)]);
    let job = JobSpec::simple(1, 4);
    assert_eq!(nodes_of(&BestFit.place(&c, &job, &NOW).unwrap()), vec![0]);
    let topo = Topology { locality_wait: Time::ZERO, island_size: Some(4) };
    let p = topo.place(&c, &job, &NOW).unwrap();
    assert_eq!(p.how, PlacedHow::Local { node: NodeId(1), island: Some(0), free_after: 4 });
    assert_eq!(devices_of(&p), vec![8, 9, 10, 11]);
    // A 3-device gang fits an island of node 0 (the tightest node): island 0, devices 0, 2, 3.
    let p = topo.place(&c, &JobSpec::simple(2, 3), &NOW).unwrap();
    assert_eq!(p.how, PlacedHow::Local { node: NodeId(0), island: Some(0), free_after: 3 });
    assert_eq!(devices_of(&p), vec![0, 2, 3]);
    // Pack with islands fills the tightest island of the tightest node.
    let mut c2 = cluster(&[8]);
    occupy(&mut c2, &[(0, 1000), (1, 1000), (4, 1000)]);
    let p = Pack { island_size: Some(4) }.place(&c2, &JobSpec::simple(3, 2), &NOW).unwrap();
    assert_eq!(devices_of(&p), vec![2, 3]);
    assert_eq!(p.how, PlacedHow::Pack { nodes: 1, last: NodeId(0), free_after: 3, island: Some(0) });
}

// ---- fgd ------------------------------------------------------------------------------------

#[test]
fn fgd_places_a_share_where_expected_fragmentation_grows_least() {
    // Node 0: one GPU with 0.6 free; node 1: one GPU with 0.8 free.
    let mut c = cluster(&[1, 1]);
    occupy(&mut c, &[(0, 400), (1, 200)]);
    // The workload: three 0.5 tasks and one 0.3 task, so p(0.5) = 3/4, p(0.3) = 1/4.
    let mut fgd = Fgd::default();
    for id in 0..3 {
        fgd.observe(&share(id, 500));
    }
    let job = share(10, 300);
    fgd.observe(&job);
    // By hand, fragmentation F_t = free capacity of the node's GPUs that cannot take t:
    //   node 0 before (0.6 free): F_0.5 = 0, F_0.3 = 0; E = 0.
    //   node 0 after  (0.3 free): F_0.5 = 0.3 (0.3 < 0.5), F_0.3 = 0; E = 3/4 * 0.3 = 0.225.
    //   node 1 before (0.8 free): E = 0.
    //   node 1 after  (0.5 free): F_0.5 = 0, F_0.3 = 0; E = 0.
    // So the growth is +0.225 on node 0 and 0 on node 1: fgd takes node 1. Best-fit takes
    // node 0 (the least free share that fits), which strands 0.3 that the common 0.5 tasks
    // cannot use.
    assert_eq!(devices_of(&BestFit.place(&c, &job, &NOW).unwrap()), vec![0]);
    let p = fgd.place(&c, &job, &NOW).unwrap();
    assert_eq!(devices_of(&p), vec![1]);
    assert_eq!(
        p.how,
        PlacedHow::Fgd { node: NodeId(1), device: Some(DeviceId(1)), fragmentation_increase: 0.0, candidates: 2 }
    );
    // Check the loser's score by removing the winner: with device 1 too full for the job,
    // node 0 is the only candidate and scores +0.225.
    let mut c2 = c.clone();
    occupy(&mut c2, &[(1, 600)]);
    let p = fgd.place(&c2, &job, &NOW).unwrap();
    let PlacedHow::Fgd { node, fragmentation_increase, .. } = p.how else { panic!("{:?}", p.how) };
    assert_eq!(node, NodeId(0));
    assert!((fragmentation_increase - 0.225).abs() < 1e-12, "{fragmentation_increase}");
}

#[test]
fn fgd_keeps_whole_gpu_pairs_intact_for_the_workload_that_needs_them() {
    // Node 0: 4 free GPUs; node 1: 2 free GPUs. The workload: 2-GPU tasks (3) and 1-GPU (1).
    let c = cluster(&[4, 2]);
    let mut fgd = Fgd::default();
    for id in 0..3 {
        fgd.observe(&JobSpec::simple(id, 2));
    }
    let job = JobSpec::simple(10, 1);
    fgd.observe(&job);
    // Node 1 after taking 1: one free GPU, which a 2-GPU task cannot use: F_2 = 1, F_1 = 0;
    // growth 3/4 * 1 = 0.75. Node 0 after: 3 free, a 2-GPU task still fits and uses whole
    // GPUs: F_2 = 0, F_1 = 0; growth 0. Best-fit takes node 1; fgd node 0.
    assert_eq!(nodes_of(&BestFit.place(&c, &job, &NOW).unwrap()), vec![1]);
    let p = fgd.place(&c, &job, &NOW).unwrap();
    assert_eq!(p.how, PlacedHow::Fgd { node: NodeId(0), device: None, fragmentation_increase: 0.0, candidates: 2 });
    // The loser is its runner-up, with its growth.
    assert_eq!(p.alternatives, vec![Alternative::node(NodeId(1), 0.75)]);
}

#[test]
fn fgd_with_no_observations_scores_against_the_job_itself() {
    // With only the job's own type, both placements leave no fragment for it (0.3 after on
    // device 0, 0.5 on device 1): a tie, broken for the tighter device, as best-fit.
    let mut c = cluster(&[1, 1]);
    occupy(&mut c, &[(0, 400), (1, 200)]);
    let p = Fgd::default().place(&c, &share(1, 300), &NOW).unwrap();
    assert_eq!(devices_of(&p), vec![0]);
}

// ---- hetero ---------------------------------------------------------------------------------

#[test]
fn hetero_gives_the_fast_model_to_the_class_that_gains_most_on_it() {
    let cat = Catalogue::built_in();
    let (k80, v100) = (cat.lookup("K80").unwrap(), cat.lookup("V100-32GB").unwrap());
    // The V100 node comes first, so best-fit (ties by node id) gives it to whoever comes first.
    let nodes = vec![
        NodeSpec { name: "v100".into(), devices: vec![v100], cpu_milli: 8000, mem_mib: 1 << 16 },
        NodeSpec { name: "k80".into(), devices: vec![k80], cpu_milli: 8000, mem_mib: 1 << 16 },
    ];
    let mut c = ClusterState::new(cat.clone(), nodes);
    // Class 0 runs 4x faster on V100 than on K80; class 1 only 1.2x.
    let mut speeds = SpeedTable::uniform(2, cat.len());
    speeds.set(ClassId(0), v100, 4.0);
    speeds.set(ClassId(1), v100, 1.2);
    let mut spec = PolicySpec::named("fifo");
    spec.placement = Some("hetero".into());
    let mut policy = Policy::from_spec(&spec).unwrap().with_speeds(speeds);
    let mut fast = JobSpec::simple(1, 1);
    fast.class = ClassId(0);
    let mut slow = JobSpec::simple(2, 1);
    slow.class = ClassId(1);
    policy.placement.observe(&slow);
    policy.placement.observe(&fast);
    // Both compete; the 1.2x class comes first. Mean speed on V100 is (4 + 1.2) / 2 = 2.6, on
    // K80 1.0. Class 1: 1.2 / 2.6 = 0.46 on V100, 1.0 on K80: it takes the K80.
    assert_eq!(nodes_of(&BestFit.place(&c, &slow, &NOW).unwrap()), vec![0]);
    let p = policy.placement.place(&c, &slow, &NOW).unwrap();
    assert_eq!(p.how, PlacedHow::Hetero { model: k80, speed: 1.0, relative_speed: 1.0, nodes: 1 });
    c.allocate(&p.allocation);
    // Class 0: 4 / 2.6 = 1.54 on V100: it gets the V100.
    let p = policy.placement.place(&c, &fast, &NOW).unwrap();
    let PlacedHow::Hetero { model, speed, relative_speed, nodes } = p.how else { panic!("{:?}", p.how) };
    assert_eq!((model, speed, nodes), (v100, 4.0, 1));
    assert!((relative_speed - 4.0 / 2.6).abs() < 1e-12);
    // Work-conserving: with the K80 taken, class 1 takes the V100 rather than wait.
    let p = policy.placement.place(&c, &slow, &NOW).unwrap();
    assert_eq!(nodes_of(&p), vec![0]);
}

#[test]
fn hetero_without_speeds_or_observations_is_best_fit_by_model_order() {
    let c = cluster(&[4, 2]);
    let p = Hetero::default().place(&c, &JobSpec::simple(1, 2), &NOW).unwrap();
    assert_eq!(nodes_of(&p), vec![1]);
}

// ---- runners-up -----------------------------------------------------------------------------

fn alternatives(p: &Placed) -> Vec<(Option<u32>, f64)> {
    p.alternatives.iter().map(|a| (a.node.map(|n| n.0), a.score)).collect()
}

#[test]
fn a_scoring_placement_names_its_runners_up_best_first_and_first_fit_none() {
    // Free: 8, 2, 4, 6, 3 whole GPUs; a 2-GPU gang.
    let c = cluster(&[8, 2, 4, 6, 3]);
    let job = JobSpec::simple(1, 2);
    let p = FirstFit.place(&c, &job, &NOW).unwrap();
    assert!(p.alternatives.is_empty(), "first-fit goes by node order, not a score: {:?}", p.alternatives);
    // Best-fit: node 1 keeps 0; then nodes 4 (1 kept), 2 (2), 3 (4); at most three listed.
    let p = BestFit.place(&c, &job, &NOW).unwrap();
    assert_eq!(nodes_of(&p), vec![1]);
    assert_eq!(alternatives(&p), vec![(Some(4), 1.0), (Some(2), 2.0), (Some(3), 4.0)]);
    // Spread: node 0 (8 free before); then 3 (6), 2 (4), 4 (3).
    let p = Spread.place(&c, &job, &NOW).unwrap();
    assert_eq!(nodes_of(&p), vec![0]);
    assert_eq!(alternatives(&p), vec![(Some(3), 6.0), (Some(2), 4.0), (Some(4), 3.0)]);
    // Pack and topology rank as best-fit for a gang one node holds.
    for p in [Pack::default().place(&c, &job, &NOW).unwrap(), Topology::default().place(&c, &job, &NOW).unwrap()] {
        assert_eq!(nodes_of(&p), vec![1]);
        assert_eq!(alternatives(&p), vec![(Some(4), 1.0), (Some(2), 2.0), (Some(3), 4.0)]);
    }
    // Only nodes that hold the whole gang are candidates; a spread gang has none.
    let p = BestFit.place(&c, &JobSpec::simple(2, 6), &NOW).unwrap();
    assert_eq!((nodes_of(&p), alternatives(&p)), (vec![3], vec![(Some(0), 2.0)]));
    assert!(BestFit.place(&c, &JobSpec::simple(3, 12), &NOW).unwrap().alternatives.is_empty());
}

#[test]
fn share_and_cpu_only_placements_name_their_runners_up() {
    // Device free shares: 600, 800, 300 (too little for 0.5), 1000.
    let mut c = cluster(&[2, 2]);
    occupy(&mut c, &[(0, 400), (1, 200), (2, 700)]);
    let job = share(1, 500);
    let p = BestFit.place(&c, &job, &NOW).unwrap();
    assert_eq!(devices_of(&p), vec![0]);
    let devices: Vec<(Option<u32>, f64)> = p.alternatives.iter().map(|a| (a.device.map(|d| d.0), a.score)).collect();
    assert_eq!(devices, vec![(Some(1), 800.0), (Some(3), 1000.0)]);
    let p = Spread.place(&c, &job, &NOW).unwrap();
    assert_eq!(devices_of(&p), vec![3]);
    assert_eq!(p.alternatives.iter().map(|a| a.score).collect::<Vec<_>>(), vec![800.0, 600.0]);
    // CPU-only: free CPU 64, 64 cores; best-fit takes node 0, node 1 is the runner-up.
    let mut cpu = JobSpec::simple(2, 0);
    cpu.cpu_milli = 1000;
    let p = BestFit.place(&c, &cpu, &NOW).unwrap();
    assert_eq!(alternatives(&p), vec![(Some(1), 64_000.0)]);
}

#[test]
fn hetero_names_the_other_models_it_scored() {
    let cat = Catalogue::built_in();
    let (k80, v100) = (cat.lookup("K80").unwrap(), cat.lookup("V100-32GB").unwrap());
    let nodes = vec![
        NodeSpec { name: "v100".into(), devices: vec![v100], cpu_milli: 8000, mem_mib: 1 << 16 },
        NodeSpec { name: "k80".into(), devices: vec![k80], cpu_milli: 8000, mem_mib: 1 << 16 },
    ];
    let c = ClusterState::new(cat.clone(), nodes);
    let mut speeds = SpeedTable::uniform(1, cat.len());
    speeds.set(ClassId(0), v100, 3.0);
    let mut spec = PolicySpec::named("fifo");
    spec.placement = Some("hetero".into());
    let mut policy = Policy::from_spec(&spec).unwrap().with_speeds(speeds);
    let job = JobSpec::simple(1, 1);
    policy.placement.observe(&job);
    // One class: relative speed 1 on both models; its raw speed breaks the tie for the V100.
    let p = policy.placement.place(&c, &job, &NOW).unwrap();
    assert_eq!(nodes_of(&p), vec![0]);
    assert_eq!(p.alternatives, vec![Alternative { node: None, device: None, model: Some(k80), score: 1.0 }]);
}

// ---- registry -------------------------------------------------------------------------------

#[test]
fn registry_builds_every_placement_and_checks_its_parameters() {
    let c = cluster(&[4, 4]);
    for &name in PLACEMENTS {
        let mut spec = PolicySpec::named("fifo");
        spec.placement = Some(name.into());
        spec.locality_wait_s = Some(30.0);
        spec.island_size = Some(2);
        let policy = Policy::from_spec(&spec).unwrap();
        assert_eq!(policy.placement.name(), name);
        // Every placement places whole gangs, spans, shares and CPU-only jobs.
        for job in [JobSpec::simple(1, 2), JobSpec::simple(2, 8), share(3, 250), JobSpec::simple(4, 0)] {
            let p = policy.placement.place(&c, &job, &PlaceContext::new(Time::from_secs(100), Time::ZERO)).unwrap();
            assert_eq!(p.allocation.devices.len() as u32, job.devices.count, "{name} {job:?}");
        }
    }
    let mut spec = PolicySpec::named("fifo");
    spec.placement = Some("topology".into());
    spec.locality_wait_s = Some(-1.0);
    assert_eq!(Policy::from_spec(&spec).unwrap_err().key, "locality_wait_s");
    spec.locality_wait_s = None;
    spec.island_size = Some(0);
    assert_eq!(Policy::from_spec(&spec).unwrap_err().key, "island_size");
}
