//! The web app alone, for development: a fresh SQLite directory (or the one in
//! `SWITCHBOARD_DATABASE_URL`), an ephemeral port, and the first-run setup link on stdout.
//!
//! ```text
//! cargo run -p web --example dev_server [-- 127.0.0.1:8080]
//! LISTENING http://127.0.0.1:43125
//! SETUP_LINK http://127.0.0.1:43125/setup/...
//! ```
//! Stops on Ctrl-C or when stdin closes.

use std::io::{Read as _, Write as _};

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let tmp = tempfile::tempdir().unwrap();
    let url = std::env::var("SWITCHBOARD_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", tmp.path().join("dev.db").display()));
    let directory = store::connect(&url).await.expect("open the directory");
    directory.migrate().await.expect("migrate");
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    println!("LISTENING {base}");
    if let Some(link) = web::ensure_setup_link(&*directory, &base).await.unwrap() {
        println!("SETUP_LINK {link}");
    }
    std::io::stdout().flush().unwrap();
    let config = web::WebConfig {
        sip_registrar: Some("127.0.0.1:5060".into()),
        ..web::WebConfig::default()
    };
    let state = web::AppState::with_config(directory, config);
    // stdin closing (the test runner going away) stops the server, as Ctrl-C does.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while std::io::stdin()
            .read(&mut buf)
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
        let _ = tx.send(());
    });
    let shutdown = async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = rx => {}
        }
    };
    web::serve(listener, state, shutdown).await.unwrap();
}
