//! HTTP and HTTPS listeners: one accept loop each, hyper's automatic HTTP/1.1 + HTTP/2
//! connection builder, TLS with ALPN on the HTTPS side, and the scheme recorded on each
//! request so that absolute URLs point back where the client came from.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use edge_api::Scheme;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

pub async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener> {
    let l = TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen for {what} on {addr} (is another program using the port, or is a port under 1024 configured without CAP_NET_BIND_SERVICE?)")
    })?;
    tracing::info!("listening for {what} on {}", l.local_addr().unwrap_or(addr));
    Ok(l)
}

pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    scheme: Scheme,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(scheme);
                req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            // Slow or idle clients must not pin connections forever.
            builder.http1().timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(30));
            let result = match tls {
                Some(acc) => match tokio::time::timeout(Duration::from_secs(10), acc.accept(stream)).await {
                    Ok(Ok(s)) => builder.serve_connection(TokioIo::new(s), svc).await,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, "TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
                None => builder.serve_connection(TokioIo::new(stream), svc).await,
            };
            if let Err(e) = result {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
}
