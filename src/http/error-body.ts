/**
 * The one error body of the API: `{code, message, ...extra}` (docs/api.md#errors). Routes declare it for every
 * error status they return (`errorResponses` in responses.ts); the error handler produces it.
 */
import { z } from 'zod'
import { ERROR_CODES } from '../errors.js'

/** NB: loose, so AppError extras (`queueDepth`, `currentUpper`...) survive response serialization. */
export const ErrorBody = z
  .looseObject({
    code: z.enum(ERROR_CODES).describe('Machine-readable error code'),
    message: z.string().describe('Human sentence naming the field or rule'),
  })
  .meta({ id: 'Error', description: 'An error: a code, a message, and extra fields some codes carry.' })

export type ErrorBody = z.infer<typeof ErrorBody>
