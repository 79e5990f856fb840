/**
 * Transparent huge pages for the memory malloc hands out, which is where Node keeps ArrayBuffers:
 * parts, windows, body buffers, builders. glibc asks the kernel for huge pages
 * (`madvise(MADV_HUGEPAGE)`) on the memory it maps when its `glibc.malloc.hugetlb=1` tunable is set;
 * a process cannot turn that on for itself, because glibc reads `GLIBC_TUNABLES` as it starts. So
 * whatever starts compactd sets it: `npm start` (package.json) and the image (Dockerfile), and the
 * bench's servers as `npm start` does (a test keeps the three the same).
 *
 * Why: touching fresh memory costs a page fault per 4 KiB page, ~11 µs each on the VMs compactd is
 * measured on, and a compaction after a restart touches hundreds of MB of it; with huge pages
 * that is one fault per 2 MiB, and fewer TLB misses after. Measured with `bench/compact-probe.ts`
 * (10M updates in 16 runs), in A/B runs (seven each way): the first compaction after a restart
 * spent 0.40–0.55 s in the kernel against 0.58–1.12 s; its wall time, 1.96–2.29 s against
 * 2.11–2.41 s, mostly overlaps: the noise between runs is as large. Warm compactions and writes
 * overlap too (`bench/write-probe.ts --arrow 8 --json 4`: sorted Arrow 6.35–6.44 M/s against
 * 6.01–6.43, JSON 1.53–1.54 against 1.30–1.44). The idle server's RSS grows by ~5 MB. Snapshot
 * reads did not change.
 *
 * Where the kernel allows huge pages only on request (`/sys/kernel/mm/transparent_hugepage/enabled`
 * is `madvise`, the common default) this is what makes them happen; `always` needs nothing, and
 * `never` ignores it. Other C libraries (musl, macOS) ignore the variable.
 */

/** The glibc tunable (`GLIBC_TUNABLES` holds `name=value` pairs separated by colons). */
export const HUGE_PAGES_TUNABLE = 'glibc.malloc.hugetlb=1'

/** `env` with the tunable added to `GLIBC_TUNABLES` (after any already there), for a process about to start. */
export function withHugePages(env: Readonly<Record<string, string | undefined>>): Record<string, string | undefined> {
  if (hugePagesRequested(env)) return { ...env }
  const current = env.GLIBC_TUNABLES ?? ''
  return { ...env, GLIBC_TUNABLES: current === '' ? HUGE_PAGES_TUNABLE : `${current}:${HUGE_PAGES_TUNABLE}` }
}

/** Whether this process was started with the tunable (it is in effect wherever glibc honours it). */
export function hugePagesRequested(env: Readonly<Record<string, string | undefined>> = process.env): boolean {
  return (env.GLIBC_TUNABLES ?? '').split(':').includes(HUGE_PAGES_TUNABLE)
}
