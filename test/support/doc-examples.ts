/**
 * The runnable examples of the docs, for test/docs-examples.test.ts.
 *
 * A fenced block whose info string is `sh example` is run, in the order of its file, by one bash
 * process per file (variables carry from block to block), against a server on the default address
 * (`localhost:6880` and `127.0.0.1:6880` are replaced by the test server's). Words after `example`:
 *
 * - `status=NNN`: the HTTP status of the block's last request (default: any 2xx);
 * - `exit=N`: the exit code of the block's last command (default 0).
 *
 * A `json` block that comes next (with only prose between) shows an answer: some response body of
 * the block, or a JSON line the block printed, must have its shape (`matches`). Blocks of other
 * kinds are not run: an answer from elsewhere shown for illustration (another shard's, say) is a
 * `jsonc` block, which also ends the answers of the example before it.
 */

export interface Example {
  readonly file: string
  /** 1-based line of the opening fence. */
  readonly line: number
  readonly code: string
  readonly status: number | null
  readonly exit: number
  /** The `json` blocks shown after it, as written. */
  readonly answers: string[]
}

/** The `sh example` blocks of a markdown text, with the answers shown after them. */
export function examples(file: string, markdown: string): Example[] {
  const out: Array<Example & { answers: string[] }> = []
  const lines = markdown.split('\n')
  let open: { info: string; line: number; body: string[] } | null = null
  let last: (Example & { answers: string[] }) | null = null
  for (const [i, text] of lines.entries()) {
    const fence = /^ {0,3}```\s*(.*)$/.exec(text)
    if (open === null) {
      if (fence !== null) open = { info: (fence[1] as string).trim(), line: i + 1, body: [] }
      continue
    }
    if (fence === null || (fence[1] as string).trim() !== '') {
      open.body.push(text)
      continue
    }
    const words = open.info.split(/\s+/)
    const body = open.body.join('\n')
    if (words[0] === 'sh' && words[1] === 'example') {
      const opt = (name: string): string | undefined => words.find((w) => w.startsWith(`${name}=`))?.slice(name.length + 1)
      last = { file, line: open.line, code: body, status: opt('status') === undefined ? null : Number(opt('status')), exit: Number(opt('exit') ?? 0), answers: [] }
      out.push(last)
    } else if (words[0] === 'json' && last !== null) {
      last.answers.push(body)
    } else {
      last = null
    }
    open = null
  }
  return out
}

/**
 * An answer as shown, made JSON: `…` cuts a string (kept in it), stands for fields left out
 * (`,…}`, `,…,`), for the rest of an array (`,…]`) or for a whole value (`{…}`, `[…]`). Fields
 * shown without their object (`"leases":[…]`) are read as an object of them.
 */
export function parseShown(shown: string): unknown {
  const trimmed = shown.trim()
  const text = (trimmed.startsWith('"') ? `{${trimmed}}` : trimmed)
    .replace(/\{…\}|\[…\]/g, '"…"')
    .replace(/,\s*…\s*}/g, '}')
    .replace(/,\s*…\s*,/g, ',')
    .replace(/,\s*…\s*]/g, ',"…"]')
  return JSON.parse(text)
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/

/** A shown string as a pattern: ids cut after their first 8 hex digits match any id of that kind, `…` anything. */
function stringPattern(shown: string): RegExp {
  const parts = shown.split(/([a-z][0-9a-f]{8}-…|…)/)
  const source = parts
    .map((p, i) => (i % 2 === 0 ? p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : p === '…' ? '[^]*' : `${p[0]}[0-9a-f]{8}-[0-9a-f-]{27}`))
    .join('')
  return new RegExp(`^${source}$`)
}

/**
 * Where `actual` differs from the shape `shown` (empty when it matches): objects need every field
 * shown (more are allowed: the docs cut long answers), arrays every element shown (all of them
 * unless the last shown is `…`), strings and numbers their value, but ids and timestamps only
 * their form, and `…` in a string stands for anything.
 */
export function mismatches(shown: unknown, actual: unknown, path = '$'): string[] {
  if (shown === '…') return []
  if (typeof shown === 'string') {
    if (typeof actual !== 'string') return [`${path}: ${JSON.stringify(actual)} is not a string like ${JSON.stringify(shown)}`]
    if (ISO.test(shown)) return ISO.test(actual) ? [] : [`${path}: ${JSON.stringify(actual)} is not a timestamp`]
    return stringPattern(shown).test(actual) ? [] : [`${path}: ${JSON.stringify(actual)} is not ${JSON.stringify(shown)}`]
  }
  if (Array.isArray(shown)) {
    if (!Array.isArray(actual)) return [`${path}: ${JSON.stringify(actual)} is not an array`]
    const open = shown.at(-1) === '…'
    const items = open ? shown.slice(0, -1) : shown
    const problems = open ? (actual.length < items.length ? [`${path}: ${actual.length} elements, fewer than ${items.length}`] : []) : actual.length !== items.length ? [`${path}: ${actual.length} elements, not ${items.length}`] : []
    return [...problems, ...items.flatMap((s, i) => (i < actual.length ? mismatches(s, actual[i], `${path}[${i}]`) : []))]
  }
  if (shown !== null && typeof shown === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return [`${path}: ${JSON.stringify(actual)} is not an object`]
    return Object.entries(shown).flatMap(([k, v]) => (k in actual ? mismatches(v, (actual as Record<string, unknown>)[k], `${path}.${k}`) : [`${path}: no field ${k}`]))
  }
  return Object.is(shown, actual) ? [] : [`${path}: ${JSON.stringify(actual)}, not ${JSON.stringify(shown)}`]
}

/**
 * The bash that runs a file's examples: `curl` records each request's status and body (in `dir`,
 * numbered) and ends its output with a newline, `compactctl` and `npx compactctl` run the repository's launcher, and markers on stdout
 * split the output by example.
 */
export function script(list: readonly Example[], opts: { readonly dir: string; readonly port: number; readonly bin: string }): string {
  const address = (code: string): string => code.replace(/(?:localhost|127\.0\.0\.1):6880\b/g, `127.0.0.1:${opts.port}`)
  const prelude = [
    'set -o pipefail',
    `X=${JSON.stringify(opts.dir)}`,
    'echo 0 > "$X/n"',
    // A newline after each body, so that what the block prints next starts a line of its own.
    'curl() { local i; i=$(( $(cat "$X/n") + 1 )); echo "$i" > "$X/n"; command curl -w "%{stderr}%{http_code}" "$@" 2>"$X/status.$i" | tee "$X/body.$i"; local r=$?; echo; return $r; }',
    `compactctl() { ${JSON.stringify(process.execPath)} ${JSON.stringify(opts.bin)} "$@"; }`,
    'npx() { if [ "$1" = compactctl ]; then shift; compactctl "$@"; else command npx "$@"; fi; }',
    `export COMPACTD_URL=http://127.0.0.1:${opts.port}`,
  ]
  const blocks = list.map((e, i) => [`printf '\\n\\036begin ${i} %s\\n' "$(cat "$X/n")"`, address(e.code), `printf '\\n\\036end ${i} %s %s\\n' "$?" "$(cat "$X/n")"`].join('\n'))
  return [...prelude, ...blocks].join('\n') + '\n'
}

export interface Ran {
  readonly stdout: string
  /** Requests made, numbered from 1 as the script's `curl` made them. */
  readonly first: number
  readonly last: number
  readonly exit: number
}

/** Each example's output and requests, from the script's stdout; null for examples that never ran. */
export function split(stdout: string, count: number): Array<Ran | null> {
  const out: Array<Ran | null> = Array.from({ length: count }, () => null)
  const rs = String.fromCharCode(0x1e) // the marker's first character, which no example prints
  for (const m of stdout.matchAll(new RegExp(`${rs}begin (\\d+) (\\d+)\\n([^]*?)\\n${rs}end \\1 (\\d+) (\\d+)\\n`, 'g'))) {
    out[Number(m[1])] = { stdout: m[3] as string, first: Number(m[2]) + 1, last: Number(m[5]), exit: Number(m[4]) }
  }
  return out
}
