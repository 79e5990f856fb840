/**
 * The console's shard page on a shard whose compaction fell behind: 300 batches appended with
 * nothing compacted. The page draws the spine from the spine route (each spine batch counted), so
 * what it fetches is kilobytes however long the trace; it used to fetch the whole shard (every
 * hollow batch with its parts: 3.7 MB at 8,000 batches) on open and again every 5 seconds.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { ShardJson } from '../../src/client/wire.js'
import { launchBrowser } from '../support/browser.js'
import { seedShard, startOperatorServer, TOKEN } from '../support/operator-server.js'

const WAIT = { timeout: 30_000 }
const BATCHES = 300

describe('the console on a long trace', { timeout: 180_000 }, () => {
  it("a shard page fetches the shard's spine counted, not every batch of its trace", async (t) => {
    const s = await startOperatorServer(t)
    const shard = await seedShard(s, 'behind', BATCHES, 1)
    const whole = (await s.call('GET', `/v1/shards/${shard.shardId}`, undefined, 200)) as ShardJson
    const wholeBytes = JSON.stringify(whole).length
    assert.equal(whole.stats?.batches, BATCHES)

    const browser = await launchBrowser()
    t.after(() => browser.close())
    const page = await browser.browser.newPage({ viewport: { width: 1400, height: 900 } })
    const fetched: { path: string; bytes: number }[] = []
    page.on('response', (r) => {
      const path = new URL(r.url()).pathname
      if (path.startsWith(`/v1/shards/${shard.shardId}`)) void r.body().then((b) => fetched.push({ path, bytes: b.length }), () => undefined)
    })
    await page.goto(`${s.url}/ui#/shards/${shard.shardId}`)
    await page.getByLabel('Bearer token').fill(TOKEN)
    await page.getByRole('button', { name: 'Open the console' }).click()
    await page.locator('[data-testid=spine]').waitFor(WAIT)

    // The drawing shows every spine batch, and their hollow batches add up to the trace's.
    const boxes = page.locator('[data-testid=spine] [data-spine-id]')
    assert.equal(await boxes.count(), whole.trace.batches.length)
    const hollow = (await page.locator('.spine-table tbody tr td:nth-child(8)').allTextContents()).map(Number)
    assert.deepEqual(hollow, whole.trace.batches.map((b) => b.batches.length))
    assert.equal(hollow.reduce((a, b) => a + b, 0), BATCHES)

    await page.waitForLoadState('networkidle')
    const shardBytes = fetched.reduce((n, f) => n + f.bytes, 0)
    assert.ok(!fetched.some((f) => f.path === `/v1/shards/${shard.shardId}`), `the whole shard is not fetched: ${JSON.stringify(fetched)}`)
    assert.ok(fetched.some((f) => f.path === `/v1/shards/${shard.shardId}/spine`))
    assert.ok(shardBytes * 20 < wholeBytes, `the page fetched ${shardBytes} B of the shard; the whole shard is ${wholeBytes} B`)
  })
})
