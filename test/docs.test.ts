/**
 * The repository explains itself: every relative link (and anchor) in docs/*.md and README.md
 * resolves, no tracked file points to a document outside the repository, and the settings tables
 * list every start-up setting and dynamic config the code has.
 *
 * Anchors are GitHub's: a heading's text lowercased, punctuation dropped, spaces turned into
 * hyphens, and `-1`, `-2`… appended to repeats.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { CONFIG_NAMES } from '../src/dyncfg/registry.js'
import { AUTH_TOKEN_ENV, USAGE } from '../src/settings.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

// ---- markdown ------------------------------------------------------------------------------------

/** The text without fenced code blocks and inline code spans (links inside code are not links). */
function withoutCode(markdown: string): string {
  const lines = markdown.split('\n')
  let fence: string | null = null
  const out: string[] = []
  for (const line of lines) {
    const open = /^ {0,3}(`{3,}|~{3,})/.exec(line)
    if (fence === null && open !== null) {
      fence = (open[1] as string)[0] as string
      out.push('')
      continue
    }
    if (fence !== null) {
      if (new RegExp(`^ {0,3}\\${fence}{3,}\\s*$`).test(line)) fence = null
      out.push('')
      continue
    }
    out.push(line.replace(/(`+)(?:(?!\1).)*?\1/g, ''))
  }
  return out.join('\n')
}

/** GitHub's anchor for a heading's text. */
function slug(heading: string): string {
  const text = heading
    .replace(/`/g, '')
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .trim()
    .toLowerCase()
  return text.replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, '').replace(/\s/g, '-')
}

/** Every anchor a markdown file defines: its headings (with GitHub's suffixes for repeats) and `<a id|name>`. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>()
  const seen = new Map<string, number>()
  for (const line of withoutCode(markdown).split('\n')) {
    const h = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (h !== null) {
      const base = slug(h[1] as string)
      const n = seen.get(base) ?? 0
      seen.set(base, n + 1)
      out.add(n === 0 ? base : `${base}-${n}`)
    }
    for (const a of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) out.add(a[1] as string)
  }
  return out
}

/** Link targets of inline links `[text](target)` and reference definitions `[label]: target`. */
function linkTargets(markdown: string): { target: string; line: number }[] {
  const out: { target: string; line: number }[] = []
  withoutCode(markdown)
    .split('\n')
    .forEach((text, i) => {
      for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push({ target: m[1] as string, line: i + 1 })
      const def = /^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/.exec(text)
      if (def !== null) out.push({ target: def[1] as string, line: i + 1 })
    })
  return out
}

const isExternal = (target: string): boolean => /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')

/** Problems with the relative links of `file` (a repository path), as `file:line: …` sentences. */
function brokenLinks(file: string): string[] {
  const problems: string[] = []
  const text = readFileSync(join(ROOT, file), 'utf8')
  for (const { target, line } of linkTargets(text)) {
    if (isExternal(target)) continue
    const [pathPart = '', anchor] = target.split('#', 2) as [string, string | undefined]
    const path = decodeURIComponent(pathPart)
    const at = `${file}:${line}: ${target}`
    const resolved = path === '' ? file : relative(ROOT, resolve(ROOT, dirname(file), path))
    if (resolved.startsWith('..')) {
      problems.push(`${at} leaves the repository`)
      continue
    }
    if (!existsSync(join(ROOT, resolved))) {
      problems.push(`${at}: no file ${resolved}`)
      continue
    }
    if (anchor === undefined || anchor === '') continue
    if (!resolved.endsWith('.md') || statSync(join(ROOT, resolved)).isDirectory()) {
      problems.push(`${at}: an anchor into ${resolved}, which is not a markdown file`)
      continue
    }
    if (!anchors(readFileSync(join(ROOT, resolved), 'utf8')).has(decodeURIComponent(anchor))) {
      problems.push(`${at}: no heading #${anchor} in ${resolved}`)
    }
  }
  return problems
}

// ---- references to outside documents ---------------------------------------------------------

/**
 * Ways the code once cited documents that are not in the repository: their file names, their
 * section signs, and absolute paths of the machine they lived on. Built from pieces so that this
 * file does not match itself.
 */
const OUTSIDE_NAMES = ['SPEC', 'API', `PERSIST${'_'}SEMANTICS`, 'PERFORMANCE']
const OUTSIDE = new RegExp(
  [
    `\\b(?:${OUTSIDE_NAMES.join('|')})\\.md\\b`,
    `\\bPERSIST${'_'}SEMANTICS\\b`,
    `\\bSPEC(?:\\s*\u00a7|\\s+")`,
    `\u00a7\\s*\\d`,
    `/${'work'}/`,
  ].join('|'),
)

/** Tracked files (git ls-files), or every file outside node_modules and .git when git is unavailable. */
function trackedFiles(): string[] {
  try {
    return execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 })
      .split('\0')
      .filter((f) => f !== '' && existsSync(join(ROOT, f)))
  } catch {
    const out: string[] = []
    const walk = (dir: string): void => {
      for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
        if (e.name === 'node_modules' || e.name === '.git' || e.name === 'data' || e.name === '.work') continue
        const p = dir === '' ? e.name : `${dir}/${e.name}`
        if (e.isDirectory()) walk(p)
        else out.push(p)
      }
    }
    walk('')
    return out
  }
}

