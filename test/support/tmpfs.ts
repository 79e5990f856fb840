/**
 * A size-limited tmpfs for tests of a full disk: mounted where the test says (root on Linux only:
 * `mountTmpfs` answers why not otherwise, and the test skips saying so), filled to the last page
 * by a filler file, and unmounted by the test's teardown.
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, open, readdir, rm, statfs } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface Tmpfs {
  /** The mount point. */
  readonly dir: string
  /** Unmounts it (lazily if something still holds it) and removes the mount point. Idempotent. */
  close(): Promise<void>
}

/** A tmpfs of `mib` MiB on a new directory; a sentence saying why it cannot be had (not root, not Linux, mount refused) otherwise. */
export async function mountTmpfs(mib: number): Promise<Tmpfs | string> {
  if (process.platform !== 'linux') return `tmpfs mounts need Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root (CI runs these tests as root)'
  const home = await mkdtemp(join(tmpdir(), 'compactd-tmpfs-'))
  const dir = join(home, 'disk')
  await mkdir(dir)
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${mib}m`, 'tmpfs', dir])
  } catch (err) {
    await rm(home, { recursive: true, force: true })
    return `mount -t tmpfs failed: ${err instanceof Error ? err.message.split('\n').join(' ') : String(err)}`
  }
  let closing: Promise<void> | undefined
  const close = async (): Promise<void> => {
    try {
      await run('umount', [dir])
    } catch {
      await run('umount', ['-l', dir]) // still busy (a child not quite gone): detach it
    }
    await rm(home, { recursive: true, force: true })
  }
  return { dir, close: () => (closing ??= close()) }
}

/** Bytes free on the file system of `dir`, as an unprivileged writer sees them. */
export async function freeBytes(dir: string): Promise<number> {
  const st = await statfs(dir)
  return st.bavail * st.bsize
}

/** Grows `path` until its file system is full, then gives back `leave` bytes (whole pages on tmpfs). */
export async function fill(path: string, leave = 0): Promise<void> {
  const handle = await open(path, 'a')
  try {
    for (const chunk of [1 << 20, 4096]) {
      const buf = Buffer.alloc(chunk, 0x5a)
      for (;;) {
        try {
          await handle.write(buf)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break
          throw err
        }
      }
    }
    const { size } = await handle.stat()
    await handle.truncate(Math.max(0, size - leave))
  } finally {
    await handle.close()
  }
}

/** Every file under `dir`, as paths relative to it, sorted; none when it does not exist. */
export async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort()
}
