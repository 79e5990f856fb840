/**
 * Server-sent events (the `text/event-stream` format): an incremental parser and a reader over a
 * fetch body. The console reads events through fetch, not EventSource, because EventSource cannot
 * send the Authorization header.
 *
 * Handles what the format allows: `\n`, `\r\n` or `\r` line ends split anywhere between chunks,
 * comments (`:`), `data:` lines joined with `\n`, an optional space after the colon, and events
 * without an `event:` field (named `message`). Fields other than `event` and `data` are ignored.
 */

export interface SseMessage {
  readonly event: string
  readonly data: string
}

/** Feed it text as it arrives; it returns the events each chunk completes. */
export class SseParser {
  #buffer = ''
  #event = ''
  #data: string[] = []
  #pendingCr = false

  push(chunk: string): SseMessage[] {
    let text = chunk
    // NB: a chunk may end between the \r and \n of one line end; drop that \n when it comes.
    if (this.#pendingCr && text.startsWith('\n')) text = text.slice(1)
    this.#pendingCr = text.endsWith('\r')
    this.#buffer += text
    const out: SseMessage[] = []
    const lines = this.#buffer.split(/\r\n|\r|\n/)
    this.#buffer = lines.pop() ?? ''
    for (const line of lines) {
      const message = this.#line(line)
      if (message !== null) out.push(message)
    }
    return out
  }

  /** A stream that ended without a blank line drops its unfinished event, as the format says. */
  end(): void {
    this.#buffer = ''
    this.#event = ''
    this.#data = []
  }

  #line(line: string): SseMessage | null {
    if (line === '') {
      if (this.#data.length === 0) {
        this.#event = ''
        return null
      }
      const message = { event: this.#event === '' ? 'message' : this.#event, data: this.#data.join('\n') }
      this.#event = ''
      this.#data = []
      return message
    }
    if (line.startsWith(':')) return null
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'event') this.#event = value
    else if (field === 'data') this.#data.push(value)
    return null
  }
}

/** Every complete event of a whole text (a finished response body). */
export function parseSseText(text: string): SseMessage[] {
  const parser = new SseParser()
  return parser.push(text)
}

/** The events of a byte stream (a fetch body) as they arrive; ends with the stream. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage, void, undefined> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  const parser = new SseParser()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      yield* parser.push(decoder.decode(value, { stream: true }))
    }
    yield* parser.push(decoder.decode())
    parser.end()
  } finally {
    // NB: a consumer that stops early (break, an abort) must release the connection.
    await reader.cancel().catch(() => undefined)
  }
}
