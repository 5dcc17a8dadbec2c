//! `pattern_ops`: operation sequences on the pattern layer against simple models.

use super::*;

use ferromq::internals::pattern::{
    FairQueue, LoadBalancer, LocalSubscriptions, PeerId, PeerSlab, RepState, ReqState,
    RoutingTable, StateError, SubscriptionTrie,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

/// A short byte string over a 3-letter alphabet, so that prefixes collide often.
#[derive(Arbitrary, Debug)]
struct Topic(Vec<u8>);

impl Topic {
    fn bytes(&self) -> Vec<u8> {
        self.0.iter().take(6).map(|b| b'a' + b % 3).collect()
    }
}

#[derive(Arbitrary, Debug)]
enum EnvelopeFrame {
    Empty,
    RequestId,
    WrongId,
    Body(u8),
}

#[derive(Arbitrary, Debug)]
enum PatternOp {
    Connect,
    Disconnect(u8),
    StaleLookup(u8),
    Subscribe(u8, Topic),
    Unsubscribe(u8, Topic),
    Publish(Topic),
    TrieRemovePeer(u8),
    LocalAdd(Topic),
    LocalRemove(Topic),
    LocalMatch(Topic),
    Attach {
        peer: u8,
        announced: Option<Topic>,
        handover: bool,
    },
    Detach(u8),
    Lookup(Topic),
    GenerateId,
    LbAdd(u8),
    LbRemove(u8),
    LbNext(u32),
    FqAdd(u8),
    FqRemove(u8),
    FqPush {
        peer: u8,
        parts: u8,
    },
    FqPop,
    FqSetHwm(u8),
    ReqSend(u8),
    ReqReply {
        peer: u8,
        frames: Vec<EnvelopeFrame>,
    },
    ReqTake,
    RepRecv {
        peer: u8,
        frames: Vec<EnvelopeFrame>,
    },
    RepSend,
}

#[derive(Arbitrary, Debug)]
struct PatternInput {
    fq_hwm: u8,
    req_relaxed: bool,
    req_correlate: bool,
    req_id_seed: u32,
    routing_seed: u32,
    ops: Vec<PatternOp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReqModel {
    Idle,
    Awaiting { peer: PeerId, id: u32 },
    ReplyQueued,
}

/// The models: plain collections with the documented semantics.
#[derive(Default)]
struct PatternModel {
    live: Vec<PeerId>,
    gone: Vec<PeerId>,
    ever: HashSet<PeerId>,
    slab_values: HashMap<PeerId, usize>,
    trie: BTreeMap<Vec<u8>, BTreeSet<PeerId>>,
    local: BTreeMap<Vec<u8>, usize>,
    by_id: HashMap<Bytes, PeerId>,
    by_peer: HashMap<PeerId, Bytes>,
    next_id: u32,
    lb: Vec<PeerId>,
    lb_cursor: usize,
    fq: HashMap<PeerId, VecDeque<Vec<Bytes>>>,
    fq_ready: VecDeque<PeerId>,
    fq_hwm: usize,
    fq_seq: u32,
    req: Option<ReqModel>,
    req_last_id: u32,
    rep: Option<(Option<PeerId>, Vec<Bytes>)>,
}

impl PatternModel {
    fn peer(&self, i: u8) -> Option<PeerId> {
        (!self.live.is_empty()).then(|| self.live[usize::from(i) % self.live.len()])
    }

    fn generate_id(&mut self) -> Bytes {
        loop {
            let mut id = vec![0u8];
            id.extend_from_slice(&self.next_id.to_be_bytes());
            self.next_id = self.next_id.wrapping_add(1);
            if !self.by_id.contains_key(&id[..]) {
                return id.into();
            }
        }
    }

    fn fq_remove(&mut self, p: PeerId) -> usize {
        let Some(queue) = self.fq.remove(&p) else {
            return 0;
        };
        self.fq_ready.retain(|q| *q != p);
        queue.len()
    }

    fn envelope_frames(&self, frames: &[EnvelopeFrame]) -> Vec<Bytes> {
        frames
            .iter()
            .map(|f| match f {
                EnvelopeFrame::Empty => Bytes::new(),
                EnvelopeFrame::RequestId => Bytes::copy_from_slice(&self.req_last_id.to_ne_bytes()),
                EnvelopeFrame::WrongId => {
                    Bytes::copy_from_slice(&self.req_last_id.wrapping_add(1).to_ne_bytes())
                }
                EnvelopeFrame::Body(b) => Bytes::copy_from_slice(&[*b, b'.']),
            })
            .collect()
    }
}

/// `pattern_ops` target: an arbitrary sequence of operations on every pattern-layer
/// structure, sharing peers from one `PeerSlab`, each checked against a simple model:
/// generational ids never reused and stale ids never resolving; the subscription trie as a
/// map prefix → peer set (subscriptions counted once per peer, "" matches everything,
/// `remove_peer` reporting exactly the prefixes it emptied); subscriber-side subscriptions
/// counted; routing ids as two hash maps with libzmq's generated ids and handover rule; strict
/// round robin skipping peers without room; a fair queue serving whole messages (never
/// interleaving parts) one per peer turn under a per-peer HWM; REQ/REP alternation and
/// envelopes. Disconnecting a peer removes it from every structure, as the engine does.
pub fn pattern_ops(data: &[u8]) {
    let Some(input) = structured::<PatternInput>(data) else {
        return;
    };
    let mut slab: PeerSlab<usize> = PeerSlab::new();
    let mut trie = SubscriptionTrie::new();
    let mut local = LocalSubscriptions::new();
    let mut routing = RoutingTable::new(input.routing_seed);
    let mut lb = LoadBalancer::new();
    let mut fq: FairQueue<Message> = FairQueue::new(usize::from(input.fq_hwm % 5));
    let mut req = ReqState::new(input.req_relaxed, input.req_correlate, input.req_id_seed);
    let mut rep = RepState::new();
    let mut m = PatternModel {
        next_id: input.routing_seed,
        fq_hwm: usize::from(input.fq_hwm % 5),
        req: Some(ReqModel::Idle),
        req_last_id: input.req_id_seed,
        rep: None,
        ..PatternModel::default()
    };
    let mut matched = Vec::new();

    for op in &input.ops {
        match op {
            PatternOp::Connect => {
                let value = m.ever.len();
                let id = slab.insert(value);
                assert!(m.ever.insert(id), "PeerSlab handed out {id:?} twice");
                m.live.push(id);
                m.slab_values.insert(id, value);
            }
            PatternOp::Disconnect(i) => {
                let Some(p) = m.peer(*i) else { continue };
                assert_eq!(slab.remove(p), m.slab_values.remove(&p));
                assert_eq!(slab.remove(p), None, "removed twice");
                m.live.retain(|q| *q != p);
                m.gone.push(p);
                // Everything the engine does when a peer goes.
                let mut emptied = Vec::new();
                trie.remove_peer(p, |prefix| emptied.push(prefix.to_vec()));
                emptied.sort();
                let mut want = Vec::new();
                m.trie.retain(|prefix, peers| {
                    if peers.remove(&p) && peers.is_empty() {
                        want.push(prefix.clone());
                    }
                    !peers.is_empty()
                });
                assert_eq!(emptied, want, "prefixes reported emptied by remove_peer");
                assert_eq!(routing.remove_peer(p), m.by_peer.remove(&p));
                if let Some(id) = m
                    .by_id
                    .iter()
                    .find(|(_, q)| **q == p)
                    .map(|(k, _)| k.clone())
                {
                    m.by_id.remove(&id);
                }
                lb.remove_peer(p);
                model_lb_remove(&mut m, p);
                assert_eq!(fq.remove_peer(p), m.fq_remove(p));
                rep.peer_detached(p);
                if let Some((peer, _)) = &mut m.rep
                    && *peer == Some(p)
                {
                    *peer = None;
                }
            }
            PatternOp::StaleLookup(i) => {
                if m.gone.is_empty() {
                    continue;
                }
                let p = m.gone[usize::from(*i) % m.gone.len()];
                assert_eq!(slab.get(p), None, "stale id resolved");
                assert!(!slab.contains(p));
                assert_eq!(routing.id_of(p), None);
                assert!(!fq.contains(p));
            }
            PatternOp::Subscribe(i, topic) => {
                let Some(p) = m.peer(*i) else { continue };
                let prefix = topic.bytes();
                let set = m.trie.entry(prefix.clone()).or_default();
                let first = set.is_empty();
                let new = set.insert(p);
                let change = trie.subscribe(&prefix, p);
                assert_eq!((change.for_peer, change.for_trie), (new, new && first));
                assert!(trie.contains(&prefix, p));
            }
            PatternOp::Unsubscribe(i, topic) => {
                let Some(p) = m.peer(*i) else { continue };
                let prefix = topic.bytes();
                let (had, last) = match m.trie.get_mut(&prefix) {
                    Some(set) => {
                        let had = set.remove(&p);
                        (had, had && set.is_empty())
                    }
                    None => (false, false),
                };
                if last {
                    m.trie.remove(&prefix);
                }
                let change = trie.unsubscribe(&prefix, p);
                assert_eq!((change.for_peer, change.for_trie), (had, last));
                assert!(!trie.contains(&prefix, p));
            }
            PatternOp::Publish(topic) => {
                let data = topic.bytes();
                trie.matching_peers(&data, &mut matched);
                let want: BTreeSet<PeerId> = m
                    .trie
                    .iter()
                    .filter(|(prefix, _)| data.starts_with(prefix))
                    .flat_map(|(_, peers)| peers.iter().copied())
                    .collect();
                assert_eq!(
                    matched,
                    want.into_iter().collect::<Vec<_>>(),
                    "matching peers"
                );
            }
            PatternOp::TrieRemovePeer(i) => {
                let Some(p) = m.peer(*i) else { continue };
                let mut emptied = Vec::new();
                trie.remove_peer(p, |prefix| emptied.push(prefix.to_vec()));
                emptied.sort();
                let mut want = Vec::new();
                m.trie.retain(|prefix, peers| {
                    if peers.remove(&p) && peers.is_empty() {
                        want.push(prefix.clone());
                    }
                    !peers.is_empty()
                });
                assert_eq!(emptied, want, "prefixes reported emptied by remove_peer");
            }
            PatternOp::LocalAdd(topic) => {
                let prefix = topic.bytes();
                let count = m.local.entry(prefix.clone()).or_default();
                *count += 1;
                assert_eq!(local.add(&prefix), *count == 1);
            }
            PatternOp::LocalRemove(topic) => {
                let prefix = topic.bytes();
                let gone = match m.local.get_mut(&prefix) {
                    Some(count) => {
                        *count -= 1;
                        *count == 0
                    }
                    None => false,
                };
                if gone {
                    m.local.remove(&prefix);
                }
                assert_eq!(local.remove(&prefix), gone);
            }
            PatternOp::LocalMatch(topic) => {
                let data = topic.bytes();
                let want = m.local.keys().any(|prefix| data.starts_with(prefix));
                assert_eq!(local.matches(&data), want, "local match of {data:?}");
            }
            PatternOp::Attach {
                peer,
                announced,
                handover,
            } => {
                let Some(p) = m.peer(*peer) else { continue };
                let announced = announced.as_ref().map(|t| Bytes::from(t.bytes()));
                let want = model_attach(&mut m, p, announced.clone(), *handover);
                let got = routing.attach(p, announced, *handover);
                match (&got, &want) {
                    (Ok(g), Ok(w)) => assert_eq!(g, w, "attach result"),
                    (Err(_), Err(id)) => {
                        assert_eq!(
                            got,
                            Err(ferromq::internals::pattern::AttachError::DuplicateId(
                                id.clone()
                            ))
                        )
                    }
                    _ => panic!("attach gave {got:?}, model says {want:?}"),
                }
            }
            PatternOp::Detach(i) => {
                let Some(p) = m.peer(*i) else { continue };
                let want = m.by_peer.remove(&p);
                if let Some(id) = &want {
                    m.by_id.remove(id);
                }
                assert_eq!(routing.remove_peer(p), want);
            }
            PatternOp::Lookup(topic) => {
                let id = topic.bytes();
                assert_eq!(routing.lookup(&id), m.by_id.get(&id[..]).copied());
            }
            PatternOp::GenerateId => {
                let want = m.generate_id();
                assert_eq!(routing.generate_id(), want);
            }
            PatternOp::LbAdd(i) => {
                let Some(p) = m.peer(*i) else { continue };
                lb.add_peer(p);
                if !m.lb.contains(&p) {
                    m.lb.push(p);
                }
            }
            PatternOp::LbRemove(i) => {
                let Some(p) = m.peer(*i) else { continue };
                lb.remove_peer(p);
                model_lb_remove(&mut m, p);
            }
            PatternOp::LbNext(mask) => {
                let room = |p: PeerId| mask & (1 << (p.index() % 32)) != 0;
                let got = lb.next_peer(room);
                let n = m.lb.len();
                let want = (0..n)
                    .map(|step| (m.lb_cursor + step) % n)
                    .find(|&pos| room(m.lb[pos]));
                if let Some(pos) = want {
                    m.lb_cursor = (pos + 1) % n;
                }
                assert_eq!(got, want.map(|pos| m.lb[pos]), "round robin choice");
                assert_eq!(got.is_none(), !m.lb.iter().any(|p| room(*p)));
            }
            PatternOp::FqAdd(i) => {
                let Some(p) = m.peer(*i) else { continue };
                fq.add_peer(p);
                m.fq.entry(p).or_default();
            }
            PatternOp::FqRemove(i) => {
                let Some(p) = m.peer(*i) else { continue };
                assert_eq!(fq.remove_peer(p), m.fq_remove(p));
            }
            PatternOp::FqPush { peer, parts } => {
                let Some(p) = m.peer(*peer) else { continue };
                m.fq_seq += 1;
                let frames: Vec<Bytes> = (0..=parts % 4)
                    .map(|part| {
                        let mut f = m.fq_seq.to_be_bytes().to_vec();
                        f.push(part);
                        f.into()
                    })
                    .collect();
                let message: Message = frames.iter().cloned().collect();
                let hwm = m.fq_hwm;
                let accepted = match m.fq.get_mut(&p) {
                    Some(queue) if hwm == 0 || queue.len() < hwm => {
                        if queue.is_empty() {
                            m.fq_ready.push_back(p);
                        }
                        queue.push_back(frames);
                        true
                    }
                    _ => false,
                };
                assert_eq!(fq.has_room(p), accepted, "has_room before push");
                assert_eq!(fq.push(p, message).is_ok(), accepted, "push accepted");
            }
            PatternOp::FqPop => {
                let want = m.fq_ready.pop_front().map(|p| {
                    let queue = m.fq.get_mut(&p).expect("ready peers have queues");
                    let item = queue.pop_front().expect("ready peers have items");
                    if !queue.is_empty() {
                        m.fq_ready.push_back(p);
                    }
                    (p, item)
                });
                let got = fq.pop();
                match (got, want) {
                    (None, None) => {}
                    (Some((gp, gm)), Some((wp, wm))) => {
                        assert_eq!(gp, wp, "fair queue served the wrong peer");
                        assert_eq!(gm.frames(), &wm[..], "message parts differ");
                    }
                    (got, want) => panic!("pop gave {got:?}, model says {want:?}"),
                }
            }
            PatternOp::FqSetHwm(h) => {
                let hwm = usize::from(h % 5);
                fq.set_hwm(hwm);
                m.fq_hwm = hwm;
                assert_eq!(fq.hwm(), hwm);
            }
            PatternOp::ReqSend(i) => {
                let Some(p) = m.peer(*i) else { continue };
                let state = m.req.expect("req model");
                let allowed = state == ReqModel::Idle || input.req_relaxed;
                assert_eq!(
                    req.check_send(),
                    if allowed {
                        Ok(())
                    } else {
                        Err(StateError::ReplyPending)
                    }
                );
                if !allowed {
                    continue;
                }
                m.req_last_id = m.req_last_id.wrapping_add(1);
                m.req = Some(ReqModel::Awaiting {
                    peer: p,
                    id: m.req_last_id,
                });
                let envelope = req.request_sent(p);
                let want: Vec<Bytes> = if input.req_correlate {
                    vec![
                        Bytes::copy_from_slice(&m.req_last_id.to_ne_bytes()),
                        Bytes::new(),
                    ]
                } else {
                    vec![Bytes::new()]
                };
                assert_eq!(envelope.frames(), &want[..], "request envelope");
            }
            PatternOp::ReqReply { peer, frames } => {
                let Some(p) = m.peer(*peer) else { continue };
                let frames = m.envelope_frames(frames);
                let message: Message = frames.iter().cloned().collect();
                let want = match m.req.expect("req model") {
                    ReqModel::Awaiting { peer: asked, id } if asked == p => {
                        let at = usize::from(input.req_correlate);
                        let tag_ok = !input.req_correlate
                            || frames.first().is_some_and(|t| t[..] == id.to_ne_bytes());
                        (tag_ok && frames.len() >= at + 2 && frames[at].is_empty())
                            .then(|| frames[at + 1..].to_vec())
                    }
                    _ => None,
                };
                if want.is_some() {
                    m.req = Some(ReqModel::ReplyQueued);
                }
                let got = req.accept_reply(p, message);
                assert_eq!(
                    got.as_ref().map(|g| g.frames().to_vec()),
                    want,
                    "accept_reply"
                );
            }
            PatternOp::ReqTake => {
                let state = m.req.expect("req model");
                assert_eq!(
                    req.check_recv(),
                    if state == ReqModel::Idle {
                        Err(StateError::NoRequest)
                    } else {
                        Ok(())
                    }
                );
                if state == ReqModel::ReplyQueued {
                    req.reply_taken();
                    m.req = Some(ReqModel::Idle);
                }
            }
            PatternOp::RepRecv { peer, frames } => {
                let Some(p) = m.peer(*peer) else { continue };
                let allowed = m.rep.is_none();
                assert_eq!(
                    rep.check_recv(),
                    if allowed {
                        Ok(())
                    } else {
                        Err(StateError::ReplyOwed)
                    }
                );
                if !allowed {
                    continue;
                }
                let frames = m.envelope_frames(frames);
                let message: Message = frames.iter().cloned().collect();
                let want = frames
                    .iter()
                    .position(Bytes::is_empty)
                    .filter(|d| d + 1 < frames.len())
                    .map(|d| {
                        m.rep = Some((Some(p), frames[..=d].to_vec()));
                        frames[d + 1..].to_vec()
                    });
                let got = rep.request_received(p, message);
                assert_eq!(
                    got.as_ref().map(|g| g.frames().to_vec()),
                    want,
                    "request body"
                );
            }
            PatternOp::RepSend => {
                match (&m.rep, rep.check_send()) {
                    (None, Err(e)) => assert_eq!(e, StateError::NoRequestToAnswer),
                    (Some((peer, envelope)), Ok((to, got))) => {
                        assert_eq!((to, got), (*peer, &envelope[..]), "reply route");
                    }
                    (want, got) => panic!("check_send gave {got:?}, model says {want:?}"),
                }
                if m.rep.take().is_some() {
                    rep.reply_sent();
                }
            }
        }

        // Whole-state checks after every operation.
        assert_eq!(slab.len(), m.live.len());
        assert_eq!(slab.is_empty(), m.live.is_empty());
        for p in &m.live {
            assert_eq!(slab.get(*p), m.slab_values.get(p), "slab value of {p:?}");
        }
        let prefixes: Vec<Vec<u8>> = m.trie.keys().cloned().collect();
        assert_eq!(trie.prefixes(), prefixes, "trie prefixes");
        assert_eq!(trie.prefix_count(), prefixes.len());
        assert_eq!(trie.is_empty(), prefixes.is_empty());
        let local_keys: Vec<&[u8]> = m.local.keys().map(Vec::as_slice).collect();
        assert_eq!(
            local.iter().collect::<Vec<_>>(),
            local_keys,
            "local subscriptions"
        );
        assert_eq!(local.len(), m.local.len());
        assert_eq!(local.is_empty(), m.local.is_empty());
        assert_eq!(routing.len(), m.by_id.len());
        assert_eq!(routing.is_empty(), m.by_id.is_empty());
        for (p, id) in &m.by_peer {
            assert_eq!(routing.id_of(*p), Some(id));
            assert_eq!(routing.lookup(id), Some(*p));
        }
        assert_eq!(lb.peers(), &m.lb[..], "rotation");
        assert_eq!(lb.len(), m.lb.len());
        let queued: usize = m.fq.values().map(VecDeque::len).sum();
        assert_eq!(fq.total_queued(), queued);
        assert_eq!(fq.is_empty(), queued == 0);
        assert_eq!(fq.peer_count(), m.fq.len());
        for (p, queue) in &m.fq {
            assert_eq!(fq.queued(*p), queue.len());
            assert!(fq.contains(*p));
        }
        assert_eq!(
            req.awaited_peer(),
            match m.req.expect("req model") {
                ReqModel::Awaiting { peer, .. } => Some(peer),
                _ => None,
            }
        );
    }
}

/// `LoadBalancer::remove_peer` as documented: the peer after a removed next-in-line is next.
fn model_lb_remove(m: &mut PatternModel, p: PeerId) {
    let Some(pos) = m.lb.iter().position(|q| *q == p) else {
        return;
    };
    m.lb.remove(pos);
    if pos < m.lb_cursor {
        m.lb_cursor -= 1;
    }
    if m.lb_cursor >= m.lb.len() {
        m.lb_cursor = 0;
    }
}

/// `RoutingTable::attach` as documented: announced id if free; generated if none or empty;
/// a taken id fails unless handover, which detaches its owner.
fn model_attach(
    m: &mut PatternModel,
    p: PeerId,
    announced: Option<Bytes>,
    handover: bool,
) -> Result<(Bytes, Option<PeerId>), Bytes> {
    let announced = announced.filter(|id| !id.is_empty());
    let mut displaced = None;
    if let Some(id) = &announced
        && let Some(&owner) = m.by_id.get(id)
    {
        if owner == p {
            return Ok((id.clone(), None));
        }
        if !handover {
            return Err(id.clone());
        }
        m.by_id.remove(id);
        m.by_peer.remove(&owner);
        displaced = Some(owner);
    }
    if let Some(old) = m.by_peer.remove(&p) {
        m.by_id.remove(&old);
    }
    let id = match announced {
        Some(id) => id,
        None => m.generate_id(),
    };
    m.by_id.insert(id.clone(), p);
    m.by_peer.insert(p, id.clone());
    Ok((id, displaced))
}
