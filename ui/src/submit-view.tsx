/**
 * Submit a compaction: the form first shows the dry-run plan of exactly what it would submit; the
 * Submit button is enabled only for the values previewed. Bad input is named inline (the field and
 * what to type), and the server's own 4xx answers are shown as they come.
 */
import { useState } from 'preact/hooks'
import { isApiError } from '../../src/client/api-client.js'
import type { AntichainJson, DryRunPlanJson, SubmitBody } from '../../src/client/wire.js'
import { useApi } from './hooks.js'
import { PlanTable } from './plan-table.js'
import { href, navigate, type Route } from './router.js'

interface FormValues {
  shardId: string
  major: boolean
  lower: string
  upper: string
  since: string
  deadline: string
}

type Parsed = { ok: true; shardId: string; body: SubmitBody } | { ok: false; field: keyof FormValues; message: string }

function frontier(text: string, field: keyof FormValues, label: string): { ok: true; value: AntichainJson | undefined } | { ok: false; field: keyof FormValues; message: string } {
  if (text.trim() === '') return { ok: true, value: undefined }
  try {
    const v = JSON.parse(text) as unknown
    if (Array.isArray(v)) return { ok: true, value: v as AntichainJson }
  } catch {
    // fall through to the message below
  }
  return { ok: false, field, message: `${label} must be a frontier in JSON, like [0], [] or [[0,1]]` }
}

export function parseForm(v: FormValues): Parsed {
  if (!/^s[0-9a-f-]{36}$/.test(v.shardId.trim())) return { ok: false, field: 'shardId', message: 'Shard id must be a shard id: s followed by a UUID' }
  const lower = frontier(v.lower, 'lower', 'Lower')
  if (!lower.ok) return lower
  const upper = frontier(v.upper, 'upper', 'Upper')
  if (!upper.ok) return upper
  const since = frontier(v.since, 'since', 'Since')
  if (!since.ok) return since
  if ((lower.value === undefined) !== (upper.value === undefined)) return { ok: false, field: lower.value === undefined ? 'lower' : 'upper', message: 'Give both lower and upper, or neither (the whole trace)' }
  if (v.deadline.trim() !== '' && !/^[0-9]+(h|m|s|ms)$/.test(v.deadline.trim())) return { ok: false, field: 'deadline', message: 'Deadline must be a duration like 30s, 1500ms or 2m' }
  const body: SubmitBody = {}
  if (lower.value !== undefined && upper.value !== undefined) body.desc = { lower: lower.value, upper: upper.value, ...(since.value === undefined ? {} : { since: since.value }) }
  if (v.major) body.major = true
  if (v.deadline.trim() !== '') body.deadline = v.deadline.trim()
  return { ok: true, shardId: v.shardId.trim(), body }
}

export function SubmitView({ route }: { route: Route }) {
  const client = useApi()
  const [values, setValues] = useState<FormValues>({ shardId: route.params.get('shardId') ?? '', major: route.params.get('major') === 'true', lower: '', upper: '', since: '', deadline: '' })
  const [plan, setPlan] = useState<{ key: string; plan: DryRunPlanJson } | null>(null)
  const [problem, setProblem] = useState<{ field: keyof FormValues | null; message: string } | null>(null)
  const [busy, setBusy] = useState(false)
  const key = JSON.stringify(values)
  const set = <K extends keyof FormValues>(k: K, v: FormValues[K]): void => setValues((old) => ({ ...old, [k]: v }))

  const run = async (dryRun: boolean): Promise<void> => {
    const parsed = parseForm(values)
    if (!parsed.ok) {
      setProblem({ field: parsed.field, message: parsed.message })
      return
    }
    setBusy(true)
    try {
      const answer = await client.submit(parsed.shardId, { ...parsed.body, dryRun })
      setProblem(null)
      if (answer.kind === 'plan') setPlan({ key, plan: answer.plan })
      else navigate(href(['compactions', answer.compaction.id]))
    } catch (err) {
      setProblem({ field: null, message: isApiError(err) ? `${err.code}: ${err.message}` : String(err) })
    } finally {
      setBusy(false)
    }
  }

  const fieldError = (f: keyof FormValues) =>
    problem?.field === f ? (
      <span class="field-error" id={`err-${f}`} role="alert">{problem.message}</span>
    ) : null
  const described = (f: keyof FormValues) => (problem?.field === f ? { 'aria-describedby': `err-${f}`, 'aria-invalid': true } : {})
  const previewed = plan !== null && plan.key === key

  return (
    <>
      <h1>Submit a compaction</h1>
      <form
        class="submit-form"
        aria-label="Compaction request"
        onSubmit={(e) => {
          e.preventDefault()
          void run(!previewed)
        }}
      >
        <div class="field">
          <label for="s-shard">Shard id</label>
          <input id="s-shard" name="shardId" value={values.shardId} onInput={(e) => set('shardId', e.currentTarget.value)} placeholder="s…" required {...described('shardId')} />
          {fieldError('shardId')}
        </div>
        <div class="field checkbox">
          <input id="s-major" name="major" type="checkbox" checked={values.major} onChange={(e) => set('major', e.currentTarget.checked)} />
          <label for="s-major">Major: merge the whole range into one batch at the shard’s since</label>
        </div>
        <fieldset>
          <legend>Range (leave both empty for the whole trace)</legend>
          <div class="field">
            <label for="s-lower">Lower</label>
            <input id="s-lower" name="lower" value={values.lower} onInput={(e) => set('lower', e.currentTarget.value)} placeholder="[0]" {...described('lower')} />
            {fieldError('lower')}
          </div>
          <div class="field">
            <label for="s-upper">Upper</label>
            <input id="s-upper" name="upper" value={values.upper} onInput={(e) => set('upper', e.currentTarget.value)} placeholder="[100]" {...described('upper')} />
            {fieldError('upper')}
          </div>
          <div class="field">
            <label for="s-since">Since (optional)</label>
            <input id="s-since" name="since" value={values.since} onInput={(e) => set('since', e.currentTarget.value)} placeholder="the join of the covered sinces" {...described('since')} />
            {fieldError('since')}
          </div>
        </fieldset>
        <div class="field">
          <label for="s-deadline">Deadline (optional)</label>
          <input id="s-deadline" name="deadline" value={values.deadline} onInput={(e) => set('deadline', e.currentTarget.value)} placeholder="e.g. 5m" {...described('deadline')} />
          {fieldError('deadline')}
        </div>
        <div class="form-actions">
          <button type="button" disabled={busy} onClick={() => void run(true)}>Preview plan</button>
          <button type="button" class="primary" disabled={busy || !previewed} onClick={() => void run(false)}>Submit</button>
          {previewed ? null : <span class="muted">Preview the plan to enable Submit.</span>}
        </div>
        {problem !== null && problem.field === null ? <p class="error" role="alert">{problem.message}</p> : null}
      </form>
      {plan === null ? null : (
        <section aria-label="Dry-run plan">
          <h2>Plan{previewed ? '' : ' (for earlier values: preview again)'}</h2>
          <PlanTable plan={plan.plan} />
        </section>
      )}
    </>
  )
}
