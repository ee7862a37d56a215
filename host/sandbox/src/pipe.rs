//! The capped in-memory pipe behind a call's stdout and stderr. It behaves like wasmtime-wasi's
//! `MemoryOutputPipe` (same cap, same errors), with one addition: the host can [`take`] what
//! was written, which empties the pipe. A guest keeps its stdout stream for the life of its
//! instance (wasi-libc opens it once), so a reused instance keeps writing into the same
//! buffer; taking it at the end of each call is what keeps one call's output, and its share of
//! the cap, out of the next call's report.
//!
//! [`take`]: CallPipe::take

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Cheap to clone: every clone (the host's and each stream the guest opens) shares one buffer.
#[derive(Debug, Clone)]
pub(crate) struct CallPipe {
    capacity: usize,
    buffer: Arc<Mutex<BytesMut>>,
}

impl CallPipe {
    pub fn new(capacity: usize) -> CallPipe {
        CallPipe { capacity, buffer: Arc::new(Mutex::new(BytesMut::new())) }
    }

    fn buffer(&self) -> MutexGuard<'_, BytesMut> {
        // A writer cannot panic while holding the lock, but a poisoned pipe must not take the
        // host down either.
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What has been written so far, left in place.
    pub fn contents(&self) -> Bytes {
        self.buffer().clone().freeze()
    }

    /// What has been written so far; the pipe is empty (with its full capacity) afterwards.
    pub fn take(&self) -> Bytes {
        std::mem::take(&mut *self.buffer()).freeze()
    }
}

impl OutputStream for CallPipe {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        let mut buf = self.buffer();
        if bytes.len() > self.capacity - buf.len() {
            // As `MemoryOutputPipe`: a write past the permit `check_write` gave is a trap.
            return Err(StreamError::Trap(wasmtime::format_err!("write beyond the capacity of the stdio pipe")));
        }
        buf.extend_from_slice(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        let used = self.buffer().len();
        if used < self.capacity { Ok(self.capacity - used) } else { Err(StreamError::Closed) }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CallPipe {
    async fn ready(&mut self) {}
}

impl AsyncWrite for CallPipe {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let mut buffer = self.buffer();
        let n = buf.len().min(self.capacity - buffer.len());
        buffer.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CallPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CallPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_empties_and_restores_the_cap() {
        let pipe = CallPipe::new(4);
        let mut guest = pipe.clone();
        guest.write(Bytes::from_static(b"abc")).unwrap();
        assert_eq!(guest.check_write().unwrap(), 1);
        assert!(matches!(guest.write(Bytes::from_static(b"de")), Err(StreamError::Trap(_))));
        guest.write(Bytes::from_static(b"d")).unwrap();
        assert!(matches!(guest.check_write(), Err(StreamError::Closed)));
        assert_eq!(&pipe.contents()[..], b"abcd");
        assert_eq!(&pipe.take()[..], b"abcd");
        // The guest's stream, opened before, writes into the emptied buffer with the full cap.
        assert_eq!(guest.check_write().unwrap(), 4);
        guest.write(Bytes::from_static(b"xy")).unwrap();
        assert_eq!(&pipe.take()[..], b"xy");
        assert!(pipe.take().is_empty());
    }
}
