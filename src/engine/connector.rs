//! The connect-and-reconnect loop of one connected endpoint.
//!
//! The connection itself runs in a task of its own, so that `disconnect` (which aborts this
//! loop) leaves it to write what was queued for the peer within the linger period, as libzmq
//! does, instead of cutting it off.

use super::{EndpointId, Pattern, Shared, connection, random_u64, transport};
use crate::endpoint::Endpoint;
use crate::monitor::MonitorEventKind;
use crate::pattern::PeerId;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// Connects to `endpoint` and reconnects with backoff whenever the connection ends, until the
/// endpoint is removed (the task is then aborted) or the peer sends ERROR.
///
/// `slot` is the endpoint's persistent peer slot (`immediate` off), which each connection
/// adopts.
pub(super) async fn run<P: Pattern>(
    shared: Arc<Shared<P>>,
    endpoint: Endpoint,
    id: EndpointId,
    slot: Option<PeerId>,
) {
    let emit = |kind, peer: Option<&str>| shared.monitors.emit(kind, &endpoint, peer);
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
        match transport::connect(&endpoint, &options).await {
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
        if !shared.lock().core.has_endpoint(id) {
            return;
        }
        let Some(ivl) = backoff else { return };
        let jitter = Duration::from_millis(random_u64() % (ivl.as_millis() as u64).max(1));
        let interval = ivl + jitter;
        emit(MonitorEventKind::ConnectRetried { interval }, None);
        tokio::time::sleep(interval).await;
        let max = shared.options().reconnect_ivl_max;
        if let Some(max) = max
            && max > ivl
        {
            backoff = Some((ivl * 2).min(max));
        }
    }
}
