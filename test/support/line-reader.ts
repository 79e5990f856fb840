/** Reads a child process's output line by line, on demand. */
import { createInterface } from 'node:readline'

/** `next()` resolves with the next line; lines that arrive before anyone asks are queued. */
export class LineReader {
  readonly #queue: string[] = []
  readonly #waiting: Array<(line: string) => void> = []

  constructor(input: NodeJS.ReadableStream) {
    createInterface({ input }).on('line', (line) => {
      const waiter = this.#waiting.shift()
      if (waiter !== undefined) waiter(line)
      else this.#queue.push(line)
    })
  }

  next(): Promise<string> {
    const line = this.#queue.shift()
    return line !== undefined ? Promise.resolve(line) : new Promise((resolve) => this.#waiting.push(resolve))
  }
}
