/**
 * compactctl: compactd's command line (docs/cli.md). It speaks only the public HTTP API, so it
 * works against any instance of a cluster. `bin/compactctl.js` runs this file through tsx.
 *
 * Global options, before or after the command: `--url` (COMPACTD_URL, default
 * http://127.0.0.1:6880), `--token` (COMPACTD_TOKEN), `--json` (one JSON document on stdout).
 * Exit codes: src/cli/exit-codes.ts.
 */
import { Command, CommanderError, Option } from 'commander'
import { compactCommand } from './compact-command.js'
import { configsCommands } from './configs-commands.js'
import { DEFAULT_URL } from './context.js'
import { EXIT } from './exit-codes.js'
import { jobsCommands } from './jobs-commands.js'
import { exitOnClosedOutput } from './output.js'
import { shardsCommands } from './shards-commands.js'
import { shardsDataCommands } from './shards-data-commands.js'
import { statusCommand } from './status-command.js'

const EXIT_HELP = `
Exit codes:
  0 done (a waited compaction succeeded and applied)   1 server error or unexpected failure
  2 usage: bad command, flag or argument                3 server unreachable
  4 unauthorized: token missing or refused              5 not found (shard, compaction, config)
  6 request refused (invalid, conflict, queue full)     7 waited compaction failed or was cancelled
  8 waited compaction changed nothing (skipped, or its result did not apply)
`

export function program(): Command {
  const p = new Command('compactctl')
    .description("compactd's command line: status, shards and their data, compactions and configs over the HTTP API")
    .addOption(new Option('--url <url>', 'where compactd listens').env('COMPACTD_URL').default(DEFAULT_URL))
    .addOption(new Option('--token <token>', 'bearer token (COMPACTD_AUTH_TOKEN of the server)').env('COMPACTD_TOKEN'))
    .addOption(new Option('--token-file <path>', 'read the token from a file (its last token, as in the server\'s token file); --token wins').env('COMPACTD_TOKEN_FILE'))
    .option('--json', 'print one JSON document on stdout (errors as {"error": ...})')
    .configureOutput({ outputError: (text, write) => write(`compactctl: USAGE: ${text.replace(/^error: /, '').trim()}\n`) })
    .addHelpText('after', EXIT_HELP)
  statusCommand(p)
  shardsDataCommands(shardsCommands(p))
  compactCommand(p)
  jobsCommands(p)
  configsCommands(p)
  // Subcommands inherit the exit override and output configuration from here.
  p.exitOverride()
  for (const c of allCommands(p)) c.exitOverride().configureOutput(p.configureOutput())
  return p
}

function allCommands(c: Command): Command[] {
  return c.commands.flatMap((s) => [s, ...allCommands(s)])
}

exitOnClosedOutput()
try {
  await program().parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version end with 0; every other commander error is a usage error.
    process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE
  } else {
    process.stderr.write(`compactctl: ERROR: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = EXIT.FAILURE
  }
}
