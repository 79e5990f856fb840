/**
 * Preloaded (`node --import`) into a child whose memory a test bounds: as the process exits, its
 * peak resident set (VmHWM of /proc/self/status, Linux) goes to the file COMPACTCTL_TEST_PEAK_RSS_FILE
 * names, in bytes. VmHWM counts only this process, unlike getrusage's maxRSS after a fork.
 */
import { readFileSync, writeFileSync } from 'node:fs'

const file = process.env.COMPACTCTL_TEST_PEAK_RSS_FILE
if (file !== undefined && file !== '') {
  process.once('exit', () => {
    const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]
    writeFileSync(file, kb === undefined ? 'NaN' : String(Number(kb) * 1024))
  })
}
