//! Independent passes over one world, run side by side on the machine's cores.

/// Whether the machine has a second core for work beside this thread's.
pub fn second_core() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
}

/// One pass: reads what it captures, returns its result.
pub type Job<'a, T> = Box<dyn Fn() -> T + Sync + 'a>;

/// Runs `jobs` on as many threads as the machine has cores (at most one a job), each thread
/// taking the next job not yet taken; the results in the jobs' order.
pub fn side_by_side<T: Send>(jobs: &[Job<T>]) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len());
    if threads <= 1 {
        return jobs.iter().map(|j| j()).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(job) = jobs.get(i) else { break done };
            done.push((i, job()));
        }
    };
    let mut all: Vec<(usize, T)> = std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut all = work();
        for h in helpers {
            all.extend(h.join().expect("a job panicked"));
        }
        all
    });
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_the_jobs_order() {
        let jobs: Vec<Job<u64>> = (0..40u64)
            .map(|i| -> Job<u64> {
                Box::new(move || {
                    // Uneven work, so that the threads finish their jobs out of order.
                    let spins = if i % 3 == 0 { 200_000 } else { 10 };
                    (0..spins).fold(i, |a, x| std::hint::black_box(a ^ x) ^ x)
                })
            })
            .collect();
        assert_eq!(side_by_side(&jobs), (0..40).collect::<Vec<_>>());
        assert!(side_by_side::<u64>(&[]).is_empty());
    }
}
