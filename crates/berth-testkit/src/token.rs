//! A token server for the registry's token auth, as Docker Hub's
//! auth.docker.io is one: `GET /token?service=..&scope=..` with Basic
//! credentials answers a JWT (ES256, with the signing certificate in `x5c`)
//! granting the actions asked for to the one known user; anonymous callers
//! get a token that grants nothing.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

/// The service name the registry and the token server agree on.
pub const SERVICE: &str = "berth-test-registry";
/// The issuer named in tokens.
pub const ISSUER: &str = "berth-test-issuer";

/// A running token server.
#[derive(Debug)]
pub struct TokenServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    issued: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

struct Config {
    user: String,
    password: String,
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    lifetime: Duration,
}

impl TokenServer {
    /// Starts the server for one user, signing with the PKCS#8 key whose
    /// certificate is `cert_der`; tokens live `lifetime`.
    pub fn start(
        user: &str,
        password: &str,
        key_pkcs8: &[u8],
        cert_der: &[u8],
        lifetime: Duration,
    ) -> io::Result<TokenServer> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key_pkcs8, &rng)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(AtomicUsize::new(0));
        let config = Arc::new(Config {
            user: user.to_owned(),
            password: password.to_owned(),
            key,
            cert_der: cert_der.to_vec(),
            lifetime,
        });
        let (stop2, issued2) = (Arc::clone(&stop), Arc::clone(&issued));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                if serve(conn, &config).is_ok() {
                    issued2.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Ok(TokenServer {
            addr,
            stop,
            issued,
            thread: Some(thread),
        })
    }

    /// The realm URL to configure in the registry.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// How many requests it answered.
    pub fn requests(&self) -> usize {
        self.issued.load(Ordering::SeqCst)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn decode_component(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serve(conn: TcpStream, config: &Config) -> io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = None;
    for _ in 0..100 {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(v.trim().to_owned());
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut scopes = Vec::new();
    let mut service = String::new();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "scope" => scopes.push(decode_component(v)),
            "service" => service = decode_component(v),
            _ => {}
        }
    }
    let mut conn = conn;
    let user = match authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Basic "))
    {
        None => None,
        Some(b64) => {
            let raw = STANDARD.decode(b64.trim()).unwrap_or_default();
            let text = String::from_utf8_lossy(&raw).into_owned();
            if text == format!("{}:{}", config.user, config.password) {
                Some(config.user.clone())
            } else {
                let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"wrong user name or password"}]}"#;
                write!(
                    conn,
                    "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )?;
                return Ok(());
            }
        }
    };
    // The user gets what it asks for; anonymous callers get nothing.
    let access: Vec<serde_json::Value> = match &user {
        None => Vec::new(),
        Some(_) => scopes
            .iter()
            .filter_map(|s| {
                let mut parts = s.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                let actions: Vec<&str> = if actions == "*" {
                    vec!["pull", "push", "delete", "*"]
                } else {
                    actions.split(',').collect()
                };
                Some(serde_json::json!({"type": kind, "name": name, "actions": actions}))
            })
            .collect(),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [STANDARD.encode(&config.cert_der)]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": user.unwrap_or_default(), "aud": if service.is_empty() { SERVICE.to_owned() } else { service },
        "exp": now + config.lifetime.as_secs(), "nbf": now.saturating_sub(10), "iat": now,
        "jti": format!("{now}-{}", scopes.len()), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = config
        .key
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .map_err(|e| io::Error::other(e.to_string()))?;
    let token = format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    );
    let body =
        serde_json::json!({"token": token, "expires_in": config.lifetime.as_secs()}).to_string();
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    Ok(())
}