/** `file:line: text` for every line of a tracked file that refers to an outside document. */
function outsideReferences(files: readonly string[]): string[] {
  const out: string[] = []
  for (const file of files) {
    const bytes = readFileSync(join(ROOT, file))
    if (bytes.includes(0)) continue
    bytes
      .toString('utf8')
      .split('\n')
      .forEach((text, i) => {
        if (OUTSIDE.test(text)) out.push(`${file}:${i + 1}: ${text.trim().slice(0, 160)}`)
      })
  }
  return out
}

// ---- tests ---------------------------------------------------------------------------------------

describe('docs', () => {
  const pages = readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`)

  it('has the pages its index promises', () => {
    for (const page of ['docs/README.md', 'docs/concepts.md', 'docs/spine.md', 'docs/compaction.md', 'docs/api.md', 'docs/operations.md']) {
      assert.ok(pages.includes(page), `${page} is missing`)
    }
  })

  it('resolves every relative link and anchor in docs/*.md, README.md and every other tracked markdown file', () => {
    const files = new Set([...pages, 'README.md', ...trackedFiles().filter((f) => f.endsWith('.md'))])
    const problems = [...files].flatMap(brokenLinks)
    assert.ok(problems.length === 0, `broken links:\n${problems.join('\n')}`)
  })

  it('lists every start-up setting (README, operations.md) and every dynamic config (operations.md) in a table row', () => {
    const rows = (file: string): string[] => readFileSync(join(ROOT, file), 'utf8').split('\n').filter((l) => l.startsWith('|'))
    const settings = [...USAGE.matchAll(/--([a-z-]+) +(COMPACTD_[A-Z_]+)/g)].map((m) => ({ flag: `--${m[1]}`, env: m[2] as string }))
    assert.ok(settings.length >= 16)
    const missing: string[] = []
    for (const file of ['README.md', 'docs/operations.md']) {
      const table = rows(file)
      for (const { flag, env } of settings) if (!table.some((r) => r.includes(`\`${env}\``) && r.includes(`\`${flag}\``))) missing.push(`${file}: ${env} / ${flag}`)
      if (!table.some((r) => r.includes(`\`${AUTH_TOKEN_ENV}\``))) missing.push(`${file}: ${AUTH_TOKEN_ENV}`)
    }
    const configs = rows('docs/operations.md')
    for (const name of CONFIG_NAMES) if (!configs.some((r) => r.startsWith(`| \`${name}\` |`))) missing.push(`docs/operations.md: dynamic config ${name}`)
    assert.deepEqual(missing, [])
  })

  it('has no file refer to a document outside the repository', () => {
    const offending = outsideReferences(trackedFiles())
    assert.ok(offending.length === 0, `point to docs/ instead:\n${offending.join('\n')}`)
  })
})

describe('the build the docs describe', () => {
  it('npm run build builds what node dist/src/main.js serves: the server and the console (dist/ui)', () => {
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts
    assert.match(scripts['build'] ?? '', /tsc -p tsconfig\.build\.json/)
    assert.match(scripts['build'] ?? '', /npm run build:ui/)
  })
})

describe('the docs test itself', () => {
  it('makes GitHub anchors', () => {
    assert.equal(slug('Stage D: merging the runs'), 'stage-d-merging-the-runs')
    assert.equal(slug('Compact and non-compact batches'), 'compact-and-non-compact-batches')
    assert.equal(slug('`POST /v1/compact`, stateless'), 'post-v1compact-stateless')
    assert.equal(slug('Data directory layout and backups'), 'data-directory-layout-and-backups')
    assert.equal(slug('Waiting, dry runs, idempotency and deadlines'), 'waiting-dry-runs-idempotency-and-deadlines')
    assert.deepEqual([...anchors('# A\n## B\n## B\n```\n# not a heading\n```\n<a id="x"></a>\n')], ['a', 'b', 'b-1', 'x'])
  })

  it('finds links outside code only', () => {
    const md = 'See [a](a.md#x) and `[b](b.md)`.\n```\n[c](c.md)\n```\n[d]: d.md\n'
    assert.deepEqual(
      linkTargets(md).map((l) => l.target),
      ['a.md#x', 'd.md'],
    )
  })

  it('recognizes every reference form the sweep removes, and not ordinary text', () => {
    for (const line of [
      ...OUTSIDE_NAMES.map((n) => `see ${n}.md`),
      `PERSIST${'_'}SEMANTICS \u00a74.5 step 2`,
      `SPEC \u00a76`,
      `(${'SPEC'} "Leaks are collected")`,
      `(\u00a74.4 step 3)`,
      `session (/${'work'}/shared/x)`,
    ]) {
      assert.ok(OUTSIDE.test(line), line)
    }
    for (const line of ['docs/api.md', 'OPENAPI.md', 'const SPECS = {', 'interface Spec {', 'bench/.work/', 'docs/spine.md#fuel-and-fueling-merges']) {
      assert.ok(!OUTSIDE.test(line), line)
    }
  })
})
