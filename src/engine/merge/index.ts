export { MergeKernel, type MergeKernelOptions, type MergeStep } from './merge-kernel.js'
export { MergeOrderError } from './merge-order-error.js'
export { MergeOutput } from './merge-output.js'
export { checkMergeSource, type MergeSource } from './merge-source.js'
