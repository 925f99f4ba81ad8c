//! Guests' standard output and error as Spin 4.0.2 has them: every write an
//! instance makes goes at once, whole, to the one output that all instances
//! of the host share (Spin's own stderr and `.spin/logs`), in the order the
//! writes arrive. Two requests served at the same time whose log lines are
//! written in pieces interleave there mid-line, as they do on Spin; a line
//! written with one write cannot. Each instance's own output is also kept
//! whole, for [`crate::Host::logs`].

use bytes::Bytes;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// The output all instances share, as the bytes arrived.
#[derive(Default)]
pub struct Terminal(Mutex<Vec<u8>>);

impl Terminal {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    fn write(&self, bytes: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
    }
}

/// One instance's stdout or stderr: its own copy, and the shared [`Terminal`].
#[derive(Clone)]
pub struct SharedOut {
    own: MemoryOutputPipe,
    terminal: Arc<Terminal>,
}

impl SharedOut {
    pub fn new(own: MemoryOutputPipe, terminal: Arc<Terminal>) -> SharedOut {
        SharedOut { own, terminal }
    }
}

impl IsTerminal for SharedOut {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for SharedOut {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for SharedOut {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.terminal.write(&bytes);
        self.own.write(bytes)
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        self.own.flush()
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        self.own.check_write()
    }
}

#[async_trait::async_trait]
impl Pollable for SharedOut {
    async fn ready(&mut self) {}
}

impl AsyncWrite for SharedOut {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.own).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            self.terminal.write(&buf[..n]);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.own).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.own).poll_shutdown(cx)
    }
}
