//! `WWW-Authenticate` parsing: berth against the `http-auth` crate's
//! `parse_challenges`, on the challenges Docker Hub, GHCR and ECR send, in
//! the same run.
//!
//! `cargo bench -p berth-benches --bench auth`

use std::hint::black_box;

use berth_auth::{Challenge, parse_challenges, parse_challenges_into};
use berth_benches::{Bench, Measurement};

const INPUTS: [(&str, &str); 3] = [
    (
        "docker-hub",
        r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull""#,
    ),
    (
        "ghcr",
        r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:octocat/hello-world:pull""#,
    ),
    (
        "ecr",
        r#"Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com""#,
    ),
];

/// http-auth's value of parameter `name`, as berth's `param` gives it.
fn peer_param<'i>(c: &http_auth::ChallengeRef<'i>, name: &str) -> Option<&'i str> {
    c.params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_escaped())
}

fn main() {
    // Both parsers must accept every input and agree on it.
    for (name, header) in INPUTS {
        let ours = parse_challenges(header).unwrap_or_else(|e| panic!("berth refuses {name}: {e}"));
        let peer = http_auth::parse_challenges(header)
            .unwrap_or_else(|e| panic!("http-auth refuses {name}: {e}"));
        assert_eq!(ours.len(), peer.len(), "{name}");
        for (o, p) in ours.iter().zip(&peer) {
            assert!(o.is_scheme(p.scheme), "{name}");
            for (n, v) in &p.params {
                assert_eq!(
                    o.param(n).as_deref(),
                    Some(v.to_unescaped().as_str()),
                    "{name} {n}"
                );
            }
        }
    }
    let mut bench = Bench::new("auth");
    if !bench.enabled() {
        return;
    }

    let mut ratios = Vec::new();
    for (name, header) in INPUTS {
        let ours = bench.measure(&format!("{name} berth parse_challenges"), 1, || {
            parse_challenges(black_box(header))
                .map(|cs| cs.len())
                .unwrap_or(0)
        });
        let mut buffer: Vec<Challenge<'static>> = Vec::with_capacity(4);
        bench.measure(
            &format!("{name} berth parse_challenges_into (reused Vec)"),
            1,
            || {
                buffer.clear();
                parse_challenges_into(black_box(header), &mut buffer).unwrap_or(0)
            },
        );
        let peer = bench.measure(&format!("{name} http-auth parse_challenges"), 1, || {
            http_auth::parse_challenges(black_box(header))
                .map(|cs| cs.len())
                .unwrap_or(0)
        });
        ratios.push(bench.ratio(&ours, &peer));
    }

    // Parsing and then reading what a client needs from the first challenge.
    let all: Vec<&str> = INPUTS.iter().map(|(_, h)| *h).collect();
    let n = all.len();
    let ours: Measurement = bench.measure("all berth parse + realm/service/scope", n, || {
        all.iter()
            .map(|h| {
                let cs = parse_challenges(black_box(h)).unwrap_or_default();
                cs.first().map_or(0, |c| {
                    c.param("realm").map_or(0, |v| v.len())
                        + c.param("service").map_or(0, |v| v.len())
                        + c.param("scope").map_or(0, |v| v.len())
                })
            })
            .sum::<usize>()
    });
    let peer = bench.measure("all http-auth parse + realm/service/scope", n, || {
        all.iter()
            .map(|h| {
                let cs = http_auth::parse_challenges(black_box(h)).unwrap_or_default();
                cs.first().map_or(0, |c| {
                    peer_param(c, "realm").map_or(0, str::len)
                        + peer_param(c, "service").map_or(0, str::len)
                        + peer_param(c, "scope").map_or(0, str::len)
                })
            })
            .sum::<usize>()
    });
    bench.ratio(&ours, &peer);

    let worst = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "auth/target: berth parse_challenges at least 3x http-auth on every input (worst {worst:.2}x): {}",
        if worst >= 3.0 { "met" } else { "NOT met" }
    );
}
