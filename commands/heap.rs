//! Faulting in the heap on a second core while one thread builds a large world.
//!
//! Building a replayed world at 100,000 communities allocates about 800 MB in millions of small
//! pieces. Each new page of the heap is first touched by the thread that builds, which then
//! waits in the kernel while the page is found, zeroed and mapped: a quarter of the decoding's
//! time in profiles. [`Prefault`] asks the allocator to grow the heap in large steps and has a
//! helper thread fault each new step in (`MADV_POPULATE_WRITE`) as soon as it exists, so the
//! builder mostly finds its pages ready. The contents are untouched (the kernel maps zeroed
//! pages, as the builder's first touch would have), so it cannot change any result; at most
//! one step of heap beyond what is used becomes resident early.
//!
//! Each step is also marked for transparent huge pages (`MADV_HUGEPAGE`; where the kernel's
//! setting is `madvise` or `always`, otherwise the call fails and nothing changes). The passes
//! over a world read it in no order that pages follow, so with 4 KiB pages nearly every read
//! missed the TLB as well as the cache; with 2 MiB pages the world's few hundred MB are a few
//! hundred TLB entries, and exiting frees them faster. At 100,000 communities
//! (`recovery_bench`'s ledger, eight alternated runs): `recover` median 2.63 → 2.42 s, `plan`
//! 3.47 → 3.11 s, the same peak memory.
//!
//! Linux with glibc only (the main arena grows with `brk`); elsewhere it does nothing.

/// How far beyond a request the allocator grows the heap, and so how far ahead the helper
/// faults pages in.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const STEP_BYTES: usize = 32 << 20;

/// While alive, new heap is faulted in ahead of the thread that allocates it.
pub struct Prefault {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    _running: Option<imp::Running>,
}

impl Prefault {
    /// Starts the helper, when the machine has a second core to run it.
    pub fn start() -> Prefault {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            Prefault {
                _running: (cores > 1).then(imp::Running::start),
            }
        }
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        Prefault {}
    }
}

/// Gives the memory the allocator holds free back to the system. glibc keeps what a large
/// piece of work freed (a findings answer at 100,000 communities frees gigabytes), so a server
/// would hold its high-water mark until it stops. Linux with glibc; elsewhere it does nothing.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    use super::STEP_BYTES;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    pub struct Running {
        stop: Arc<AtomicBool>,
        helper: Option<std::thread::JoinHandle<()>>,
    }

    fn brk() -> usize {
        // SAFETY: sbrk(0) only reads the current program break.
        unsafe { libc::sbrk(0) as usize }
    }

    impl Running {
        pub fn start() -> Running {
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            let helper = std::thread::Builder::new()
                .name("prefault".into())
                .spawn(move || {
                    // SAFETY: sysconf only reads a system constant.
                    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
                        .unwrap_or(4096);
                    let mut done = brk().next_multiple_of(page);
                    while !flag.load(Ordering::Relaxed) {
                        let end = brk() & !(page - 1);
                        if end > done {
                            // SAFETY: asking for huge pages and populating pages of our own
                            // heap writes nothing to them; a range the heap no longer covers
                            // fails with ENOMEM, which is ignored.
                            unsafe {
                                libc::madvise(
                                    done as *mut libc::c_void,
                                    end - done,
                                    libc::MADV_HUGEPAGE,
                                );
                                libc::madvise(
                                    done as *mut libc::c_void,
                                    end - done,
                                    libc::MADV_POPULATE_WRITE,
                                );
                            }
                            done = end;
                        } else {
                            if end < done {
                                done = end; // the heap shrank
                            }
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    }
                })
                .ok();
            // Without a helper, large heap steps would only cost memory.
            if helper.is_some() {
                // SAFETY: mallopt only sets allocator parameters; any value is valid for these.
                unsafe {
                    // Grow the heap a step at a time (and keep freed tops), and serve large
                    // requests from it too, so that the helper sees every new page.
                    libc::mallopt(libc::M_TOP_PAD, STEP_BYTES as i32);
                    libc::mallopt(libc::M_TRIM_THRESHOLD, (4 * STEP_BYTES) as i32);
                    libc::mallopt(libc::M_MMAP_THRESHOLD, (STEP_BYTES / 2) as i32);
                    // The threads that decode a snapshot's databases and run the findings'
                    // passes keep their own arenas. Forcing one arena (so that their memory
                    // too would be faulted in ahead) made them wait on its lock: alternated
                    // runs, `recover --format json` at 9.29M events 9.97-10.83 s with one
                    // arena against 8.60-8.95 s without, 1.47 against 1.51-1.53 GB peak; at
                    // 1.38M events 1.76-1.93 against 1.62-1.80 s; `plan` 2.26-2.44 against
                    // 2.06-2.15 s, the same peak.
                }
            }
            Running { stop, helper }
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(h) = self.helper.take() {
                let _ = h.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// While the helper faults pages in, what is allocated reads back as written, zeroed
    /// allocations are zero, and stopping the helper returns (it is joined).
    #[test]
    fn allocations_are_unchanged_while_the_heap_is_faulted_in_ahead() {
        let running = Prefault::start();
        let mut kept: Vec<Vec<u64>> = Vec::new();
        for i in 0..400u64 {
            // 400 × 64 KiB: the heap grows past several steps while the helper runs.
            kept.push((0..8192).map(|j| i * 8192 + j).collect());
            let zeroed = vec![0u64; 8192];
            assert!(zeroed.iter().all(|&x| x == 0), "round {i}");
            if i % 3 == 0 {
                kept.remove(kept.len() / 2); // frees in the middle, reused later
            }
        }
        drop(running);
        for v in &kept {
            let first = v[0];
            assert_eq!(first % 8192, 0);
            assert!(v.iter().enumerate().all(|(j, &x)| x == first + j as u64));
        }
    }
}
