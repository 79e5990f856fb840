/**
 * `npm run build:ui` (run by `npm start` and `npm test` first): bundles the console (ui/src) with
 * esbuild into dist/ui/: `console-<hash>.js`, `console-<hash>.css`, `index.html` naming them, and
 * `manifest.json` listing the files routes/ui.ts serves. Everything the page needs is in those
 * files: no CDN, no web fonts. The folder is generated (gitignored), rebuilt whole when its inputs
 * changed (their digest is in the manifest) and left alone otherwise.
 */
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const OUT = join(ROOT, 'dist', 'ui')

/** A digest of everything the bundle is made from: the console's sources, this script, the lockfile. */
async function inputsDigest(): Promise<string> {
  const files: string[] = []
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(dir, e.name))
      else files.push(join(dir, e.name))
    }
  }
  await walk(join(ROOT, 'ui'))
  files.push(fileURLToPath(import.meta.url), join(ROOT, 'package-lock.json'))
  const hash = createHash('sha256')
  for (const f of files.sort()) hash.update(relative(ROOT, f)).update('\0').update(await readFile(f)).update('\0')
  return hash.digest('hex')
}

// NB: an unchanged build is left alone. `npm start` builds too, and a server or test reading
// dist/ui meanwhile (tests start servers while another runs `npm start`) must never see it half
// written: a rebuild writes a new folder beside it and swaps it in with two renames.
const digest = await inputsDigest()
const current = await readFile(join(OUT, 'manifest.json'), 'utf8').then((t) => (JSON.parse(t) as { inputs?: string }).inputs, () => undefined)
if (current === digest) {
  process.stdout.write('build-ui: dist/ui is up to date\n')
  process.exit(0)
}
const BUILD = `${OUT}.build-${process.pid}`
await rm(BUILD, { recursive: true, force: true })
await mkdir(BUILD, { recursive: true })

const result = await build({
  entryPoints: { console: join(ROOT, 'ui', 'src', 'main.tsx') },
  outdir: BUILD,
  entryNames: '[name]-[hash]',
  bundle: true,
  minify: true,
  sourcemap: 'linked',
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
  absWorkingDir: ROOT,
})

const files = Object.keys(result.metafile.outputs).map((f) => basename(f))
const js = files.find((f) => f.endsWith('.js'))
const css = files.find((f) => f.endsWith('.css'))
if (js === undefined || css === undefined) throw new Error(`build-ui: expected a .js and a .css output, got ${files.join(', ')}`)

const template = await readFile(join(ROOT, 'ui', 'index.html'), 'utf8')
const index = template.replaceAll('%JS%', `/ui/assets/${js}`).replaceAll('%CSS%', `/ui/assets/${css}`)
await writeFile(join(BUILD, 'index.html'), index)
await writeFile(join(BUILD, 'manifest.json'), `${JSON.stringify({ index: 'index.html', assets: files, inputs: digest }, null, 2)}\n`)
const OLD = `${OUT}.old-${process.pid}`
await rename(OUT, OLD).catch((err: unknown) => {
  if ((err as { code?: string }).code !== 'ENOENT') throw err
})
await rename(BUILD, OUT)
await rm(OLD, { recursive: true, force: true })

const size = (f: string): number => result.metafile.outputs[relative(ROOT, join(BUILD, f))]?.bytes ?? 0
process.stdout.write(`build-ui: ${js} ${(size(js) / 1024).toFixed(0)} KiB, ${css} ${(size(css) / 1024).toFixed(0)} KiB → dist/ui\n`)
