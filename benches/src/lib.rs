//! Inputs shared by berth's `cargo bench` targets.
//!
//! The benches run on [divan](https://docs.rs/divan): every bench target
//! measures berth and a peer crate as sibling bench functions on the same
//! inputs in the same run, so a reader never compares numbers taken on
//! different days or machines. `cargo bench -p berth-benches` prints divan's
//! tables; `cargo xtask bench` runs the same benches, reads the median column
//! of those tables, and writes the berth-vs-peer ratios into BENCHMARKS.md.
//!
//! This library holds the deterministic corpora the benches share, so every
//! run measures the same inputs.
//!
//! ```
//! use berth_benches::corpus;
//! let refs = corpus::references(100);
//! assert_eq!(refs.len(), 100);
//! assert_eq!(refs, corpus::references(100), "the same corpus every time");
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Deterministic inputs shared by the benches.
pub mod corpus {
    /// A tiny deterministic generator (64-bit LCG), so every run measures
    /// the same inputs.
    #[derive(Debug, Clone)]
    pub struct Lcg(u64);

    impl Lcg {
        /// A generator from a seed.
        pub fn new(seed: u64) -> Self {
            Lcg(seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407))
        }

        /// The next value below `n`.
        pub fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n.max(1)
        }

        /// One of `items`.
        pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }

        /// `n` lowercase hex digits.
        pub fn hex(&mut self, n: usize) -> String {
            (0..n)
                .map(|_| char::from(b"0123456789abcdef"[self.below(16)]))
                .collect()
        }
    }

    /// About `n` varied image references, as people write them: familiar
    /// names, organisations, other registries with ports,
    /// deep paths, tags, digests, and both.
    pub fn references(n: usize) -> Vec<String> {
        let mut g = Lcg::new(42);
        let names = [
            "ubuntu",
            "nginx",
            "redis",
            "postgres",
            "alpine",
            "busybox",
            "node",
            "python",
            "golang",
            "traefik",
            "grafana",
            "prometheus",
            "memcached",
            "mysql",
            "mariadb",
            "httpd",
            "rust",
        ];
        let orgs = [
            "bitnami", "library", "grafana", "prom", "kindest", "rancher", "my-org", "team_a",
        ];
        let registries = [
            "ghcr.io",
            "quay.io",
            "gcr.io",
            "registry.k8s.io",
            "localhost:5000",
            "127.0.0.1:5000",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "europe-west1-docker.pkg.dev",
            "registry.example.com:443",
            "myregistry.azurecr.io",
            "index.docker.io",
            "docker.io",
        ];
        let tags = [
            "latest",
            "1.25",
            "24.04",
            "v1.2.3",
            "3.19.1-alpine",
            "main",
            "sha-1a2b3c",
            "2024.11.05_rc1",
        ];
        (0..n)
            .map(|_| {
                let mut s = String::new();
                match g.below(4) {
                    0 => s.push_str(g.pick(&names)),
                    1 => {
                        s.push_str(g.pick(&orgs));
                        s.push('/');
                        s.push_str(g.pick(&names));
                    }
                    2 => {
                        s.push_str(g.pick(&registries));
                        s.push('/');
                        s.push_str(g.pick(&orgs));
                        s.push('/');
                        s.push_str(g.pick(&names));
                    }
                    _ => {
                        s.push_str(g.pick(&registries));
                        for _ in 0..=g.below(3) {
                            s.push('/');
                            s.push_str(g.pick(&orgs));
                        }
                        s.push('/');
                        s.push_str(g.pick(&names));
                    }
                }
                match g.below(5) {
                    0 => {}
                    1 | 2 => {
                        s.push(':');
                        s.push_str(g.pick(&tags));
                    }
                    3 => {
                        s.push_str("@sha256:");
                        s.push_str(&g.hex(64));
                    }
                    _ => {
                        s.push(':');
                        s.push_str(g.pick(&tags));
                        s.push_str("@sha256:");
                        s.push_str(&g.hex(64));
                    }
                }
                s
            })
            .collect()
    }
}
