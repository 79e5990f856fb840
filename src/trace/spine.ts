/**
 * Spine: the mutable engine behind the immutable `Trace` value, persist's fork of differential
 * dataflow's fueled spine (docs/spine.md). `Spine.of(trace)` copies the level arrays
 * (spine batches themselves are immutable and shared), the transition methods mutate the copy,
 * and `toTrace()` freezes it back into a value. Nothing outside src/trace should need this class.
 *
 * Level `i` nominally holds batches of up to `2^i` updates. An introduced batch of `len` updates
 * brings `fuel = (8 << level) × EFFORT`, given afresh to every in-progress merge; merges that run
 * out of remaining work complete into the next level. Before inserting at level `L`, everything
 * below `L` is rolled up into it so the insertion lands on a level with room.
 *
 * NB: methods throw plain `Error`s only on broken invariants (a caller bug or corrupt state), never
 * on ordinary input; check preconditions with `checkPush` in trace.ts first.
 */
import * as ac from '../core/antichain.js'
import type { Antichain } from '../core/antichain.js'
import type { HollowBatch } from '../core/batch.js'
import type { TimestampKind } from '../core/timestamp.js'
import type { FueledMergeReq } from './fueled-merge-req.js'
import { BATCHES_PER_LEVEL, beginMerge, finishMerge, type FuelingMerge, type MergeState } from './merge-state.js'
import { emptySpineBatch, singleSpineBatch, type SpineBatch } from './spine-batch.js'
import { formatSpineId, spineId, type SpineId } from './spine-id.js'
import type { Trace } from './trace.js'

/** Fuel multiplier; persist calibrates it to 1, the least effort that still merges. */
export const EFFORT = 1

/** `log2(nextPowerOfTwo(max(len, 1)))`: 0 and 1 ⇒ 0, 2 ⇒ 1, 3..4 ⇒ 2, 100 ⇒ 7, 1000 ⇒ 10. */
export function levelFor(len: number): number {
  if (!Number.isSafeInteger(len) || len < 0) throw new Error(`level of a non-count ${len}`)
  let level = 0
  while (2 ** level < len) level++
  return level
}

/** Fuel an introduction at `level` brings to each merge in progress: `(8 << level) × EFFORT`. */
export function fuelFor(level: number): number {
  return 8 * 2 ** level * EFFORT
}

interface Level {
  batches: SpineBatch[]
  merge: FuelingMerge | null
}

const vacant = (): Level => ({ batches: [], merge: null })

export class Spine {
  readonly #tk: TimestampKind
  #since: Antichain
  #upper: Antichain
  #nextId: number
  readonly #merging: Level[]
  /** Every merge request emitted by completed merges, in emission order. */
  readonly log: FueledMergeReq[] = []

  private constructor(trace: Trace) {
    this.#tk = trace.tk
    this.#since = trace.since
    this.#upper = trace.upper
    this.#nextId = trace.nextId
    this.#merging = trace.levels.map((l) => ({ batches: [...l.batches], merge: l.merge }))
  }

  static of(trace: Trace): Spine {
    return new Spine(trace)
  }

