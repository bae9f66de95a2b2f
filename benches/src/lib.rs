//! A small measuring harness shared by berth's `cargo bench` targets.
//!
//! Every bench in this crate measures berth and a peer on the same inputs in
//! the same run and prints the ratio, so a reader never compares numbers
//! taken on different days or machines. Each figure is the median of several
//! samples, with the fastest and slowest sample beside it.
//!
//! ```
//! use berth_benches::Bench;
//! let inputs = ["a", "bb", "ccc"];
//! let mut bench = Bench::new("example").samples(5).target_sample_ms(1);
//! let ours = bench.measure("ours", inputs.len(), || {
//!     inputs.iter().map(|s| std::hint::black_box(s).len()).sum::<usize>()
//! });
//! let peer = bench.measure("peer", inputs.len(), || {
//!     inputs.iter().map(|s| std::hint::black_box(s).chars().count()).sum::<usize>()
//! });
//! bench.ratio(&ours, &peer);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

/// A group of measurements printed together.
#[derive(Debug)]
pub struct Bench {
    group: String,
    samples: usize,
    target_sample: Duration,
    filter: Option<String>,
}

/// The result of one measurement: nanoseconds per element.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// What was measured, as printed.
    pub name: String,
    /// Median time per element, in nanoseconds.
    pub median_ns: f64,
    /// Fastest sample, per element, in nanoseconds.
    pub min_ns: f64,
    /// Slowest sample, per element, in nanoseconds.
    pub max_ns: f64,
    /// Elements processed per iteration (references, bytes, challenges...).
    pub elements: usize,
}

impl Measurement {
    /// Elements per second at the median.
    pub fn per_second(&self) -> f64 {
        1e9 / self.median_ns
    }
}

impl Bench {
    /// A new group. `cargo bench -- NAME` runs only the groups whose name
    /// contains NAME; `--quick` (or `BERTH_BENCH_QUICK=1`) takes fewer samples.
    pub fn new(group: &str) -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick =
            args.iter().any(|a| a == "--quick") || std::env::var_os("BERTH_BENCH_QUICK").is_some();
        let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
        Bench {
            group: group.to_owned(),
            samples: if quick { 5 } else { 15 },
            target_sample: Duration::from_millis(if quick { 20 } else { 100 }),
            filter,
        }
    }

    /// Number of samples to take (the median is reported).
    pub fn samples(mut self, n: usize) -> Self {
        self.samples = n.max(1);
        self
    }

    /// Roughly how long one sample should run, in milliseconds.
    pub fn target_sample_ms(mut self, ms: u64) -> Self {
        self.target_sample = Duration::from_millis(ms.max(1));
        self
    }

    /// Whether this group was selected on the command line.
    pub fn enabled(&self) -> bool {
        match &self.filter {
            None => true,
            Some(f) => self.group.contains(f.as_str()),
        }
    }

    /// Measures `f`, which processes `elements` elements per call, and prints
    /// one line. The closure's result is passed through `black_box`.
    pub fn measure<R>(
        &mut self,
        name: &str,
        elements: usize,
        mut f: impl FnMut() -> R,
    ) -> Measurement {
        let elements = elements.max(1);
        // Warm up and find how many calls fill one sample.
        let start = Instant::now();
        let mut calls: u64 = 0;
        while start.elapsed() < self.target_sample / 4 || calls == 0 {
            black_box(f());
            calls += 1;
        }
        let per_call = start.elapsed().as_secs_f64() / calls as f64;
        // A float-to-int `as` saturates; a sample count fits comfortably.
        #[allow(clippy::cast_possible_truncation)]
        let iters = ((self.target_sample.as_secs_f64() / per_call).ceil() as u64).max(1);

        let mut per_element: Vec<f64> = (0..self.samples)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(f());
                }
                t.elapsed().as_secs_f64() * 1e9 / (iters as f64 * elements as f64)
            })
            .collect();
        per_element.sort_by(f64::total_cmp);
        let m = Measurement {
            name: name.to_owned(),
            median_ns: per_element[per_element.len() / 2],
            min_ns: per_element[0],
            max_ns: per_element[per_element.len() - 1],
            elements,
        };
        println!(
            "{:<48} {:>10} /elem  [{} .. {}]  ({} elements per call)",
            format!("{}/{}", self.group, m.name),
            fmt_ns(m.median_ns),
            fmt_ns(m.min_ns),
            fmt_ns(m.max_ns),
            elements
        );
        m
    }

    /// Prints how many times faster `ours` is than `peer` (median over
    /// median) and returns that ratio.
    pub fn ratio(&self, ours: &Measurement, peer: &Measurement) -> f64 {
        let r = peer.median_ns / ours.median_ns;
        println!(
            "{:<48} {:>9.2}x  ({} is {} than {})",
            format!("{}/ratio {}:{}", self.group, ours.name, peer.name),
            r,
            ours.name,
            if r >= 1.0 { "faster" } else { "slower" },
            peer.name
        );
        r
    }

    /// Prints a throughput line in MiB/s for a measurement whose elements are
    /// bytes.
    pub fn throughput(&self, m: &Measurement) {
        println!(
            "{:<48} {:>9.1} MiB/s",
            format!("{}/{} throughput", self.group, m.name),
            m.per_second() / (1024.0 * 1024.0)
        );
    }
}

/// Formats nanoseconds with a unit a person can read.
pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

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
