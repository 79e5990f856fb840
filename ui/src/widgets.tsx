/** Small pieces the views share: progress bar, status badge, error and unavailable notes, pager, confirmation. */
import type { ComponentChildren } from 'preact'
import { useState } from 'preact/hooks'
import { isApiError } from '../../src/client/api-client.js'
import { fractionOf, outcomeOf, statusLabel } from '../../src/client/compaction-view.js'
import type { CompactionJson } from '../../src/client/wire.js'

/** A native <progress> (accessible as a progressbar) with its percentage beside it. */
export function ProgressBar({ compaction, label }: { compaction: CompactionJson; label: string }) {
  const pct = Math.round(fractionOf(compaction) * 100)
  return (
    <span class="progress">
      <progress max={100} value={pct} aria-label={label} data-fraction={fractionOf(compaction).toFixed(4)} />
      <span class="progress-pct">{pct}%</span>
    </span>
  )
}

/** In lists: the bar while live or done, `—` for one that ended without doing its work. */
export function ListProgress({ compaction, label }: { compaction: CompactionJson; label: string }) {
  const o = outcomeOf(compaction)
  if (o === 'failed' || o === 'nothing') return <span class="muted">—</span>
  return <ProgressBar compaction={compaction} label={label} />
}

export function StatusBadge({ compaction }: { compaction: CompactionJson }) {
  return <span class={`badge badge-${outcomeOf(compaction)} status-${compaction.status}`}>{statusLabel(compaction)}</span>
}

/** An error as one sentence: the API's code and message, or an endpoint this server lacks. */
export function ErrorNote({ error, what }: { error: unknown; what: string }) {
  if (error === undefined || error === null) return null
  if (isApiError(error) && error.notFound && error.code === 'NOT_FOUND') return <Unavailable what={what} />
  const text = isApiError(error) ? `${error.code}: ${error.message}` : error instanceof Error ? error.message : String(error)
  return (
    <p class="error" role="alert">
      Could not load {what}. {text}
    </p>
  )
}

export function Unavailable({ what }: { what: string }) {
  return <p class="muted unavailable">{what} is not available from this server (its API lacks the endpoint).</p>
}

/**
 * Previous/next over cursor pages: the cursors seen so far are a stack, so going back needs no
 * cursor from the server. No next cursor: this is the last page (or the server does not paginate).
 */
export function Pager({ stack, next, onPage, shown }: { stack: readonly string[]; next: string | undefined; onPage: (stack: string[]) => void; shown: number }) {
  const page = stack.length + 1
  return (
    <nav class="pager" aria-label="Pages">
      <button type="button" disabled={stack.length === 0} onClick={() => onPage(stack.slice(0, -1))}>
        ← Previous
      </button>
      <span class="muted">
        page {page} · {shown} shown
      </span>
      <button type="button" disabled={next === undefined} onClick={() => next !== undefined && onPage([...stack, next])}>
        Next →
      </button>
    </nav>
  )
}

/** A button that asks once more, inline, before it acts. */
export function ConfirmButton(props: { label: string; confirm: string; onConfirm: () => Promise<void> | void; danger?: boolean; disabled?: boolean }) {
  const [asking, setAsking] = useState(false)
  const [busy, setBusy] = useState(false)
  if (!asking) {
    return (
      <button type="button" class={props.danger === true ? 'danger' : ''} disabled={props.disabled} onClick={() => setAsking(true)}>
        {props.label}
      </button>
    )
  }
  return (
    <span class="confirm" role="group" aria-label={props.confirm}>
      <span>{props.confirm}</span>
      <button
        type="button"
        class="danger"
        disabled={busy}
        onClick={async () => {
          setBusy(true)
          try {
            await props.onConfirm()
          } finally {
            setBusy(false)
            setAsking(false)
          }
        }}
      >
        Yes, {props.label.toLowerCase()}
      </button>
      <button type="button" onClick={() => setAsking(false)}>
        No
      </button>
    </span>
  )
}

export function Section({ title, children, actions }: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  const id = `h-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`
  return (
    <section aria-labelledby={id}>
      <div class="section-head">
        <h2 id={id}>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  )
}
