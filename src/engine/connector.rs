//! The connect-and-reconnect loop of one connected endpoint.
//!
//! The connection itself runs in a task of its own, so that `disconnect` (which aborts this
//! loop) leaves it to write what was queued for the peer within the linger period, as libzmq
//! does, instead of cutting it off. An endpoint whose persistent slot (`immediate` off) still
//! holds messages when it is removed is not aborted: the loop goes on until a connection has
//! written them or the linger period is over, as libzmq's session keeps reconnecting while
//! its pipe drains.

use super::{EndpointId, Pattern, Shared, State, connection, random_u64, transport};
use crate::endpoint::Endpoint;
use crate::monitor::MonitorEventKind;
use crate::pattern::PeerId;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tracing::Instrument;

/// Connects to `endpoint` and reconnects with backoff whenever the connection ends, until the
/// endpoint is removed (the task is then aborted, unless its slot still holds messages: see
/// [`super::Core::keeps_connecting`]) or the peer sends ERROR.
///
/// `slot` is the endpoint's persistent peer slot (`immediate` off), which each connection
/// adopts.
pub(super) async fn run<P: Pattern>(
    shared: Arc<Shared<P>>,
    endpoint: Endpoint,
    id: EndpointId,
    slot: Option<PeerId>,
) {
    connect_until_done(&shared, &endpoint, id, slot).await;
    let mut state = shared.lock();
    let State { core, pattern } = &mut *state;
    core.connector_ended(pattern, id, slot);
}

/// The loop of [`run`], returning when this connector has nothing more to do.
async fn connect_until_done<P: Pattern>(
    shared: &Arc<Shared<P>>,
    endpoint: &Endpoint,
    id: EndpointId,
    slot: Option<PeerId>,
) {
    let emit = |kind, peer: Option<&str>| shared.monitors.emit(kind, endpoint, peer);
    // Read afresh at each attempt, so options changed on the live socket apply to the next
    // attempt (libzmq applies them to its next connection).
    let mut backoff = shared.options().reconnect_ivl;
    let mut connections = 0;
    loop {
        if matches!(endpoint, Endpoint::Tcp { .. }) {
            // As libzmq, whose non-blocking TCP connect returns EINPROGRESS every time.
            emit(MonitorEventKind::ConnectDelayed, None);
        }
        let options = shared.options().clone();
        let attempt = transport::connect(endpoint, &options);
        let Some(attempt) = within_linger(shared, slot, attempt).await else {
            return;
        };
        match attempt {
            Ok(stream) => {
                let span = tracing::info_span!("peer", address = %stream.peer_label());
                span.in_scope(|| tracing::debug!("connected"));
                let peer = stream.peer_address();
                emit(MonitorEventKind::Connected, peer.as_deref());
                let link = connection::Link {
                    id,
                    endpoint: endpoint.clone(),
                    peer,
                    reconnects: connections,
                    slot,
                };
                connections += 1;
                let connection =
                    tokio::spawn(connection::run(shared.clone(), stream, link).instrument(span));
                // A panicking connection task counts as one that ended without a handshake.
                let ended = connection.await.unwrap_or_default();
                if ended.peer_error {
                    tracing::warn!("peer sent ERROR; not reconnecting (RFC 23)");
                    return;
                }
                if ended.handshake_done {
                    backoff = shared.options().reconnect_ivl;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "connect failed");
                // As libzmq: the failed attempt's socket is closed, then a retry scheduled.
                emit(MonitorEventKind::Closed, None);
            }
        }
        if !shared.lock().core.keeps_connecting(id, slot) {
            return;
        }
        let Some(ivl) = backoff else { return };
        let jitter = Duration::from_millis(random_u64() % (ivl.as_millis() as u64).max(1));
        let interval = ivl + jitter;
        emit(MonitorEventKind::ConnectRetried { interval }, None);
        if within_linger(shared, slot, tokio::time::sleep(interval))
            .await
            .is_none()
        {
            return;
        }
        let max = shared.options().reconnect_ivl_max;
        if let Some(max) = max
            && max > ivl
        {
            backoff = Some((ivl * 2).min(max));
        }
    }
}

/// Runs `step` (a connect attempt or the wait before the next one) to completion, or `None`
/// once the connector has nothing left to do: its endpoint was removed and its slot's linger
/// period passed. The deadline is read again whenever the slot's waker fires (removing the
/// endpoint and closing the socket wake it), since a close may shorten it.
async fn within_linger<P: Pattern, F: Future>(
    shared: &Shared<P>,
    slot: Option<PeerId>,
    step: F,
) -> Option<F::Output> {
    let Some(slot) = slot else {
        // Without a slot the task is aborted when the endpoint goes.
        return Some(step.await);
    };
    let mut step = pin!(step);
    let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
    poll_fn(|cx| {
        if let Poll::Ready(output) = step.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        let deadline = {
            let mut state = shared.lock();
            let core = &mut state.core;
            let Some(peer) = core.peers.get_mut(slot).filter(|p| p.persistent) else {
                return Poll::Ready(None);
            };
            peer.task = Some(cx.waker().clone());
            if !peer.drains() {
                // The endpoint is still there.
                return Poll::Pending;
            }
            match core.drain_deadline(slot) {
                None => return Poll::Ready(None),
                Some(None) => return Poll::Pending,
                Some(Some(deadline)) => deadline,
            }
        };
        super::poll_sleep_until(&mut timer, deadline, cx).map(|()| None)
    })
    .await
}
