//! `WWW-Authenticate` parsing: berth against the `http-auth` crate's
//! `parse_challenges`, on the challenges Docker Hub, GHCR and ECR send, in
//! the same run.
//!
//! `cargo bench -p berth-benches --bench auth`
//!
//! `cargo xtask bench` reads the medians and reports berth's
//! `parse_challenges` against http-auth's on every input (target: at least
//! 3x on each).

use std::fmt;
use std::hint::black_box;
use std::time::Duration;

use berth_auth::{Challenge, parse_challenges, parse_challenges_into};
use divan::Bencher;
use divan::counter::ItemsCount;

/// One `WWW-Authenticate` header as a registry sends it; divan names the
/// bench case after the registry.
#[derive(Clone, Copy, Debug)]
struct Input {
    registry: &'static str,
    header: &'static str,
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.registry)
    }
}

const INPUTS: [Input; 3] = [
    Input {
        registry: "docker-hub",
        header: r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull""#,
    },
    Input {
        registry: "ghcr",
        header: r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:octocat/hello-world:pull""#,
    },
    Input {
        registry: "ecr",
        header: r#"Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com""#,
    },
];

/// Both parsers must accept every input and agree on it.
fn check_inputs() {
    for Input { registry, header } in INPUTS {
        let ours =
            parse_challenges(header).unwrap_or_else(|e| panic!("berth refuses {registry}: {e}"));
        let peer = http_auth::parse_challenges(header)
            .unwrap_or_else(|e| panic!("http-auth refuses {registry}: {e}"));
        assert_eq!(ours.len(), peer.len(), "{registry}");
        for (o, p) in ours.iter().zip(&peer) {
            assert!(o.is_scheme(p.scheme), "{registry}");
            for (n, v) in &p.params {
                assert_eq!(
                    o.param(n).as_deref(),
                    Some(v.to_unescaped().as_str()),
                    "{registry} {n}"
                );
            }
        }
    }
}

fn main() {
    check_inputs();
    // At least half a second per bench, so a bench of microseconds takes
    // thousands of samples and its median holds on a busy machine; divan's
    // options on the command line (`--min-time`, `--sample-count`...) win.
    divan::Divan::default()
        .min_time(Duration::from_millis(500))
        .config_with_args()
        .main();
}

/// Parsing one header into its challenges.
#[divan::bench_group]
mod parse {
    use super::*;

    #[divan::bench(args = INPUTS)]
    fn berth_parse_challenges(bencher: Bencher<'_, '_>, input: Input) {
        bencher.bench(|| {
            parse_challenges(black_box(input.header))
                .map(|cs| cs.len())
                .unwrap_or(0)
        });
    }

    /// The same, into a `Vec` the caller keeps across headers.
    #[divan::bench(args = INPUTS)]
    fn berth_parse_challenges_into(bencher: Bencher<'_, '_>, input: Input) {
        let mut buffer: Vec<Challenge<'static>> = Vec::with_capacity(4);
        bencher.bench_local(|| {
            buffer.clear();
            parse_challenges_into(black_box(input.header), &mut buffer).unwrap_or(0)
        });
    }

    #[divan::bench(args = INPUTS)]
    fn http_auth_parse_challenges(bencher: Bencher<'_, '_>, input: Input) {
        bencher.bench(|| {
            http_auth::parse_challenges(black_box(input.header))
                .map(|cs| cs.len())
                .unwrap_or(0)
        });
    }
}

/// Parsing all three headers and reading what a client needs from the first
/// challenge of each: realm, service and scope.
#[divan::bench_group]
mod parse_and_read_params {
    use super::*;

    /// http-auth's value of parameter `name`, as berth's `param` gives it.
    fn peer_param<'i>(c: &http_auth::ChallengeRef<'i>, name: &str) -> Option<&'i str> {
        c.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_escaped())
    }

    #[divan::bench]
    fn berth(bencher: Bencher<'_, '_>) {
        bencher.counter(ItemsCount::new(INPUTS.len())).bench(|| {
            INPUTS
                .iter()
                .map(|input| {
                    let cs = parse_challenges(black_box(input.header)).unwrap_or_default();
                    cs.first().map_or(0, |c| {
                        c.param("realm").map_or(0, |v| v.len())
                            + c.param("service").map_or(0, |v| v.len())
                            + c.param("scope").map_or(0, |v| v.len())
                    })
                })
                .sum::<usize>()
        });
    }

    #[divan::bench]
    fn http_auth(bencher: Bencher<'_, '_>) {
        bencher.counter(ItemsCount::new(INPUTS.len())).bench(|| {
            INPUTS
                .iter()
                .map(|input| {
                    let cs =
                        http_auth::parse_challenges(black_box(input.header)).unwrap_or_default();
                    cs.first().map_or(0, |c| {
                        peer_param(c, "realm").map_or(0, str::len)
                            + peer_param(c, "service").map_or(0, str::len)
                            + peer_param(c, "scope").map_or(0, str::len)
                    })
                })
                .sum::<usize>()
        });
    }
}
