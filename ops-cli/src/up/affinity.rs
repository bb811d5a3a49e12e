//! Keeping each single-threaded service on one CPU.
//!
//! checkout, warehouse, finance and the edge each run one Tokio thread, and
//! on SQLite sqlx's worker thread beside it: every statement is a hand-off
//! from one to the other and back. On one CPU a hand-off is a switch on
//! that CPU. Left to the scheduler, the two threads often sit on different
//! CPUs, and each hand-off then wakes the other CPU (an interprocessor
//! interrupt; on a virtual machine, a halted vCPU woken by its host). On
//! the 2-vCPU machine of bench/README.md ("CPU affinity") that was a third
//! of the shop's throughput. product-svc (a multi-threaded runtime and the
//! search indexer) and the broker are left to the scheduler.

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use tracing::warn;

use contracts::subjects::PRODUCT_SVC;

/// Whether `bazaar up` keeps services on CPUs of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CpuAffinity {
    /// Each single-threaded service on one CPU, round-robin over the CPUs
    /// `bazaar up` may use (none when it may use only one).
    Auto,
    /// Every service may run on every CPU.
    Off,
}

/// Hands out the CPUs services are kept to.
pub struct Cpus {
    allowed: Vec<usize>,
    next: usize,
}

impl Cpus {
    /// The CPUs this process may run on, if `affinity` asks for pinning and
    /// there are at least two of them.
    pub fn new(affinity: CpuAffinity) -> Cpus {
        let allowed = match affinity {
            CpuAffinity::Off => Vec::new(),
            CpuAffinity::Auto => match sched_getaffinity(Pid::from_raw(0)) {
                Ok(set) => (0..CpuSet::count())
                    .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
                    .collect(),
                Err(error) => {
                    warn!(%error, "cannot read this process's CPUs; services run unpinned");
                    Vec::new()
                }
            },
        };
        Cpus {
            allowed: if allowed.len() > 1 {
                allowed
            } else {
                Vec::new()
            },
            next: 0,
        }
    }

    /// The CPU the next instance of `service` is kept to, if any.
    pub fn assign(&mut self, service: &str) -> Option<usize> {
        if service == PRODUCT_SVC || self.allowed.is_empty() {
            return None;
        }
        let cpu = self.allowed[self.next % self.allowed.len()];
        self.next += 1;
        Some(cpu)
    }
}

/// Runs `spawn` with the calling thread kept to `cpu`, so the process it
/// starts, and every thread that process starts, inherit that CPU; the
/// thread's own CPUs are restored before returning. `spawn` must not
/// yield to other tasks (it runs on a runtime worker thread).
pub fn spawning_on<T>(cpu: Option<usize>, spawn: impl FnOnce() -> T) -> T {
    let Some(cpu) = cpu else {
        return spawn();
    };
    let this_thread = Pid::from_raw(0);
    let before = match sched_getaffinity(this_thread) {
        Ok(set) => set,
        Err(error) => {
            warn!(%error, cpu, "cannot read this thread's CPUs; starting the service unpinned");
            return spawn();
        }
    };
    let mut only = CpuSet::new();
    if let Err(error) = only
        .set(cpu)
        .and_then(|()| sched_setaffinity(this_thread, &only))
    {
        warn!(%error, cpu, "cannot keep the service to its CPU; starting it unpinned");
        return spawn();
    }
    let spawned = spawn();
    if let Err(error) = sched_setaffinity(this_thread, &before) {
        warn!(%error, "cannot give this thread its CPUs back");
    }
    spawned
}
