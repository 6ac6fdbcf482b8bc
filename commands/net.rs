//! `lifeline serve`'s listener: one port for the lifecycle handler, the JSON API and the
//! KurrentDB gRPC services. HTTP/1.1 and HTTP/2 are told apart per connection (gRPC in clear
//! is HTTP/2 with prior knowledge, h2c); with a certificate, every connection is TLS and ALPN
//! offers h2 and http/1.1.

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::rustls;

/// Connections open at once; the next waits to be accepted.
pub const CONNECTIONS_MAX: usize = 1024;
/// A TLS handshake not done by then is dropped.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// On shutdown, how long open calls (subscriptions never end) are given to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The address a request came from.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub std::net::IpAddr);

/// Requests per second each client address may make (a token bucket holding one second's
/// worth): beyond it, HTTP answers 429 and gRPC UNAVAILABLE "Server Is Too Busy", and the
/// request is not looked at.
pub struct RateLimit {
    per_second: f64,
    buckets:
        std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (f64, std::time::Instant)>>,
}

/// Addresses tracked at once; past it, full buckets (idle clients) are forgotten.
const RATE_ADDRESSES_MAX: usize = 10_000;

impl RateLimit {
    pub fn new(per_second: u32) -> RateLimit {
        RateLimit {
            per_second: f64::from(per_second),
            buckets: Default::default(),
        }
    }

    /// Takes a token for `ip`; `false` when it has none left.
    pub fn take(&self, ip: std::net::IpAddr) -> bool {
        let now = std::time::Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= RATE_ADDRESSES_MAX && !buckets.contains_key(&ip) {
            // Forget the idle: buckets that would be full by now.
            let rate = self.per_second;
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < rate
            });
        }
        let (tokens, at) = buckets.entry(ip).or_insert((self.per_second, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second)
            .min(self.per_second);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The TLS set-up from a PEM certificate chain and its private key.
pub fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("reading the certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!(
            "the certificate file {} holds no certificate",
            cert.display()
        );
    }
    usable_as_server(&certs[0], cert)?;
    let key_path = key;
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| anyhow::anyhow!("reading the private key {}: {e}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("setting up TLS")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "the key {} does not go with the certificate {}",
                key_path.display(),
                cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Refuses a first certificate that no client would accept from a server, whoever issued it:
/// a certificate authority's own (clients refuse it as a server's, after the server has
/// started, with an error that does not name the file), one outside its validity period, or
/// one whose extended key usage leaves out servers.
/// Whether its issuer is trusted is the clients' question: they have the trust anchors.
fn usable_as_server(der: &rustls::pki_types::CertificateDer, path: &Path) -> anyhow::Result<()> {
    // One this parser does not take (an X.509 version 1 certificate, say) is left to the
    // clients: some take those.
    let Ok(cert) = webpki::EndEntityCert::try_from(der) else {
        return Ok(());
    };
    // No trust anchors: the checks of the certificate itself come before the search for its
    // issuer, which then fails (UnknownIssuer), as it is meant to.
    let checked = cert.verify_for_usage(
        &[],
        &[],
        &[],
        rustls::pki_types::UnixTime::now(),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    );
    let why = match checked {
        Err(webpki::Error::CaUsedAsEndEntity) => {
            "is a certificate authority's (basic constraints CA:TRUE); give --tls-cert the \
             server's own certificate, which that authority signed, followed by any \
             intermediate certificates"
                .to_string()
        }
        Err(webpki::Error::CertExpired { not_after, .. }) => {
            format!("expired at {}", when(not_after))
        }
        Err(webpki::Error::CertNotValidYet { not_before, .. }) => {
            format!("is not valid before {}", when(not_before))
        }
        Err(webpki::Error::RequiredEkuNotFoundContext(_)) => {
            "is not for TLS servers (its extended key usage lacks serverAuth)".to_string()
        }
        _ => return Ok(()),
    };
    anyhow::bail!("the certificate {} {why}", path.display())
}

fn when(t: rustls::pki_types::UnixTime) -> String {
    crate::time_fmt::format_unix_seconds(i64::try_from(t.as_secs()).unwrap_or(i64::MAX))
}

/// Serves `app` on `listener` until `shutdown` completes, then gives open calls
/// [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_MAX));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of descriptors and the like: wait a moment rather than spin.
                Err(_) => { tokio::time::sleep(Duration::from_millis(50)).await; continue }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let stream = QuickAck(stream);
        // Each request knows the address it came from (rate limits are per address).
        let service = TowerToHyperService::new(tower::util::MapRequest::new(
            app.clone(),
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(Peer(peer.ip()));
                req
            },
        ));
        let (builder, watcher, acceptor) = (builder.clone(), graceful.watcher(), acceptor.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match acceptor {
                None => {
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn).await;
                }
                Some(acceptor) => {
                    let Ok(Ok(tls)) =
                        tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                    let _ = watcher.watch(conn).await;
                }
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}