  toTrace(): Trace {
    const levels: MergeState[] = this.#merging.map((l) => Object.freeze({ batches: Object.freeze([...l.batches]), merge: l.merge }))
    return Object.freeze({ tk: this.#tk, since: this.#since, upper: this.#upper, nextId: this.#nextId, levels: Object.freeze(levels) })
  }

  /** Appends `batch` (lower = upper of the spine, lower ≠ upper), fusing it into a lone empty batch if both are empty. */
  insert(batch: HollowBatch): void {
    const tk = this.#tk
    if (ac.equals(tk, batch.desc.lower, batch.desc.upper)) throw new Error('an empty-interval batch cannot be pushed')
    if (!ac.equals(tk, batch.desc.lower, this.#upper)) {
      throw new Error(`batch lower ${ac.format(tk, batch.desc.lower)} is not the spine upper ${ac.format(tk, this.#upper)}`)
    }
    const sb = singleSpineBatch(Object.freeze({ id: this.#takeId(), batch }))
    this.#upper = batch.desc.upper

    if (sb.len === 0) {
      const position = this.#merging.findIndex((l) => l.batches.length > 0)
      const level = this.#merging[position]
      if (level !== undefined && level.batches.length === 1 && level.batches.every((b) => b.len === 0)) {
        this.#insertAt(sb, position)
        const merged = this.#completeAt(position)
        if (merged !== null) this.#merging[position] = { batches: [merged], merge: null }
        return
      }
    }
    this.#introduceBatch(sb, levelFor(sb.len))
  }

  /**
   * Spends `effort` on maintenance as if that many empty updates arrived. Returns false, having
   * only tidied, when the spine holds fewer than two hollow batches.
   */
  exert(effort: number): boolean {
    if (!Number.isSafeInteger(effort) || effort < 0) throw new Error(`exert effort must be a non-negative integer, got ${effort}`)
    this.#tidyLayers()
    if (this.#hollowBatchCount() < 2) return false
    if (this.#merging.some((l) => l.merge !== null)) {
      this.#applyFuel(effort)
    } else {
      const id = this.#takeId()
      this.#introduceBatch(emptySpineBatch(id, this.#upper, this.#upper, this.#since), levelFor(effort))
    }
    return true
  }

  /**
   * Completes every merge in progress now, as if each got all the fuel it still needs, highest
   * level first, so a completed merge moves up into a level with room and nothing cascades: a merge
   * its batch starts one level up stays in progress. Returns whether any merge was completed.
   */
  completeMerges(): boolean {
    let any = false
    for (let i = this.#merging.length - 1; i >= 0; i--) {
      if (this.#level(i).merge === null) continue
      const complete = this.#completeAt(i)
      if (complete === null) throw new Error(`completing level ${i} produced nothing`)
      this.#insertAt(complete, i + 1)
      any = true
    }
    if (any) this.#tidyLayers()
    return any
  }

  downgradeSince(since: Antichain): void {
    this.#since = since
  }

  #takeId(): SpineId {
    const id = spineId(this.#nextId, this.#nextId + 1)
    this.#nextId += 1
    return id
  }

  #hollowBatchCount(): number {
    return this.#merging.reduce((s, l) => s + l.batches.reduce((t, b) => t + b.parts.length, 0), 0)
  }

  #introduceBatch(sb: SpineBatch, level: number): void {
    this.#applyFuel(fuelFor(level))
    this.#rollUp(level)
    this.#insertAt(sb, level)
    this.#tidyLayers()
  }

  /** Makes level `index` ready for an insertion by carrying every batch below it up into it. */
  #rollUp(index: number): void {
    while (this.#merging.length <= index) this.#merging.push(vacant())
    if (!this.#merging.slice(0, index).some((l) => l.batches.length > 0)) return
    let merged: SpineBatch | null = null
    for (let i = 0; i < index; i++) {
      if (merged !== null) this.#insertAt(merged, i)
      merged = this.#completeAt(i)
    }
    if (merged !== null) this.#insertAt(merged, index)
    if (this.#level(index).batches.length === BATCHES_PER_LEVEL) {
      const full = this.#completeAt(index)
      if (full === null) throw new Error(`rolling up level ${index} produced nothing`)
      this.#insertAt(full, index + 1)
    }
  }

  /** Gives each level's merge a fresh `fuel`; completed merges move up a level (levels added meanwhile are not fueled). */
  #applyFuel(fuel: number): void {
    const levels = this.#merging.length
    for (let i = 0; i < levels; i++) {
      const level = this.#level(i)
      if (level.merge === null) continue
      const used = Math.min(fuel, level.merge.remainingWork)
      level.merge = Object.freeze({ ...level.merge, remainingWork: level.merge.remainingWork - used })
      if (level.merge.remainingWork === 0) {
        const complete = this.#completeAt(i)
        if (complete === null) throw new Error(`completing level ${i} produced nothing`)
        this.#insertAt(complete, i + 1)
      }
    }
  }

  #insertAt(sb: SpineBatch, index: number): void {
    while (this.#merging.length <= index) this.#merging.push(vacant())
    const level = this.#level(index)
    const last = level.batches[level.batches.length - 1]
    if (level.merge !== null) throw new Error(`inserting ${formatSpineId(sb.id)} into level ${index} while it merges`)
    if (level.batches.length >= BATCHES_PER_LEVEL) throw new Error(`inserting ${formatSpineId(sb.id)} into full level ${index}`)
    if (last !== undefined && (last.id.hi !== sb.id.lo || !ac.equals(this.#tk, last.desc.upper, sb.desc.lower))) {
      throw new Error(`spine batch ${formatSpineId(sb.id)} does not follow ${formatSpineId(last.id)} at level ${index}`)
    }
    level.batches.push(sb)
    if (level.batches.length === BATCHES_PER_LEVEL) level.merge = beginMerge(this.#tk, level.batches, this.#since)
  }

  /** Empties level `index`, returning its single batch or the finished merge of its two (null if vacant). */
  #completeAt(index: number): SpineBatch | null {
    const level = this.#level(index)
    this.#merging[index] = vacant()
    if (level.batches.length <= 1) return level.batches[0] ?? null
    const merge = level.merge ?? beginMerge(this.#tk, level.batches, null)
    if (merge === null) return null
    return finishMerge(merge, level.batches, this.log)
  }

  /** Draws a lone top batch down to the level its size warrants, possibly starting a merge there. */
  #tidyLayers(): void {
    let length = this.#merging.length
    if (length === 0) return
    const top = this.#level(length - 1)
    if (top.batches.length !== 1) return
    const appropriate = levelFor(top.batches.reduce((s, b) => s + b.len, 0))
    while (appropriate < length - 1) {
      const current = this.#level(length - 2)
      if (current.batches.length === 0) {
        this.#merging.splice(length - 2, 1)
        length = this.#merging.length
        continue
      }
      if (current.batches.length < BATCHES_PER_LEVEL) {
        let smaller = 0
        for (let i = 0; i < length - 2; i++) smaller += this.#level(i).batches.length * 2 ** i
        if (smaller <= Math.floor(2 ** length / 8)) {
          const [removed] = this.#merging.splice(length - 2, 1)
          if (removed === undefined || removed.batches.length !== 1) throw new Error('tidying expected a single batch')
          for (const b of removed.batches) this.#insertAt(b, length - 2)
        }
      }
      break
    }
  }

  #level(i: number): Level {
    const level = this.#merging[i]
    if (level === undefined) throw new Error(`no level ${i}`)
    return level
  }
}
