/**
 * compactctl end to end: the real launcher (`bin/compactctl.js`, as `npx compactctl` runs it) in a
 * child process against a real compactd listening on loopback. Checks output (human and --json
 * shapes), the progress lines of `compact --wait`, and the documented exit codes.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, it } from 'node:test'
import type { CompactionJson, ShardJson } from '../../src/client/wire.js'
import { ctl, ctlOnTerminal, json } from '../support/compactctl.js'
import { inputPartKeys, seedShard, smallChunks, startOperatorServer, TOKEN } from '../support/operator-server.js'

/** Percentages of the progress lines compact --wait writes on stderr (no terminal: a line per event). */
const percents = (stderr: string): number[] => [...stderr.matchAll(/\] +([0-9]+)% /g)].map((m) => Number(m[1]))

describe('compactctl against a real server', { timeout: 300_000 }, () => {
  it('status, shards, compact --wait, jobs and configs, with --json shapes and exit codes', async (t) => {
    const s = await startOperatorServer(t)
    const shard = await seedShard(s, 'cli', 17)
    const first = shard.trace.batches[0]
    assert.ok(first !== undefined)
    await smallChunks(s, shard, 0)

    // status
    const status = await ctl(s, ['status', '--json'])
    assert.equal(status.code, 0, status.stderr)
    const st = json<{ readiness: { status: string; checks: { scheduler: string } }; queueDepth: number; running: unknown[]; recentFailures: unknown[] }>(status)
    assert.equal(st.readiness.checks.scheduler, 'running')
    assert.equal(st.queueDepth, 0)
    assert.deepEqual(st.running, [])
    const human = await ctl(s, ['status'])
    assert.match(human.stdout, /^scheduler: +running$/m)

    // token and reachability
    const noToken = await ctl(s, ['status'], { COMPACTD_TOKEN: '' })
    assert.equal(noToken.code, 4)
    assert.match(noToken.stderr, /^compactctl: UNAUTHORIZED: missing bearer token.* \(give compactctl the token: COMPACTD_TOKEN, or --token-file\/COMPACTD_TOKEN_FILE\)\n$/)
    const wrongToken = await ctl(s, ['status'], { COMPACTD_TOKEN: 'wrong-token-wrong-token' })
    assert.deepEqual([wrongToken.code, wrongToken.stderr], [4, 'compactctl: UNAUTHORIZED: invalid bearer token (compactctl sent the token of --token/COMPACTD_TOKEN)\n'])
    const flagToken = await ctl(s, ['--token', TOKEN, 'configs', 'get', 'compaction_queue_size'], { COMPACTD_TOKEN: 'wrong-token-wrong-token' })
    assert.equal(flagToken.code, 0, flagToken.stderr)
    const tokenFile = join(await mkdtemp(join(tmpdir(), 'compactctl-token-')), 'tokens')
    t.after(() => rm(dirname(tokenFile), { recursive: true, force: true }))
    await writeFile(tokenFile, `# rotation: the new token last\nold-token-old-token\n${TOKEN}\n\n`)
    const fileToken = await ctl(s, ['--token-file', tokenFile, 'configs', 'get', 'compaction_queue_size'], { COMPACTD_TOKEN: '' })
    assert.equal(fileToken.code, 0, fileToken.stderr)
    const envFile = await ctl(s, ['status'], { COMPACTD_TOKEN: '', COMPACTD_TOKEN_FILE: tokenFile })
    assert.equal(envFile.code, 0, envFile.stderr)
    // A token appended to the client's copy that the server does not take (yet).
    const staleFile = `${tokenFile}.stale`
    await writeFile(staleFile, `${TOKEN}\nnot-yet-accepted-token\n`)
    const refusedFile = await ctl(s, ['status', '--token-file', staleFile], { COMPACTD_TOKEN: '' })
    assert.deepEqual(
      [refusedFile.code, refusedFile.stderr],
      [4, `compactctl: UNAUTHORIZED: invalid bearer token (compactctl sent the last token of ${staleFile} (--token-file/COMPACTD_TOKEN_FILE); a server takes a token added to its own file once it reads the file again (SIGHUP, or within 30 s))\n`],
    )
    const missingFile = await ctl(s, ['status', '--token-file', `${tokenFile}.gone`], { COMPACTD_TOKEN: '' })
    assert.deepEqual([missingFile.code, missingFile.stderr], [2, `compactctl: USAGE: --token-file: cannot read ${tokenFile}.gone (ENOENT)\n`])
    const unreachable = await ctl(s, ['status', '--url', 'http://127.0.0.1:9'])
    assert.equal(unreachable.code, 3)
    assert.equal(unreachable.stderr.split('\n').filter((l) => l !== '').length, 1, 'errors are one line')
    assert.equal((await ctl(s, ['bogus'])).code, 2)
    assert.equal((await ctl(s, ['shards', 'ls', '--limit', '0'])).code, 2)

    // shards
    const ls = await ctl(s, ['shards', 'ls', '--json'])
    assert.equal(ls.code, 0, ls.stderr)
    assert.deepEqual(json<{ shards: { name: string }[] }>(ls).shards.map((x) => x.name), ['cli'])
    assert.match((await ctl(s, ['shards', 'ls'])).stdout, new RegExp(`^cli +${shard.shardId} `, 'm'))
    const show = await ctl(s, ['shards', 'show', 'cli'])
    assert.equal(show.code, 0, show.stderr)
    assert.match(show.stdout, /^spine: 3 batches on 2 levels/m)
    assert.match(show.stdout, /^ {2}L8 +0-8 +█+·* +\[0\]\.\.\[80\] +160 upd .* 8 batches\/8 runs +merging 0-16$/m)
    assert.match(show.stdout, /^ {2}merge in progress at L8: 0-16, since \[0\], [0-9,]+ work left$/m)
    const showJson = json<ShardJson>(await ctl(s, ['shards', 'show', shard.shardId, '--json']))
    assert.equal(showJson.trace.batches.length, 3)
    const missing = await ctl(s, ['shards', 'show', 'no-such-shard'])
    assert.equal(missing.code, 5)
    assert.match(missing.stderr, /^compactctl: SHARD_NOT_FOUND: no shard named "no-such-shard"/)
    assert.equal((await ctl(s, ['shards', 'delete', 'cli'])).code, 2, 'delete asks for --yes')

    // compact: the plan, then a run followed to its end with its progress on stderr. NB: applied
    // as one output (incremental compaction off), so the compaction has one result to print.
    await s.call('PATCH', '/v1/configs', { persist_enable_incremental_compaction: false }, 200)
    const dry = await ctl(s, ['compact', 'cli', '--desc', '[0]..[80]', '--dry-run', '--json'])
    assert.equal(dry.code, 0, dry.stderr)
    assert.ok(json<{ plan: { chunks: unknown[] } }>(dry).plan.chunks.length >= 3)
    assert.equal((await ctl(s, ['compact', 'cli', '--desc', '0..80'])).code, 2)
    const waited = await ctl(s, ['compact', 'cli', '--desc', '[0]..[80]', '--wait'])
    assert.equal(waited.code, 0, waited.stderr)
    assert.match(waited.stdout, /^c[0-9a-f-]{36} succeeded \(applied_exact\) in /)
    const seen = percents(waited.stderr)
    assert.ok(seen.length >= 2, `progress lines: ${waited.stderr}`)
    assert.deepEqual([...seen].sort((a, b) => a - b), seen, 'progress never goes back')
    assert.equal(seen.at(-1), 100)
    const id = /^(c[0-9a-f-]{36})/.exec(waited.stdout)?.[1] ?? ''

    // jobs
    const jobs = json<{ compactions: CompactionJson[] }>(await ctl(s, ['jobs', 'ls', '--shard', 'cli', '--json']))
    assert.ok(jobs.compactions.some((c) => c.id === id && c.status === 'succeeded'))
    const jobShow = await ctl(s, ['jobs', 'show', id])
    assert.match(jobShow.stdout, /^timeline:$/m)
    assert.match(jobShow.stdout, /succeeded +applied_exact/)
    const watchDone = await ctl(s, ['jobs', 'watch', id, '--json'])
    assert.equal(watchDone.code, 0)
    assert.equal(json<CompactionJson>(watchDone).result, 'applied_exact')

    // cancel a queued compaction: one permit, held by a running one
    await s.call('PATCH', '/v1/configs', { compaction_concurrency_limit: 1 }, 200)
    const second = (await s.client.shard(shard.shardId)).trace.batches.find((b) => b.id === '8-16')
    assert.ok(second !== undefined)
    const keys = new Set(inputPartKeys(await s.client.shard(shard.shardId), 1).flat().map((k) => `${shard.shardId}/${k}`))
    const hold = s.blob.hold((key) => keys.has(key))
    const running = await s.client.submit(shard.shardId, { desc: { lower: second.desc.lower, upper: second.desc.upper } })
    await hold.reached
    const queued = await s.client.submit(shard.shardId, { desc: { lower: second.desc.lower, upper: second.desc.upper } })
    assert.ok(running.kind === 'compaction' && queued.kind === 'compaction' && queued.compaction.status === 'queued')
    const cancel = await ctl(s, ['jobs', 'cancel', queued.compaction.id, '--json'])
    assert.equal(cancel.code, 0, cancel.stderr)
    assert.equal(json<CompactionJson>(cancel).status, 'cancelled')
    const again = await ctl(s, ['jobs', 'cancel', queued.compaction.id, '--json'])
    assert.equal(again.code, 6)
    assert.equal(json<{ error: { code: string; status: number; exitCode: number } }>(again).error.code, 'ALREADY_FINISHED')
    const cancelRunning = await ctl(s, ['jobs', 'cancel', running.compaction.id])
    assert.equal(cancelRunning.code, 0, cancelRunning.stderr)
    hold.release()
    const watchCancelled = await ctl(s, ['jobs', 'watch', running.compaction.id])
    assert.equal(watchCancelled.code, 7)

    // configs: refused edits name the config; the kill switch makes a waited compaction fail
    const refused = await ctl(s, ['configs', 'set', 'compaction_queue_size=0'])
    assert.equal(refused.code, 6)
    assert.match(refused.stderr, /^compactctl: INVALID_CONFIG: .*compaction_queue_size/)
    const off = await ctl(s, ['configs', 'set', 'compaction_process_requests=false', '--json'])
    assert.equal(off.code, 0, off.stderr)
    assert.deepEqual(json<{ configs: { name: string; value: unknown }[] }>(off).configs.map((c) => [c.name, c.value]), [['compaction_process_requests', false]])
    assert.equal(json<{ value: unknown }>(await ctl(s, ['configs', 'get', 'compaction_process_requests', '--json'])).value, false)
    const disabled = await ctl(s, ['compact', 'cli', '--desc', '[0]..[80]', '--wait'])
    assert.equal(disabled.code, 7, disabled.stdout + disabled.stderr)
    assert.match(disabled.stdout, /COMPACTION_DISABLED: compaction disabled/)
    assert.equal((await ctl(s, ['configs', 'set', 'compaction_process_requests=true'])).code, 0)
    const history = json<{ changes: { name: string; new: unknown }[] }>(await ctl(s, ['configs', 'history', '--limit', '2', '--json']))
    assert.deepEqual(history.changes[0], { ...history.changes[0], name: 'compaction_process_requests', new: true })
    assert.equal(history.changes.length, 2)

    // On a terminal, cli-progress draws the bar in place (carriage returns, no line per event).
    const tty = await ctlOnTerminal(s, ['compact', 'cli', '--desc', '[0]..[80]', '--wait'])
    assert.equal(tty.code, 0, tty.stdout)
    assert.match(tty.stdout, /\] 100% \| succeeded \| ([0-9]+)\/\1 chunks/)
    assert.ok(tty.stdout.includes('\u001b[1G'), 'the bar is redrawn in place (cursor to column 1)')

    // A range across two spine batches can never apply: refused up front, pointing to --major.
    const across = await ctl(s, ['compact', 'cli', '--desc', '[0]..[160]', '--wait', '--json'])
    assert.equal(across.code, 6, across.stdout + across.stderr)
    assert.match(across.stdout + across.stderr, /spans 2 spine batches.*major/)
    // A since beyond the spine batch's cannot apply either, but that is only known at the end: no effect.
    const beyond = await ctl(s, ['compact', 'cli', '--desc', '{"lower":[0],"upper":[80],"since":[5]}', '--wait', '--json'])
    assert.equal(beyond.code, 8, beyond.stdout + beyond.stderr)
    const beyondJson = json<CompactionJson & { reason?: { code: string } }>(beyond)
    assert.equal(beyondJson.status, 'not_applied', beyond.stdout)
    assert.equal(beyondJson.reason?.code, 'INVALID_SINCE')
    // Major merges the whole trace into one batch.
    const major = await ctl(s, ['compact', 'cli', '--major', '--wait', '--json'])
    assert.equal(major.code, 0, major.stdout + major.stderr)
    assert.deepEqual([json<CompactionJson & { kind: string }>(major).kind, json<CompactionJson>(major).status], ['major', 'succeeded'])
    const afterMajor = json<{ shardId: string; trace: { batches: unknown[] } }>(await ctl(s, ['shards', 'show', 'cli', '--json']))
    assert.equal(afterMajor.trace.batches.length, 1)
    // Deleting asks for --yes; then the shard is gone (410: exit 5).
    assert.equal((await ctl(s, ['shards', 'delete', 'cli', '--yes'])).code, 0)
    assert.equal((await ctl(s, ['shards', 'show', afterMajor.shardId])).code, 5)
  })
})
