//! `resolve_many PREFIX N [--ca-file FILE]`: resolves the tags
//! `PREFIX0` .. `PREFIX{N-1}` to digests with ONE berth client (one
//! connection pool, one token cache), sequentially: each `resolve` is a
//! HEAD on the manifest, awaited before the next. Used by
//! `cargo xtask bench` for the many-small-operations row; registries on
//! 127.0.0.1 are reached over plain HTTP unless `--ca-file` is given.

use std::process::ExitCode;

use berth::Client;
use berth::reference::Reference;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (prefix, n, ca) = match &args[..] {
        [p, n] => (p, n, None),
        [p, n, flag, ca] if flag == "--ca-file" => (p, n, Some(ca)),
        _ => {
            eprintln!("usage: resolve_many PREFIX N [--ca-file FILE]");
            return ExitCode::from(2);
        }
    };
    let Ok(n) = n.parse::<usize>() else {
        eprintln!("resolve_many: N must be a number, not {n:?}");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("resolve_many: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(resolve_many(prefix, n, ca.map(String::as_str))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("resolve_many: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn resolve_many(
    prefix: &str,
    n: usize,
    ca: Option<&str>,
) -> Result<(), Box<dyn std::error::Error>> {
    let host = prefix.split('/').next().unwrap_or_default().to_owned();
    let mut transport = berth_hyper::HyperTransport::builder();
    let mut builder = Client::builder();
    match ca {
        Some(ca) => transport = transport.extra_ca_file(ca),
        None => {
            transport = transport.insecure_host(host.clone());
            builder = builder.insecure_registry(host);
        }
    }
    let client = builder.build(transport.build()?);
    for i in 0..n {
        let reference = Reference::parse_normalized(&format!("{prefix}{i}"))?;
        let descriptor = client.resolve(&reference).await?;
        std::hint::black_box(descriptor);
    }
    Ok(())
}
