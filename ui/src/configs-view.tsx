/**
 * Dynamic configs: every config with its description, edited one at a time with the server's
 * validation error shown inline (a PATCH applies all or nothing), the kill switch one click away
 * behind a confirmation, and the audit history, newest first.
 */
import { useState } from 'preact/hooks'
import { isApiError } from '../../src/client/api-client.js'
import { formatInstant, formatValue } from '../../src/client/format.js'
import type { ConfigJson } from '../../src/client/wire.js'
import { useApi, useLoad } from './hooks.js'
import { ConfirmButton, ErrorNote, Section } from './widgets.js'

export const KILL_SWITCH = 'compaction_process_requests'
const HISTORY = 50

/** What the operator typed, as the JSON value the API takes for that config's type. */
export function toConfigValue(type: string, text: string): unknown {
  const t = text.trim()
  if (type === 'bool') return t === 'true' ? true : t === 'false' ? false : t
  if ((type === 'count' || type === 'bytes') && /^-?[0-9]+$/.test(t)) return Number(t)
  return t
}

export function ConfigsView() {
  const client = useApi()
  const configs = useLoad((c) => c.configs(), [])
  const history = useLoad((c) => c.configHistory(HISTORY), [])
  const refresh = (): void => {
    configs.reload()
    history.reload()
  }
  const kill = configs.data?.find((c) => c.name === KILL_SWITCH)

  return (
    <>
      <h1>Configs</h1>
      <ErrorNote error={configs.error} what="configs" />
      {kill === undefined ? null : (
        <div class={`kill-switch ${kill.value === false ? 'off' : 'on'}`} data-testid="kill-switch" data-value={String(kill.value)}>
          <div>
            <strong>Compaction is {kill.value === false ? 'paused' : 'on'}.</strong>{' '}
            <span class="muted">The kill switch ({KILL_SWITCH}): off makes queued and new compactions fail with “compaction disabled”.</span>
          </div>
          <ConfirmButton
            label={kill.value === false ? 'Resume compaction' : 'Pause compaction'}
            confirm={kill.value === false ? 'Resume compaction on every instance?' : 'Pause compaction on every instance?'}
            danger={kill.value !== false}
            onConfirm={async () => {
              await client.patchConfigs({ [KILL_SWITCH]: kill.value === false })
              refresh()
            }}
          />
        </div>
      )}
      <Section title="Every config">
        <table class="configs">
          <thead>
            <tr><th scope="col">Name</th><th scope="col">Value</th><th scope="col">Default</th><th scope="col">Description</th></tr>
          </thead>
          <tbody>
            {(configs.data ?? []).map((c) => (
              <ConfigRow key={`${c.name}=${formatValue(c.value)}`} config={c} onSaved={refresh} />
            ))}
          </tbody>
        </table>
      </Section>
      <Section title="History">
        <ErrorNote error={history.error} what="the config history" />
        {history.data !== undefined && history.data.length === 0 ? <p class="muted">No changes yet.</p> : null}
        {history.data !== undefined && history.data.length > 0 ? (
          <table class="history">
            <caption>The latest {HISTORY} changes, newest first</caption>
            <thead><tr><th scope="col">When</th><th scope="col">Name</th><th scope="col">Old</th><th scope="col">New</th></tr></thead>
            <tbody>
              {history.data.map((h, i) => (
                <tr key={`${h.at}-${h.name}-${i}`}><td>{formatInstant(h.at)}</td><td><code>{h.name}</code></td><td>{formatValue(h.old)}</td><td>{formatValue(h.new)}</td></tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </Section>
    </>
  )
}

function ConfigRow({ config, onSaved }: { config: ConfigJson; onSaved: () => void }) {
  const client = useApi()
  const [text, setText] = useState(formatValue(config.value))
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const id = `cfg-${config.name}`
  const changed = text !== formatValue(config.value)
  const save = async (): Promise<void> => {
    setBusy(true)
    try {
      await client.patchConfigs({ [config.name]: toConfigValue(config.type, text) })
      setError(null)
      onSaved()
    } catch (err) {
      setError(isApiError(err) ? err.message : String(err))
    } finally {
      setBusy(false)
    }
  }
  return (
    <tr data-config={config.name}>
      <th scope="row"><code>{config.name}</code><div class="muted">{config.type}</div></th>
      <td>
        <form
          class="config-edit"
          onSubmit={(e) => {
            e.preventDefault()
            void save()
          }}
        >
          <label for={id} class="visually-hidden">{config.name}</label>
          {config.type === 'bool' ? (
            <select id={id} value={text} onChange={(e) => setText(e.currentTarget.value)} aria-invalid={error !== null} aria-describedby={error === null ? undefined : `${id}-err`}>
              <option value="true">true</option>
              <option value="false">false</option>
            </select>
          ) : (
            <input id={id} value={text} onInput={(e) => setText(e.currentTarget.value)} aria-invalid={error !== null} aria-describedby={error === null ? undefined : `${id}-err`} />
          )}
          <button type="submit" disabled={busy || !changed}>Save</button>
          {error === null ? null : <div class="field-error" id={`${id}-err`} role="alert">{error}</div>}
        </form>
      </td>
      <td>{formatValue(config.default)}</td>
      <td>{config.description}</td>
    </tr>
  )
}
