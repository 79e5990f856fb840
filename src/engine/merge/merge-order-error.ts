import { AppError } from '../../errors.js'

/**
 * A run handed to the merge kernel was not sorted: a row's (key, val) is smaller than an earlier
 * row of the same run (possibly in an earlier part), or, when times were promised sorted, a time
 * went backwards within one (key, val). The compaction definitely failed; nothing it emitted may be used.
 */
export class MergeOrderError extends AppError {
  readonly run: number
  readonly part: number
  readonly row: number

  constructor(run: number, part: number, row: number, what: string) {
    super('INTERNAL', `data arrived at the merge out of order: run ${run}, part ${part}, row ${row}: ${what}`, { run, part, row })
    this.run = run
    this.part = part
    this.row = row
  }
}
