/**
 * The console in a real browser (Debian's chromium through playwright-core) against a real
 * compactd, used as an operator would: sign in with the token, watch a running compaction's
 * progress bar move and finish, cancel a queued one, flip the kill switch off and on, see a config
 * edit refused inline, open a shard and its spine, and submit a compaction from the form after its
 * dry-run plan; every list it asks for is one bounded page. Every page is checked with axe-core (no serious or critical finding) and
 * photographed into .tmp/screenshots/.
 *
 * The running compaction is held at a known point without timers: the blob reads of the inputs of
 * its last chunk are held (GatedBlob) until the test has seen the bar part-way.
 */
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { Page } from 'playwright-core'
import { checkA11y, launchBrowser } from '../support/browser.js'
import { inputPartKeys, seedShard, smallChunks, startOperatorServer, TOKEN, type OperatorServer } from '../support/operator-server.js'

const SHOTS = join(process.cwd(), '.tmp', 'screenshots')
const WAIT = { timeout: 30_000 }

/** Photographs and axe-checks the page as it is now. */
async function visit(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })
  const violations = await checkA11y(page)
  assert.deepEqual(violations, [], `${name}: accessibility findings ${JSON.stringify(violations, null, 1)}`)
}

/** The page's document, as far as these tests read it (the tests compile without the DOM's types). */
type Doc = { querySelector(selector: string): { value?: number } | null }

/** The `value` of the progress bar inside `selector`. */
const progressOf = (page: Page, selector: string): Promise<number> => page.locator(`${selector} progress`).first().evaluate((el) => (el as unknown as { value: number }).value)

async function serverSupportsMajor(s: OperatorServer): Promise<boolean> {
  const doc = (await (await fetch(`${s.url}/openapi.json`)).json()) as { components?: { schemas?: { SubmitCompaction?: { properties?: Record<string, unknown> } } } }
  return doc.components?.schemas?.SubmitCompaction?.properties?.major !== undefined
}

