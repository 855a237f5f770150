//! `k8s-double --listen 127.0.0.1:0`: runs the Kubernetes API server double until stdin closes
//! (or forever when stdin is a terminal that never closes), printing `listening on http://...`.
#![forbid(unsafe_code)]

use std::net::SocketAddr;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                let value = args
                    .next()
                    .ok_or("--listen needs an address such as 127.0.0.1:0")?;
                listen = value.parse()?;
            }
            "--help" | "-h" => {
                println!("usage: k8s-double [--listen 127.0.0.1:0]\nServes until stdin is closed.");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(k8s_double::serve_until_stdin_closes(
        k8s_double::ApiServer::new().listen(listen),
    ))?;
    Ok(())
}
