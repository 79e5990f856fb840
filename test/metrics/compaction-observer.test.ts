import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Registry } from 'prom-client'
import { createMetrics } from '../../src/metrics/metrics.js'

const progress = (updatesRead: number, updatesWritten: number, bytesRead: number) => ({ updatesRead, updatesWritten, bytesRead })

async function value(registry: Registry, series: string): Promise<number | undefined> {
  const line = (await registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe('CompactionObserver', () => {
  it('adds what each compaction moved since its last snapshot, across interleaved compactions', async () => {
    const registry = new Registry()
    const m = createMetrics(registry)
    const o = m.throughput.observer
    o.observe({ id: 'a', progress: progress(10, 5, 100), final: false, ran: null })
    o.observe({ id: 'b', progress: progress(1, 1, 10), final: false, ran: null })
    o.observe({ id: 'a', progress: progress(30, 12, 300), final: false, ran: null })
    o.observe({ id: 'a', progress: progress(20, 12, 300), final: false, ran: null }) // backwards: adds nothing
    o.observe({ id: 'a', progress: progress(40, 20, 400), final: true, ran: { outcome: 'applied', seconds: 2 } })
    o.observe({ id: 'b', progress: progress(1, 1, 10), final: true, ran: { outcome: 'timed_out', seconds: 90 } })
    assert.equal(await value(registry, 'persist_compaction_updates_read_total'), 41)
    assert.equal(await value(registry, 'persist_compaction_updates_written_total'), 21)
    assert.equal(await value(registry, 'persist_compaction_bytes_read_total'), 410)
    assert.equal(await value(registry, 'persist_compaction_duration_seconds_count{outcome="applied"}'), 1)
    assert.equal(await value(registry, 'persist_compaction_duration_seconds_sum{outcome="timed_out"}'), 90)
    assert.equal(await value(registry, 'persist_compaction_duration_seconds_count{outcome="failed"}'), 0)
    assert.equal(o.tracked, 0, 'final compactions are forgotten')
  })

  it('observes no duration for a compaction that never ran', async () => {
    const registry = new Registry()
    const m = createMetrics(registry)
    m.throughput.observer.observe({ id: 'a', progress: progress(0, 0, 0), final: true, ran: null })
    const text = await registry.metrics()
    assert.doesNotMatch(text, /^persist_compaction_duration_seconds_count\{[^}]*\} [1-9]/m)
  })
})
