/** `compactctl configs get|set|history`: the dynamic configs, changed all-or-nothing and audited. */
import type { Command } from 'commander'
import { formatInstant, formatValue } from '../client/format.js'
import { positiveInt, run } from './context.js'
import { EXIT, UsageError } from './exit-codes.js'
import { table } from './output.js'

/** `name=value`: the value as JSON when it parses (true, 5, "x"), else as the string typed (90s). */
export function parseAssignment(text: string, previous: Record<string, unknown> = {}): Record<string, unknown> {
  const eq = text.indexOf('=')
  if (eq <= 0) throw new UsageError(`"${text}" must be NAME=VALUE, like compaction_process_requests=false`)
  const name = text.slice(0, eq)
  const raw = text.slice(eq + 1)
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    value = raw
  }
  return { ...previous, [name]: value }
}

export function configsCommands(program: Command): void {
  const configs = program.command('configs').description('read, change and audit the dynamic configs')

  configs
    .command('get')
    .description('every config (or one) with its value, default and description')
    .argument('[name]', 'one config')
    .action((name: string | undefined, _opts, cmd: Command) =>
      run(cmd, async ({ client, out }) => {
        if (name !== undefined) {
          const c = await client.config(name)
          out.result(c, () => `${c.name} = ${formatValue(c.value)} (default ${formatValue(c.default)}, ${c.type})\n  ${c.description}`)
          return EXIT.OK
        }
        const all = await client.configs()
        out.result({ configs: all }, () => table(['name', 'value', 'default', 'type'], all.map((c) => [c.name, formatValue(c.value), formatValue(c.default), c.type])))
        return EXIT.OK
      }),
    )

  configs
    .command('set')
    .description('change configs atomically: all apply or none (the error names the bad one)')
    .argument('<assignments...>', 'NAME=VALUE pairs, e.g. compaction_process_requests=false persist_compaction_minimum_timeout=2m')
    .action((assignments: string[], _opts, cmd: Command) =>
      run(cmd, async ({ client, out }) => {
        let values: Record<string, unknown> = {}
        for (const a of assignments) values = parseAssignment(a, values)
        const changed = await client.patchConfigs(values)
        out.result({ configs: changed }, () => changed.map((c) => `${c.name} = ${formatValue(c.value)}`).join('\n'))
        return EXIT.OK
      }),
    )

  configs
    .command('history')
    .description('the audit log of config changes, newest first')
    .option('--limit <n>', 'at most this many changes', positiveInt(), 50)
    .action((opts: { limit: number }, cmd: Command) =>
      run(cmd, async ({ client, out }) => {
        const changes = await client.configHistory(opts.limit)
        out.result({ changes }, () => (changes.length === 0 ? 'no changes' : table(['at', 'name', 'old', 'new'], changes.map((c) => [formatInstant(c.at), c.name, formatValue(c.old), formatValue(c.new)]))))
        return EXIT.OK
      }),
    )
}
