//! Subscription filters, no sockets: what one message costs each side's filter as the number
//! of subscribed prefixes grows.
//!
//! - `sub_filter`: a SUB or XSUB socket's own check of each received message against its
//!   subscriptions (`LocalSubscriptions::matches`), for a message that matches one prefix
//!   and for one that matches none;
//! - `pub_filter`: a publisher's search for the peers subscribed to a message
//!   (`SubscriptionTrie::matching_peers`), one peer per prefix.
//!
//! The prefixes are `topic/00000`, `topic/00001`, …: they share a long common part, as
//! hierarchical topic names do.
//!
//! Run: `cargo bench --bench filters -- --warm-up-time 1 --measurement-time 3`.

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use ferromq::internals::pattern::{LocalSubscriptions, PeerSlab, SubscriptionTrie};

/// Numbers of subscribed prefixes measured: one topic, a service's worth, a market's worth.
const PREFIX_COUNTS: [usize; 3] = [1, 100, 10_000];

fn prefix(i: usize) -> Vec<u8> {
    format!("topic/{i:05}").into_bytes()
}

/// A message on the last prefix, with a body behind its topic.
fn matching_message(prefixes: usize) -> Vec<u8> {
    let mut data = prefix(prefixes - 1);
    data.extend_from_slice(b"/body of the message");
    data
}

/// A message that shares the prefixes' common part and matches none of them.
const UNMATCHED_MESSAGE: &[u8] = b"topic/zzzzz/body of the message";

fn filters(c: &mut Criterion) {
    let mut group = c.benchmark_group("sub_filter");
    group.throughput(Throughput::Elements(1));
    for count in PREFIX_COUNTS {
        let mut subscriptions = LocalSubscriptions::new();
        for i in 0..count {
            subscriptions.add(&prefix(i));
        }
        let hit = matching_message(count);
        group.bench_function(format!("{count}_prefixes/match"), |b| {
            b.iter(|| assert!(subscriptions.matches(black_box(&hit))))
        });
        group.bench_function(format!("{count}_prefixes/no_match"), |b| {
            b.iter(|| assert!(!subscriptions.matches(black_box(UNMATCHED_MESSAGE))))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("pub_filter");
    group.throughput(Throughput::Elements(1));
    for count in PREFIX_COUNTS {
        let mut trie = SubscriptionTrie::new();
        let mut peers = PeerSlab::new();
        for i in 0..count {
            trie.subscribe(&prefix(i), peers.insert(()));
        }
        let hit = matching_message(count);
        let mut found = Vec::new();
        group.bench_function(format!("{count}_prefixes/match"), |b| {
            b.iter(|| {
                found.clear();
                trie.matching_peers(black_box(&hit), &mut found);
                assert_eq!(found.len(), 1);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, filters);
criterion_main!(benches);
