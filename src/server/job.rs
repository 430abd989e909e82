//! A queued engine [`Job`] seen from async code. The engine reports on a `std::sync::mpsc`
//! channel; one blocking task per job forwards its events into a tokio channel. Dropping the
//! [`AsyncJob`] (the response future or the SSE stream, which hyper drops when the client goes
//! away) sets the job's cancel flag at once, so the engine stops within one token or skips the
//! job if it is still queued.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::mpsc;

use super::ServerState;
use super::error::ApiError;
use crate::engine::{Event, Request};

/// Events buffered between the forwarding task and the handler.
const CHANNEL_EVENTS: usize = 64;

/// A submitted job whose events arrive asynchronously; cancels its generation when dropped.
pub struct AsyncJob {
    events: mpsc::Receiver<Event>,
    cancel: Arc<AtomicBool>,
}

impl AsyncJob {
    /// Queues `request` on the engine (FIFO: requests run in arrival order). 503 when
    /// `max_queue` jobs are already queued or running.
    pub fn submit(state: &ServerState, request: Request) -> Result<AsyncJob, ApiError> {
        let slot = Slot::take(&state.in_flight, state.options.max_queue)?;
        let job = state.engine.submit(request);
        let cancel = job.cancel_flag();
        let (tx, events) = mpsc::channel(CHANNEL_EVENTS);
        tokio::task::spawn_blocking(move || {
            // The slot is free once the engine is done with the job: at its last event (before
            // the handler sees it, so a client that reads the answer and then `/metrics` finds
            // the request finished), or when the engine drops its sender without one.
            let mut slot = Some(slot);
            // Ends after the last event or when the handler is gone (`blocking_send` fails);
            // dropping `job` cancels the generation.
            while let Ok(event) = job.events.recv() {
                let last = matches!(event, Event::Done { .. } | Event::Error(_));
                if last {
                    slot.take();
                }
                if tx.blocking_send(event).is_err() {
                    job.cancel();
                    break;
                }
                if last {
                    break;
                }
            }
        });
        Ok(AsyncJob { events, cancel })
    }

    /// Asks the engine to stop the generation; the job still ends with `Done` (stop reason
    /// `Cancelled`) and its statistics.
    pub fn stop(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// The next event; `None` once the job is over (after `Done` or `Error`, or if the engine
    /// dropped the job without either).
    pub async fn next(&mut self) -> Option<Event> {
        self.events.recv().await
    }
}

impl Drop for AsyncJob {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::SeqCst);
    }
}

/// One of the `max_queue` places for jobs the engine holds; freed when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(in_flight: &Arc<AtomicUsize>, max: usize) -> Result<Slot, ApiError> {
        in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(ApiError::busy)?;
        Ok(Slot(in_flight.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_returned() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let a = Slot::take(&in_flight, 2).unwrap();
        let b = Slot::take(&in_flight, 2).unwrap();
        let full = Slot::take(&in_flight, 2).err().unwrap();
        assert_eq!(full.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        drop(a);
        let _c = Slot::take(&in_flight, 2).unwrap();
        drop(b);
        assert_eq!(in_flight.load(Ordering::SeqCst), 1);
    }
}
