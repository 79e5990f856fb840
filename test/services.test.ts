import assert from 'node:assert/strict'
import { mkdtemp, rm, stat, truncate } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { Registry } from 'prom-client'
import type { Blob } from '../src/location/blob.js'
import type { Consensus } from '../src/location/consensus.js'
import { openBlob, openConsensus } from '../src/location/open.js'
import { createServices, MIN_FREE_BYTES } from '../src/services.js'
import { parseSettings } from '../src/settings.js'
import { testSettings } from './helper.js'
import { fill, mountTmpfs } from './support/tmpfs.js'

/** Records close calls into `log`. */
function closeSpy<T extends Blob | Consensus>(store: T, name: string, log: string[]): T {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'close') {
        return async () => {
          log.push(name)
          await target.close()
        }
      }
      const value = Reflect.get(target, prop, receiver) as unknown
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

describe('createServices', () => {
  it('opens the file stores under the data dir, creating their directories', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'compactd-services-'))
    t.after(() => rm(dataDir, { recursive: true, force: true }))
    const services = await createServices(parseSettings(['--data-dir', dataDir], {}))
    try {
      assert.ok((await stat(join(dataDir, 'blob'))).isDirectory())
      assert.ok((await stat(join(dataDir, 'consensus'))).isDirectory())
      await services.blob.set('a/b', new Uint8Array([1, 2, 3]))
      assert.deepEqual(await services.blob.get('a/b'), new Uint8Array([1, 2, 3]))
      assert.deepEqual(await services.consensus.compareAndSet('k', null, { seqno: 0, data: new Uint8Array([9]) }), { kind: 'committed' })
      assert.ok((await stat(join(dataDir, 'blob', 'a', 'b'))).isFile())
    } finally {
      await services.close()
    }
  })

  it('says not ready while the file stores have under MIN_FREE_BYTES free, and ready once space is back', async (t) => {
    const tmpfs = await mountTmpfs(4)
    if (typeof tmpfs === 'string') {
      t.skip(`cannot mount a size-limited tmpfs: ${tmpfs}`)
      return
    }
    t.after(() => tmpfs.close())
    const services = await createServices(parseSettings(['--data-dir', join(tmpfs.dir, 'data')], {}))
    t.after(() => services.close())
    // NB: the compactor is not started here, so the scheduler check fails throughout: the stores' checks are what is looked at.
    const stores = async (): Promise<{ blob: string; consensus: string }> => {
      const { blob, consensus } = (await services.checkReadiness()).checks
      return { blob, consensus }
    }
    assert.deepEqual(await stores(), { blob: 'ok', consensus: 'ok' })
    const filler = join(tmpfs.dir, 'filler')
    await fill(filler, MIN_FREE_BYTES - 4096)
    const full = await stores()
    for (const check of [full.blob, full.consensus]) assert.match(check, /no space left on the file system of .*data\/(blob|consensus) \([0-9]+ bytes free\): writes are refused/)
    await truncate(filler, 0)
    assert.deepEqual(await stores(), { blob: 'ok', consensus: 'ok' })
  })

  it('refuses to start on a data dir it cannot create, closing what it opened', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'compactd-services-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const log: string[] = []
    const rawBlob = closeSpy(await openBlob('mem://'), 'blob', log)
    const settings = testSettings({ consensusUrl: `file:///dev/null/consensus` })
    await assert.rejects(createServices(settings, { rawBlob }), /data directory \/dev\/null\/consensus is not usable/)
    assert.deepEqual(log, ['blob'])
  })

  it('closes the stores once, consensus before blob, however often close is called', async () => {
    const log: string[] = []
    const services = await createServices(testSettings(), {
      rawBlob: closeSpy(await openBlob('mem://'), 'blob', log),
      rawConsensus: closeSpy(await openConsensus('mem://'), 'consensus', log),
    })
    await Promise.all([services.close(), services.close()])
    await services.close()
    assert.deepEqual(log, ['consensus', 'blob'])
  })

  it('uses the registry it is given, and a fresh one otherwise', async () => {
    const registry = new Registry()
    const a = await createServices(testSettings(), { registry })
    const b = await createServices(testSettings())
    try {
      assert.equal(a.registry, registry)
      assert.notEqual(b.registry, registry)
      assert.ok(registry.getSingleMetric('persist_compaction_requested_total'))
    } finally {
      await a.close()
      await b.close()
    }
  })
})
