/**
 * The shard name index: unique names across every instance, kept in consensus.
 *
 * A named shard's name has a key `compactd/names/<name>` whose head is a **claim**
 * `{name, shardId, initial}`: the shard that holds the name and its first state. Claims are
 * changed only by the machine's compare-and-set loop (`claim_name`), so two instances claiming one
 * name agree on who got it.
 *
 * The shard is the source of truth; the claim only says which shard to ask:
 * - the holder is live: the name is taken;
 * - the holder is a tombstone: the name is free, and the next claim takes it over (by
 *   compare-and-set from the version that named the tombstone, so two takers cannot both win);
 * - the holder has no state yet (its create is in flight, or its creator died after claiming):
 *   whoever finds it so creates the holder from the claim's `initial` state (rolls the create
 *   forward), and the name is then taken by it. So a claim is a create's commit point: once
 *   written, the shard will exist, and there is never a moment when two live shards hold a name.
 *
 * Names are at most `MAX_NAME_BYTES` bytes of UTF-8 without control characters, so that a claim's
 * key (at most 127 bytes for consensus) carries the name itself: listing consensus keys is
 * listing names, which is how a search by prefix reads nothing but its page. The empty name is no
 * name: any number of shards have it, and it has no claim.
 *
 * NB: shards created before the index existed have no claim: `?name=` does not find them and a
 * new shard may take their name.
 */
import type { ShardId } from '../core/ids.js'
import type { Consensus } from '../location/consensus.js'
import { LocationError } from '../location/errors.js'
import { breakWith, continueWith, Machine, type MachineOptions, type StateCodec } from './machine.js'
import { isDeleted, shardStateCodec, type ShardState } from './state.js'

export const NAME_KEY_PREFIX = 'compactd/names/'

/** The longest shard name, in UTF-8 bytes (a claim's key must stay within consensus's 127). */
export const MAX_NAME_BYTES = 100

/** Rounds of read-then-claim before giving up on a name other creates keep changing. */
const MAX_CLAIM_ROUNDS = 16

/** Why `name` cannot be a shard's name (`field` names it in the message), or null when it can. */
export function checkShardName(name: string, field: string): string | null {
  if (Buffer.from(name, 'utf8').toString('utf8') !== name) return `${field}: must be well-formed Unicode (it holds a lone surrogate)`
  const control = /\p{Cc}/u.exec(name)
  if (control !== null) return `${field}: must not contain control characters (U+${control[0].codePointAt(0)?.toString(16).toUpperCase().padStart(4, '0')} at ${control.index})`
  const bytes = Buffer.byteLength(name, 'utf8')
  if (bytes > MAX_NAME_BYTES) return `${field}: must be at most ${MAX_NAME_BYTES} bytes of UTF-8; this one is ${bytes}`
  return null
}

/** The consensus key of a (non-empty, valid) name's claim. */
export function nameKey(name: string): string {
  return `${NAME_KEY_PREFIX}${name}`
}

/** The name a consensus key claims, or null for a key that is not a claim. */
export function nameOfKey(key: string): string | null {
  return key.startsWith(NAME_KEY_PREFIX) && key.length > NAME_KEY_PREFIX.length ? key.slice(NAME_KEY_PREFIX.length) : null
}

export interface NameClaim {
  readonly name: string
  readonly shardId: ShardId
  /** The shard's first state: what a create rolled forward writes. */
  readonly initial: ShardState
}

export const nameClaimCodec: StateCodec<NameClaim> = {
  encode: (c) => ({ name: c.name, shardId: c.shardId, initial: shardStateCodec.encode(c.initial) }),
  decode: (json) => {
    const j = json as { name: string; shardId: string; initial: unknown }
    return { name: j.name, shardId: j.shardId as ShardId, initial: shardStateCodec.decode(j.initial) }
  },
}

/** What the index asks of the shards: their states, and a create rolled forward. */
export interface ClaimHolders {
  /** The shard's latest state, or null when it has none. */
  state(shardId: ShardId): Promise<ShardState | null>
  /** Creates the shard with `initial` unless it has a state; returns its state afterwards. */
  createIfAbsent(initial: ShardState): Promise<ShardState>
}

export type ClaimResult = { readonly kind: 'claimed' } | { readonly kind: 'taken'; readonly holder: ShardId }

export class NameIndex {
  readonly #machine: Machine<NameClaim>

  constructor(consensus: Consensus, opts: MachineOptions = {}) {
    this.#machine = new Machine(consensus, nameClaimCodec, opts)
  }

  /**
   * Claims `initial.name` for the shard `initial` describes (not yet created): `claimed`, or
   * `taken` with the live shard that holds it. Throws a determinate LocationError when other claims
   * keep changing the name for `MAX_CLAIM_ROUNDS` rounds.
   */
  async claim(initial: ShardState, holders: ClaimHolders): Promise<ClaimResult> {
    const key = nameKey(initial.name)
    const mine: NameClaim = { name: initial.name, shardId: initial.shardId, initial }
    for (let round = 0; round < MAX_CLAIM_ROUNDS; round++) {
      const seen = await this.#machine.head(key)
      if (seen !== null && seen.state.shardId !== initial.shardId) {
        const holder = seen.state
        const state = (await holders.state(holder.shardId)) ?? (await holders.createIfAbsent(holder.initial))
        if (!isDeleted(state)) return { kind: 'taken', holder: holder.shardId }
      }
      // NB: only from the version just judged: a claim written meanwhile must be judged first.
      const r = await this.#machine.apply(key, 'claim_name', (cur) => {
        if (cur !== null && cur.state.shardId === initial.shardId) return breakWith(true)
        return cur?.seqno === seen?.seqno ? continueWith(mine, true) : breakWith(false)
      })
      if (r.result) return { kind: 'claimed' }
    }
    throw new LocationError('determinate', `claiming the shard name "${initial.name}": other creates kept changing it for ${MAX_CLAIM_ROUNDS} rounds`)
  }

  /** The shard the index names for `name` (live, deleted, or not created yet), or null. */
  async holder(name: string): Promise<ShardId | null> {
    return (await this.#machine.head(nameKey(name)))?.state.shardId ?? null
  }
}