/// A connection that acknowledges what it reads at once. Clients that leave Nagle's algorithm
/// on (the KurrentDB Rust client does) send a call's headers and its message in two writes,
/// the second held back until the first is acknowledged; with delayed acknowledgements that
/// costs up to 40 ms a call. Re-arming `TCP_QUICKACK` after each read (Linux resets it) removes
/// the wait; elsewhere this is a plain connection.
struct QuickAck(tokio::net::TcpStream);

impl QuickAck {
    #[cfg(target_os = "linux")]
    fn rearm(&self) {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: a valid socket descriptor, and a pointer to a c_int of the size given.
        unsafe {
            libc::setsockopt(
                self.0.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn rearm(&self) {}
}

impl tokio::io::AsyncRead for QuickAck {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.0).poll_read(cx, buf);
        if matches!(r, std::task::Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.rearm();
        }
        r
    }
}

impl tokio::io::AsyncWrite for QuickAck {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A key and a certificate for `localhost` from `params`, as PEM files in `dir`.
    fn files(dir: &Path, mut params: rcgen::CertificateParams) -> (PathBuf, PathBuf) {
        params.subject_alt_names = vec![rcgen::SanType::DnsName("localhost".try_into().unwrap())];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    #[test]
    fn a_server_certificate_is_taken_and_one_clients_would_refuse_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = files(dir.path(), rcgen::CertificateParams::default());
        assert!(tls_config(&c, &k).is_ok());

        let mut ca = rcgen::CertificateParams::default();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let (c, k) = files(dir.path(), ca);
        let why = tls_config(&c, &k).unwrap_err().to_string();
        assert!(why.contains("is a certificate authority's"), "{why}");
        assert!(why.contains(&c.display().to_string()), "{why}");

        let mut old = rcgen::CertificateParams::default();
        old.not_before = rcgen::date_time_ymd(2019, 1, 1);
        old.not_after = rcgen::date_time_ymd(2020, 1, 1);
        let (c, k) = files(dir.path(), old);
        let why = tls_config(&c, &k).unwrap_err().to_string();
        assert!(why.ends_with("expired at 2020-01-01T00:00:00Z"), "{why}");

        let mut early = rcgen::CertificateParams::default();
        early.not_before = rcgen::date_time_ymd(4000, 1, 1);
        early.not_after = rcgen::date_time_ymd(4001, 1, 1);
        let (c, k) = files(dir.path(), early);
        let why = tls_config(&c, &k).unwrap_err().to_string();
        assert!(
            why.ends_with("is not valid before 4000-01-01T00:00:00Z"),
            "{why}"
        );

        let mut client = rcgen::CertificateParams::default();
        client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let (c, k) = files(dir.path(), client);
        let why = tls_config(&c, &k).unwrap_err().to_string();
        assert!(why.contains("lacks serverAuth"), "{why}");

        let mut server = rcgen::CertificateParams::default();
        server.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let (c, k) = files(dir.path(), server);
        assert!(tls_config(&c, &k).is_ok());
    }
}
