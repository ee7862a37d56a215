//! Sends one checked request: connects to exactly the addresses the gate approved, speaks TLS
//! (webpki roots) for https, HTTP/1.1 via hyper, and caps both bodies. Never follows redirects.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use super::{EgressCaps, RecordHandle};
use tollgate_contract::pattern::{Scheme, Target};

pub(super) struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub between_bytes: Option<Duration>,
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
            let config =
                rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .expect("ring supports the default protocol versions")
                    .with_root_certificates(roots)
                    .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

async fn connect(addrs: &[SocketAddr], within: Duration) -> Result<TcpStream, HttpError> {
    let attempt = async {
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.map(HttpError::Connect).unwrap_or(HttpError::ConnectionRefused))
    };
    tokio::time::timeout(within, attempt).await.map_err(|_| HttpError::ConnectionTimeout)?
}

pub(super) async fn send(
    request: http::Request<WasiBody>,
    addrs: &[SocketAddr],
    target: &Target,
    timeouts: Timeouts,
    caps: EgressCaps,
    record: &RecordHandle,
) -> Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>), HttpError> {
    if let Some(len) = request.body().size_hint().exact()
        && len as usize > caps.max_request_bytes
    {
        return Err(HttpError::HttpRequestBodySize(Some(len)));
    }
    let tcp = connect(addrs, timeouts.connect).await?;
    if let Ok(peer) = tcp.peer_addr() {
        record.update(|r| r.address = Some(peer.to_string()));
    }
    let stream: Box<dyn Stream> = match target.scheme {
        Scheme::Http => Box::new(tcp),
        Scheme::Https => {
            let name = match target.ip {
                Some(ip) => rustls::pki_types::ServerName::from(ip),
                None => rustls::pki_types::ServerName::try_from(target.host.clone())
                    .map_err(|_| HttpError::HttpRequestUriInvalid)?,
            };
            let tls = tokio::time::timeout(
                timeouts.connect,
                tokio_rustls::TlsConnector::from(tls_config()).connect(name, tcp),
            )
            .await
            .map_err(|_| HttpError::ConnectionTimeout)?
            .map_err(|_| HttpError::TlsProtocolError)?;
            Box::new(tls)
        }
    };
    let (mut sender, conn) =
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)).await.map_err(HttpError::from)?;

    let record_up = record.clone();
    // hyper reports a failing request body as a generic protocol error; this flag lets us
    // tell the guest the real reason.
    let request_too_large = Arc::new(AtomicBool::new(false));
    let flag = request_too_large.clone();
    let request = request.map(|body| {
        LimitedBody {
            inner: body,
            seen: 0,
            limit: caps.max_request_bytes,
            on_progress: Box::new(move |n| record_up.update(|r| r.request_bytes = n)),
            too_large: |n| HttpError::HttpRequestBodySize(Some(n as u64)),
            exceeded: Some(flag),
        }
        .boxed_unsync()
    });

    // Drive the connection while waiting for the response head, like wasmtime-wasi-http's
    // default sender; afterwards the connection future is handed back to be driven alongside
    // the body.
    let mut conn = Box::pin(conn);
    let response = {
        let mut send = Box::pin(tokio::time::timeout(timeouts.first_byte, sender.send_request(request)));
        let mut conn_done = false;
        std::future::poll_fn(|cx| {
            if let Poll::Ready(res) = send.as_mut().poll(cx) {
                return Poll::Ready(res);
            }
            if !conn_done && let Poll::Ready(res) = conn.as_mut().poll(cx) {
                conn_done = true;
                if let Err(e) = res {
                    return Poll::Ready(Ok(Err(e)));
                }
                return send.as_mut().poll(cx);
            }
            Poll::Pending
        })
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)?
        .map_err(|e| {
            if request_too_large.load(Ordering::Relaxed) {
                HttpError::HttpRequestBodySize(None)
            } else {
                HttpError::from(e)
            }
        })?
    };

    if let Some(len) = response.body().size_hint().exact()
        && len as usize > caps.max_response_bytes
    {
        return Err(HttpError::HttpResponseBodySize(Some(len)));
    }
    let record_down = record.clone();
    let between = timeouts.between_bytes;
    let response = response.map(|incoming| {
        let body = incoming.map_err(HttpError::from);
        let limited = LimitedBody {
            inner: body,
            seen: 0,
            limit: caps.max_response_bytes,
            on_progress: Box::new(move |n| record_down.update(|r| r.response_bytes = n)),
            too_large: |n| HttpError::HttpResponseBodySize(Some(n as u64)),
            exceeded: None,
        };
        match between {
            Some(d) => BetweenBytes { inner: limited, timeout: d, timer: None }.boxed_unsync(),
            None => limited.boxed_unsync(),
        }
    });
    let io = async move { conn.await.map_err(HttpError::from) };
    Ok((response, Box::new(io)))
}

/// Counts body bytes, fails past `limit`, and reports the running total after every frame
/// (hyper may stop polling a request body once it has its declared length).
struct LimitedBody<B> {
    inner: B,
    seen: usize,
    limit: usize,
    on_progress: Box<dyn Fn(usize) + Send>,
    too_large: fn(usize) -> HttpError,
    exceeded: Option<Arc<AtomicBool>>,
}

impl<B: Body<Data = Bytes, Error = HttpError> + Unpin> Body for LimitedBody<B> {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.seen += data.len();
                    (self.on_progress)(self.seen);
                    if self.seen > self.limit {
                        if let Some(flag) = &self.exceeded {
                            flag.store(true, Ordering::Relaxed);
                        }
                        return Poll::Ready(Some(Err((self.too_large)(self.seen))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                (self.on_progress)(self.seen);
                Poll::Ready(None)
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The guest's `between-bytes-timeout` request option.
struct BetweenBytes<B> {
    inner: B,
    timeout: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B: Body<Data = Bytes, Error = HttpError> + Unpin> Body for BetweenBytes<B> {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => {
                this.timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}