describe('the console in a real browser', { timeout: 300_000 }, () => {
  it('is used as an operator would, from sign-in to a submitted compaction', async (t) => {
    await mkdir(SHOTS, { recursive: true })
    const s = await startOperatorServer(t)
    const shard = await seedShard(s, 'orders', 17)
    const first = shard.trace.batches[0]
    const second = shard.trace.batches[1]
    assert.ok(first !== undefined && second !== undefined && first.batches.length >= 6, 'the seed makes two full spine batches')
    await smallChunks(s, shard, 0)
    // NB: the running compaction applies its chunks as one output (incremental compaction off), so
    // it ends with one result to show.
    await s.call('PATCH', '/v1/configs', { compaction_concurrency_limit: 1, persist_enable_incremental_compaction: false }, 200)

    const browser = await launchBrowser()
    t.after(() => browser.close())
    const page = await browser.browser.newPage({ viewport: { width: 1400, height: 900 } })
    const pageErrors: string[] = []
    page.on('pageerror', (e) => pageErrors.push(e.message))
    // Every list the console asks for is one bounded page.
    const lists: string[] = []
    page.on('request', (r) => {
      const u = new URL(r.url())
      if (u.pathname === '/v1/shards' || u.pathname === '/v1/compactions') lists.push(`${u.pathname}${u.search}`)
    })

    // `/` redirects to the console, which asks for the token and refuses a wrong one.
    await page.goto(`${s.url}/`)
    assert.match(page.url(), /\/ui$/)
    await page.getByLabel('Bearer token').waitFor(WAIT)
    await visit(page, '01-sign-in')
    await page.getByLabel('Bearer token').fill('not-the-token-at-all')
    await page.getByRole('button', { name: 'Open the console' }).click()
    await page.getByText('The server refused that token.').waitFor(WAIT)
    await page.getByLabel('Bearer token').fill(TOKEN)
    await page.getByRole('button', { name: 'Open the console' }).click()
    await page.getByRole('heading', { name: 'Overview' }).waitFor(WAIT)
    await page.locator('[data-testid=scheduler]', { hasText: 'running' }).waitFor(WAIT)

    // A compaction of the first spine batch, held at its last chunk's inputs.
    const plan = await s.client.submit(shard.shardId, { desc: { lower: first.desc.lower, upper: first.desc.upper }, dryRun: true })
    assert.ok(plan.kind === 'plan' && plan.plan.chunks.length >= 3, 'the compaction plans several chunks')
    const lastChunkInputs = (plan.plan.chunks.at(-1)?.runs ?? []).map((r) => plan.plan.runs[r]?.input as number)
    const parts = inputPartKeys(shard, 0)
    const held = new Set(lastChunkInputs.flatMap((i) => (parts[i] ?? []).map((k) => `${shard.shardId}/${k}`)))
    const hold = s.blob.hold((key) => held.has(key))
    const running = await s.client.submit(shard.shardId, { desc: { lower: first.desc.lower, upper: first.desc.upper } })
    assert.ok(running.kind === 'compaction')
    const runningId = running.compaction.id
    await hold.reached

    // The overview lists it with a live bar; a second compaction waits in the queue (one permit).
    const queued = await s.client.submit(shard.shardId, { desc: { lower: second.desc.lower, upper: second.desc.upper } })
    assert.ok(queued.kind === 'compaction' && queued.compaction.status === 'queued')
    await page.goto(`${s.url}/ui#/`)
    const row = `[data-compaction="${runningId}"]`
    await page.locator(row).waitFor(WAIT)
    await page.waitForFunction((sel) => {
      const doc = (globalThis as unknown as { document: Doc }).document
      const v = doc.querySelector(`${sel} progress`)?.value ?? 0
      return v > 0 && v < 100
    }, row, WAIT)
    await page.locator('[data-testid=queue-depth]', { hasText: '1' }).waitFor(WAIT)
    await visit(page, '02-overview-running')

    // Cancel the queued one from the history, filtered to queued compactions.
    await page.goto(`${s.url}/ui#/compactions?status=queued`)
    const queuedRow = page.locator(`tr[data-compaction="${queued.compaction.id}"]`)
    await queuedRow.waitFor(WAIT)
    await visit(page, '03-compactions-queued')
    await queuedRow.getByRole('button', { name: 'Cancel' }).click()
    await queuedRow.getByRole('button', { name: 'Yes, cancel' }).click()
    await queuedRow.waitFor({ state: 'detached', ...WAIT })
    assert.equal((await s.client.compaction(queued.compaction.id)).status, 'cancelled')

    // The running one's own page: the bar part-way, then (released) at the end.
    await page.goto(`${s.url}/ui#/compactions/${runningId}`)
    const live = '[data-testid=compaction-live]'
    await page.locator(live).waitFor(WAIT)
    const partWay = await progressOf(page, live)
    assert.ok(partWay > 0 && partWay < 100, `part-way progress, got ${partWay}`)
    await visit(page, '04-compaction-running')
    hold.release()
    await page.locator(`${live}[data-status=succeeded]`).waitFor(WAIT)
    assert.equal(await progressOf(page, live), 100)
    await page.locator('ol.timeline li[data-step=succeeded]').waitFor(WAIT)
    assert.equal((await s.client.compaction(runningId)).result, 'applied_exact')
    await page.getByRole('button', { name: 'Show plan' }).click()
    await page.locator('[data-testid=plan]').waitFor(WAIT)
    await visit(page, '05-compaction-done')

    // The kill switch: off, then on, each behind a confirmation; a bad edit is refused inline.
    await page.goto(`${s.url}/ui#/configs`)
    const kill = page.locator('[data-testid=kill-switch]')
    await kill.waitFor(WAIT)
    await page.getByRole('button', { name: 'Pause compaction' }).click()
    await page.getByRole('button', { name: 'Yes, pause compaction' }).click()
    await page.locator('[data-testid=kill-switch][data-value=false]').waitFor(WAIT)
    assert.equal((await s.client.config('compaction_process_requests')).value, false)
    await visit(page, '06-configs-paused')
    await page.getByRole('button', { name: 'Resume compaction' }).click()
    await page.getByRole('button', { name: 'Yes, resume compaction' }).click()
    await page.locator('[data-testid=kill-switch][data-value=true]').waitFor(WAIT)
    assert.equal((await s.client.config('compaction_process_requests')).value, true)
    const queueRow = page.locator('tr[data-config=compaction_queue_size]')
    await queueRow.getByLabel('compaction_queue_size').fill('0')
    await queueRow.getByRole('button', { name: 'Save' }).click()
    await queueRow.getByRole('alert').filter({ hasText: 'compaction_queue_size' }).waitFor(WAIT)
    assert.equal((await s.client.config('compaction_queue_size')).value, 20, 'a refused edit changes nothing')
    await page.locator('table.history tr', { hasText: 'compaction_process_requests' }).first().waitFor(WAIT)
    await visit(page, '07-configs')

    // Shards: search by name, open the shard, its spine drawn box by box.
    await page.goto(`${s.url}/ui#/shards`)
    await page.getByLabel('Name').fill('orders')
    await page.getByRole('button', { name: 'Search' }).click()
    await page.getByRole('link', { name: 'orders' }).click()
    await page.locator('[data-testid=spine]').waitFor(WAIT)
    const now = await s.client.shard(shard.shardId)
    assert.equal(await page.locator('[data-testid=spine] [data-spine-id]').count(), now.trace.batches.length)
    assert.equal(await page.locator('[data-testid=upper]').textContent(), '[170]')
    await visit(page, '08-shard')
    await page.goto(`${s.url}/ui#/shards`)
    await page.getByRole('link', { name: 'orders' }).waitFor(WAIT)
    await visit(page, '09-shards')

    // Submit from the form: the plan first, then the compaction, followed to its end.
    const major = await serverSupportsMajor(s)
    await page.goto(`${s.url}/ui#/shards/${shard.shardId}`)
    await page.getByRole('link', { name: 'Compact…' }).click()
    await page.getByLabel('Shard id').waitFor(WAIT)
    assert.equal(await page.getByLabel('Shard id').inputValue(), shard.shardId)
    if (major) await page.getByLabel(/Major/).check()
    assert.equal(await page.getByRole('button', { name: 'Submit' }).isDisabled(), true, 'Submit waits for a preview')
    await page.getByLabel('Lower').fill('[0')
    await page.getByRole('button', { name: 'Preview plan' }).click()
    await page.getByText('Lower must be a frontier in JSON').waitFor(WAIT)
    await page.getByLabel('Lower').fill('')
    await page.getByRole('button', { name: 'Preview plan' }).click()
    await page.locator('[data-testid=plan]').waitFor(WAIT)
    await visit(page, '10-submit-plan')
    await page.getByRole('button', { name: 'Submit' }).click()
    await page.waitForURL(/#\/compactions\/c[0-9a-f-]{36}$/, WAIT)
    const submittedId = page.url().split('/').at(-1) ?? ''
    await page.locator('[data-testid=compaction-live]:not([data-status=queued]):not([data-status=running])').waitFor(WAIT)
    const submitted = await s.client.compaction(submittedId)
    assert.equal(submitted.source, 'request')
    if (major) {
      assert.equal(submitted.kind, 'major')
      assert.equal(submitted.status, 'succeeded')
      assert.match(submitted.result ?? '', /^applied/)
    }
    await visit(page, '11-submitted')

    assert.deepEqual(pageErrors, [])
    assert.ok(lists.length > 5)
    assert.deepEqual(lists.filter((l) => !/[?&]limit=[0-9]+(&|$)/.test(l)), [], 'every list request carries a limit')
  })
})
