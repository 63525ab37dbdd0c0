//! The TLS connection to the collector (RFC 5425): connect with a deadline, write and flush a
//! batch, and notice when the collector has gone.
//!
//! The collector never sends application data, so a read that returns tells us the connection
//! ended: cleanly (TLS `close_notify`) or not (reset, EOF without `close_notify`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how to connect.
pub(crate) struct Target {
    pub host: String,
    pub port: u16,
    pub name: ServerName<'static>,
    pub tls: Arc<ClientConfig>,
}

pub(crate) struct Conn {
    tls: TlsStream<TcpStream>,
}

/// How a connection ended.
pub(crate) enum Ended {
    /// The collector closed it with `close_notify`, after reading what it was sent.
    Clean,
    /// Reset, cut, or timed out: what was written lately may be lost.
    Broken(io::Error),
}

impl Target {
    pub(crate) async fn connect(&self) -> io::Result<Conn> {
        let addr = (self.host.as_str(), self.port);
        let tcp = timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| timed_out("connect"))??;
        tcp.set_nodelay(true)?;
        let connector = TlsConnector::from(self.tls.clone());
        let tls = timeout(CONNECT_TIMEOUT, connector.connect(self.name.clone(), tcp))
            .await
            .map_err(|_| timed_out("TLS handshake"))??;
        Ok(Conn { tls })
    }
}

impl Conn {
    /// Writes `bytes` and flushes them to the socket.
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let write = async {
            self.tls.write_all(bytes).await?;
            self.tls.flush().await
        };
        timeout(SEND_TIMEOUT, write)
            .await
            .map_err(|_| timed_out("write"))?
    }

    /// Waits until the collector ends the connection. Cancel-safe: dropping it loses nothing.
    pub(crate) async fn ended(&mut self) -> Ended {
        let mut buf = [0u8; 512];
        loop {
            match self.tls.read(&mut buf).await {
                Ok(0) => return Ended::Clean,
                // Unexpected data from the collector: ignored.
                Ok(_) => {}
                Err(e) => return Ended::Broken(e),
            }
        }
    }

    /// Whether the connection has ended already; never waits.
    pub(crate) async fn check(&mut self) -> Option<Ended> {
        timeout(Duration::ZERO, self.ended()).await.ok()
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}
