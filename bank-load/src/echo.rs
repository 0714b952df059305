//! The floor: a bare WebSocket echo server on the bank's stack (axum + tokio, same frame
//! limits and read buffer), no crypto and no storage. Whatever the bank does beyond this is the bank's cost.

use std::future::Future;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::Router;

/// The echo router: `GET /ws` upgrades and sends every text or binary message straight back.
pub fn app() -> Router {
    Router::new().route("/ws", get(upgrade))
}

async fn upgrade(ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(protocol::MAX_RECORD_LEN)
        .max_frame_size(protocol::MAX_RECORD_LEN)
        .read_buffer_size(bank_server::READ_BUFFER_SIZE)
        .on_upgrade(echo)
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let reply = match message {
            Message::Text(_) | Message::Binary(_) => message,
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

/// Serves the echo app on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    // TCP_NODELAY, as the bank sets it: the floor runs on the same socket settings.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app())
        .with_graceful_shutdown(shutdown)
        .await
}
