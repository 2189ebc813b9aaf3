//! Spread placement preferences and node filling (swarmkit `nodeset.go` `tree`,
//! `scheduler.go` `scheduleNTasksOnSubtree`, `scheduleNTasksOnNodes`).

use super::filters::{Needs, NodeInfo};
use reconciler_types::Node;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// A level of the spread tree: the service's existing tasks below it, and its branches by
/// label value (a node without the label is in branch `""`), or at the bottom its nodes.
#[derive(Debug, Default)]
pub struct Tree {
    tasks: usize,
    next: BTreeMap<String, Tree>,
    nodes: Vec<usize>,
}

/// The label a spread descriptor names on a node; `None` for a descriptor Swarm ignores.
fn descriptor_value<'a>(descriptor: &str, node: &'a Node) -> Option<&'a str> {
    if let Some(name) = descriptor.strip_prefix("node.labels.") {
        return Some(node.spec.labels.get(name).map_or("", String::as_str));
    }
    if let Some(name) = descriptor.strip_prefix("engine.labels.") {
        return Some(node.description.engine.labels.get(name).map_or("", String::as_str));
    }
    None
}

/// Whether Swarm honours a spread descriptor (`node.labels.*` or `engine.labels.*`).
pub fn is_spread_descriptor(descriptor: &str) -> bool {
    descriptor.starts_with("node.labels.") || descriptor.starts_with("engine.labels.")
}

impl Tree {
    /// Builds the tree over every node (including ones failing the filters).
    pub fn build(infos: &[NodeInfo<'_>], descriptors: &[&str], needs: &Needs<'_>) -> Tree {
        let mut root = Tree::default();
        for (i, info) in infos.iter().enumerate() {
            let count = info.of_service(needs.service);
            let mut level = &mut root;
            level.tasks += count;
            for d in descriptors {
                let value = descriptor_value(d, info.node).unwrap_or("");
                level = level.next.entry(value.to_owned()).or_default();
                level.tasks += count;
            }
            level.nodes.push(i);
        }
        root
    }
}

/// Swarm's node ranking: fewer tasks of this service, then fewer tasks in total; flotilla
/// breaks remaining ties by node id.
pub fn node_less(a: &NodeInfo<'_>, b: &NodeInfo<'_>, needs: &Needs<'_>) -> Ordering {
    a.of_service(needs.service)
        .cmp(&b.of_service(needs.service))
        .then(a.total.cmp(&b.total))
        .then_with(|| a.node.id.cmp(&b.node.id))
}

/// Places up to `n` tasks in the subtree; answers the chosen node indexes in order.
pub fn schedule_subtree<'a>(
    n: usize,
    tree: &Tree,
    infos: &mut [NodeInfo<'a>],
    needs: &Needs<'a>,
    out: &mut Vec<usize>,
) -> usize {
    if tree.next.is_empty() {
        let mut nodes: Vec<usize> =
            tree.nodes.iter().copied().filter(|i| infos[*i].check(needs).is_ok()).collect();
        nodes.sort_by(|a, b| node_less(&infos[*a], &infos[*b], needs));
        return schedule_on_nodes(n, &nodes, infos, needs, out);
    }
    let mut scheduled = 0;
    let mut usable_tasks = tree.tasks;
    let mut no_room: BTreeSet<&str> = BTreeSet::new();
    while scheduled != n && no_room.len() != tree.next.len() {
        let branches = tree.next.len() - no_room.len();
        let wanted = usable_tasks + n - scheduled;
        let (desired, mut remainder) = (wanted / branches, wanted % branches);
        for (value, sub) in &tree.next {
            if no_room.contains(value.as_str()) {
                continue;
            }
            if sub.tasks < desired || (sub.tasks == desired && remainder > 0) {
                let mut assign = desired - sub.tasks;
                if remainder > 0 {
                    assign += 1;
                }
                let got = schedule_subtree(assign, sub, infos, needs, out);
                if got < assign {
                    no_room.insert(value.as_str());
                    usable_tasks -= sub.tasks;
                } else {
                    remainder = remainder.saturating_sub(1);
                }
                scheduled += got;
            }
        }
    }
    scheduled
}

/// Fills ranked nodes: stay on a node until the next one ranks better, then round-robin
/// over the nodes that still pass the filters.
pub fn schedule_on_nodes<'a>(
    n: usize,
    nodes: &[usize],
    infos: &mut [NodeInfo<'a>],
    needs: &Needs<'a>,
    out: &mut Vec<usize>,
) -> usize {
    let count = nodes.len();
    if count == 0 || n == 0 {
        return 0;
    }
    let mut failed = vec![false; count];
    let mut iter = 0usize;
    let mut scheduled = 0;
    loop {
        if infos[nodes[iter % count]].check(needs).is_err() {
            failed[iter % count] = true;
            let start = iter;
            loop {
                iter += 1;
                if iter - start == count {
                    return scheduled;
                }
                if !failed[iter % count] && infos[nodes[iter % count]].check(needs).is_ok() {
                    break;
                }
                failed[iter % count] = true;
            }
        }
        let cur = nodes[iter % count];
        infos[cur].add(needs);
        out.push(cur);
        scheduled += 1;
        if scheduled == n {
            return scheduled;
        }
        if iter + 1 < count {
            let next = nodes[(iter + 1) % count];
            let rank = |i: &NodeInfo<'_>| (i.of_service(needs.service), i.total);
            if rank(&infos[next]) < rank(&infos[cur]) {
                iter += 1;
            }
        } else {
            iter += 1;
        }
        let start = iter;
        while failed[iter % count] {
            iter += 1;
            if iter - start == count {
                return scheduled;
            }
        }
    }
}
