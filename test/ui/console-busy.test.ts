/**
 * The console's overview while many compactions run at once (8, held part-way). A browser opens at
 * most 6 connections to one server over HTTP/1.1, and an event stream holds one for as long as its
 * compaction runs: an overview that followed each running compaction by its own stream held all
 * six, and every other request of the tab waited until compactions ended: with 8 running, not one
 * of its polls completed in 8 s, so its queue depth, running list, failures and kill switch froze. The overview shows the running compactions from its polled list; a compaction's own page
 * follows its one stream. Deterministic: the compactions are held by their blob reads.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Page } from 'playwright-core'
import { launchBrowser } from '../support/browser.js'
import { inputPartKeys, seedShard, startOperatorServer, TOKEN } from '../support/operator-server.js'

const WAIT = { timeout: 20_000 }
const RUNNING = 8

/** Event streams the page has open now. */
function streams(page: Page): { readonly open: () => number } {
  const open = new Set<unknown>()
  page.on('request', (r) => void (r.url().endsWith('/events') && open.add(r)))
  const done = (r: unknown): void => void open.delete(r)
  page.on('requestfinished', done)
  page.on('requestfailed', done)
  return { open: () => open.size }
}

describe('the console while many compactions run', { timeout: 180_000 }, () => {
  it('the overview shows them all and keeps polling; a compaction page holds one stream, closed on leaving', async (t) => {
    // NB: a worker per compaction: a held compaction keeps its worker waiting for the held read.
    const s = await startOperatorServer(t, { workers: RUNNING })
    const shards = []
    for (let i = 0; i < RUNNING; i++) shards.push(await seedShard(s, `busy-${i}`, 2, 5))
    await s.call('PATCH', '/v1/configs', { compaction_concurrency_limit: RUNNING }, 200)
    const held: string[] = []
    for (const shard of shards) {
      const keys = new Set(inputPartKeys(shard, 0).flat().map((k) => `${shard.shardId}/${k}`))
      const hold = s.blob.hold((key) => keys.has(key))
      const sb = shard.trace.batches[0]
      assert.ok(sb !== undefined)
      const submitted = await s.client.submit(shard.shardId, { desc: { lower: sb.desc.lower, upper: sb.desc.upper } })
      assert.ok(submitted.kind === 'compaction')
      await hold.reached
      held.push(submitted.compaction.id)
    }
    assert.equal((await s.client.listCompactions({ status: 'running' })).compactions.length, RUNNING)

    const browser = await launchBrowser()
    t.after(() => browser.close())
    const page = await browser.browser.newPage({ viewport: { width: 1400, height: 900 } })
    const sse = streams(page)
    await page.goto(`${s.url}/ui`)
    await page.getByLabel('Bearer token').fill(TOKEN)
    await page.getByRole('button', { name: 'Open the console' }).click()
    await page.getByRole('heading', { name: 'Overview' }).waitFor(WAIT)
    await page.locator('li.running-row progress').nth(RUNNING - 1).waitFor(WAIT)
    assert.equal(await page.locator('li.running-row').count(), RUNNING)
    // Its polls go on: the kill switch turned off elsewhere shows up.
    await s.call('PATCH', '/v1/configs', { compaction_process_requests: false }, 200)
    await page.getByText('kill switch: compaction paused').waitFor(WAIT)
    await s.call('PATCH', '/v1/configs', { compaction_process_requests: true }, 200)
    await page.getByText('kill switch: compaction on').waitFor(WAIT)
    assert.equal(sse.open(), 0, 'the overview holds no event stream')

    // The tab still loads the next page while every compaction runs.
    await page.getByRole('link', { name: 'Shards', exact: true }).click()
    await page.getByRole('link', { name: 'busy-0' }).waitFor(WAIT)
    // A compaction's page follows it live, by its one stream; leaving the page closes it.
    await page.evaluate((id) => void ((globalThis as unknown as { location: { hash: string } }).location.hash = `#/compactions/${id}`), held[0])
    await page.locator('progress').first().waitFor(WAIT)
    assert.ok(sse.open() <= 1, `${sse.open()} event streams open on a compaction's page`)
    await page.getByRole('link', { name: 'Overview', exact: true }).click()
    await page.locator('li.running-row').nth(RUNNING - 1).waitFor(WAIT)
    assert.equal(sse.open(), 0, 'no event stream left open after leaving the compaction page')
  })
})
