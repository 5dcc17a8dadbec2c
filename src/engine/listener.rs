//! The accept loop of one bound endpoint.
//!
//! The listening socket is not this task's: it sits in the socket state's endpoint entry,
//! and each poll borrows it under the lock. `unbind` and `close` remove the entry, which
//! closes the socket before they return (the port is free and the ipc path gone at once), and
//! abort this task; a poll that finds the entry gone ends it too.

use super::{EndpointId, Pattern, Shared, connection};
use crate::endpoint::Endpoint;
use crate::monitor::MonitorEventKind;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tracing::Instrument;

/// Pause after a failed accept (usually EMFILE) instead of spinning on the error.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(10);

/// Accepts connections on endpoint `id` (bound as `endpoint`) and spawns a connection task
/// for each, until the endpoint is removed.
pub(super) async fn run<P: Pattern>(shared: Arc<Shared<P>>, id: EndpointId, endpoint: Endpoint) {
    loop {
        let accepted = poll_fn(|cx| {
            let state = shared.lock();
            match state.core.listener(id) {
                None => Poll::Ready(None),
                Some(listener) => listener.poll_accept(cx).map(Some),
            }
        })
        .await;
        let result = match accepted {
            None => return,
            Some(result) => result.and_then(|stream| {
                stream.configure(&shared.options())?;
                Ok(stream)
            }),
        };
        match result {
            Ok(stream) => {
                let span = tracing::info_span!("peer", address = %stream.peer_label());
                span.in_scope(|| tracing::debug!("accepted"));
                let peer = stream.peer_address();
                let kind = MonitorEventKind::Accepted;
                shared.monitors.emit(kind, &endpoint, peer.as_deref());
                let link = connection::Link {
                    id,
                    endpoint: endpoint.clone(),
                    peer,
                    reconnects: 0,
                    slot: None,
                };
                tokio::spawn(connection::run(shared.clone(), stream, link).instrument(span));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                let kind = MonitorEventKind::AcceptFailed {
                    error: e.to_string(),
                };
                shared.monitors.emit(kind, &endpoint, None);
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
            }
        }
    }
}
