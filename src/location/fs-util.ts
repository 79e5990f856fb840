/** Small filesystem helpers shared by the file adapters. */
import { mkdir, open, readdir, rmdir } from 'node:fs/promises'
import { dirname, sep } from 'node:path'

/** Makes a directory's entries (creates, renames, links, unlinks) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** Whether `err` is a Node system error with one of `codes`. */
export function hasCode(err: unknown, ...codes: string[]): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && codes.includes(String(err.code))
}

/** Whether `err` says the file system is full, or the writer's quota is (nothing more can be written there). */
export function isNoSpace(err: unknown): boolean {
  return hasCode(err, 'ENOSPC', 'EDQUOT')
}

/**
 * After `created = await mkdir(dir, { recursive: true })`: fsyncs the parent of every directory
 * that call created, so the new directories survive a crash.
 */
export async function fsyncCreated(dir: string, created: string | undefined): Promise<void> {
  if (created === undefined) return
  for (let d = dir; d.length >= created.length; d = dirname(d)) {
    await fsyncDir(dirname(d))
    if (dirname(d) === d) break
  }
}

/** The names in `dir`, or none when it (or a parent) does not exist. */
export async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir)
  } catch (err) {
    if (hasCode(err, 'ENOENT', 'ENOTDIR')) return []
    throw err
  }
}

/** Attempts at creating a file in a directory that a concurrent cleanup may be removing. */
const MAX_MKDIR_ATTEMPTS = 8

/**
 * Runs `fn`, which creates a file in `dir`, after creating `dir` (durably); again if a concurrent
 * cleanup removed the empty directory in between (`fn` then fails with ENOENT), or removed a parent
 * while `mkdir` was creating the levels below it (`mkdir` then fails with ENOENT).
 */
export async function inDir<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      const created = await mkdir(dir, { recursive: true })
      await fsyncCreated(dir, created)
      return await fn()
    } catch (err) {
      if (!hasCode(err, 'ENOENT') || attempt >= MAX_MKDIR_ATTEMPTS) throw err
    }
  }
}

/**
 * Removes `dir` and then each of its parents below `root` while they are empty; stops at the first
 * that is not (or that is gone, or that cannot be removed: an empty directory left is harmless).
 * Writers into these directories create them with `inDir`, which recreates one removed under it.
 */
export async function removeEmptyDirs(dir: string, root: string): Promise<void> {
  for (let d = dir; d.startsWith(root + sep); d = dirname(d)) {
    try {
      await rmdir(d)
    } catch {
      return
    }
  }
}
